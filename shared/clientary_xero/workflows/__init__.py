"""Workflow definitions: the model, JSONata expressions, validation, JSON Schema and loading."""
