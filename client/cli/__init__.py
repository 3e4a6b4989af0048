"""The `seedgrid` command."""
