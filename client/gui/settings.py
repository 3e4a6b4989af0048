"""Settings kept in the platform's config folder (QSettings): the Redis URL, the history cap, and the window's
geometry, panel layout, zoom and last compose settings (kept by the main window when given a QSettings)."""

from PySide6.QtCore import QSettings

REDIS_URL_KEY = "connection/redis_url"
HISTORY_CAP_KEY = "history/max_grids"
DEFAULT_HISTORY_CAP = 200
GEOMETRY_KEY = "window/geometry"
SIZE_KEY = "window/size"
LAYOUT_KEY = "window/layout"
ZOOM_KEY = "window/zoom"
COMPOSE_KEY = "compose/last"  # JSON of ComposePanel.values()


def settings() -> QSettings:
    return QSettings("seedgrid", "seedgrid")


def last_redis_url() -> str | None:
    value = settings().value(REDIS_URL_KEY)
    return str(value) if value else None


def remember_redis_url(url: str) -> None:
    store = settings()
    store.setValue(REDIS_URL_KEY, url)
    store.sync()


def history_cap() -> int:
    """How many grids the history keeps; the oldest beyond it are deleted."""
    try:
        return max(1, int(str(settings().value(HISTORY_CAP_KEY, DEFAULT_HISTORY_CAP))))
    except (TypeError, ValueError):
        return DEFAULT_HISTORY_CAP


def set_history_cap(grids: int) -> None:
    store = settings()
    store.setValue(HISTORY_CAP_KEY, max(1, grids))
    store.sync()
