"""Building pipelines: the built-in `tiny` model and real models from the hub or disk."""
