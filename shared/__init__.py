"""The contract between seedgrid workers and clients: never imports torch or Qt."""
