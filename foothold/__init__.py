"""Foothold: tool-call observability and audit for AI agents."""

__version__ = "0.1.0"
