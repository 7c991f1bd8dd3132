"""Processors: each enriches, classifies or redacts a batch in place between the pipeline and the exporter."""
