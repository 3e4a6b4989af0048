"""The seedgrid client: a library, the `seedgrid` CLI, and the desktop app (client.gui)."""

from seedgrid.client.api import NoWorkerForModel, SeedgridClient

__all__ = ["NoWorkerForModel", "SeedgridClient"]
