"""Shared by every layer: errors, the data model, YAML loading, worker pools."""
