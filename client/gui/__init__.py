"""The seedgrid desktop app (PySide6): compose, grids, refine, queue and workers."""
