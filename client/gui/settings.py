"""Connection settings kept in the platform's config folder (QSettings)."""

from PySide6.QtCore import QSettings

REDIS_URL_KEY = "connection/redis_url"


def settings() -> QSettings:
    return QSettings("seedgrid", "seedgrid")


def last_redis_url() -> str | None:
    value = settings().value(REDIS_URL_KEY)
    return str(value) if value else None


def remember_redis_url(url: str) -> None:
    store = settings()
    store.setValue(REDIS_URL_KEY, url)
    store.sync()
