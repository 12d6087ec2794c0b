"""The domain layer: one module per concern, plain async functions over the database."""
