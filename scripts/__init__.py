"""Validation and pull-request tooling for the ai-inference-service GitOps tree."""
