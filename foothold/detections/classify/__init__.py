"""Persistence classifier: tool calls, shell commands and file paths -> persistence findings.

The rules are data (``rules/persistence.yaml``): path globs and command patterns, each mapped to a
persistence ``kind`` and a MITRE ATT&CK / ATLAS technique. The ``shell`` package works out what a command *does*
(which files it writes, which programs it runs); this package matches those effects against the rules.

Public API (imported by the collector and the instrumentation):
    Finding, classify_path, classify_command, classify_tool_call, load_rules

Pure Python (stdlib + bashlex + PyYAML). Nothing here raises on odd input: it returns [] / None.

The modules: ``persistence_rules`` compiles the rules; ``paths`` judges a written path, ``commands`` a shell
command line, ``tool_calls`` an agent tool call (through the normalised view, ``foothold.detections.toolcall``);
``finding`` is the result.
"""

from foothold.detections.classify.commands import classify_command
from foothold.detections.classify.finding import Finding
from foothold.detections.classify.paths import classify_path
from foothold.detections.classify.persistence_rules import Rules, compile_rules, load_rules
from foothold.detections.classify.tool_calls import classify_tool_call

__all__ = ["Finding", "Rules", "classify_command", "classify_path", "classify_tool_call", "compile_rules", "load_rules"]
