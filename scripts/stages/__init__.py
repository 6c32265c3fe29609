"""The validation stages: lint, schema (with CEL rules), security, policy; immutable fields."""
