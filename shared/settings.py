"""Every SEEDGRID_* environment variable in one place: read once per process, checked, documented."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "SEEDGRID_"


class SettingsError(ValueError):
    """An environment variable with a value seedgrid cannot use; the message names it and the allowed form."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    redis_url: str | None = Field(
        None,
        description="a Redis URL: redis://:PASSWORD@HOST:6379/0, rediss://... or sentinel://:PASSWORD@HOST:26379,.../0?master=NAME",
    )
    redis_ca: str | None = Field(None, description="the path of a CA file that signed the rediss:// server")
    client_id: str | None = Field(None, description="a name for this client's jobs (default: user@host)")
    visibility_timeout: int = Field(
        2 * 3600,
        ge=1,
        description="a whole number of seconds, at least 1 (how long a job unacknowledged "
        "by a lost worker waits before Celery delivers it again)",
    )
    result_ttl: int = Field(24 * 3600, ge=1, description="a whole number of seconds, at least 1")
    model: str = Field("tiny", description="a model name: tiny, a hub id, a folder or a .safetensors file")
    device: Literal["cuda", "cpu"] | None = Field(None, description="cuda or cpu")
    vae: str | None = Field(None, description="a VAE: a hub id, a folder or a .safetensors file")
    speedups: str = Field("", description="comma-separated speedups: channels_last, fuse_qkv, compile")
    lease_seconds: int = Field(
        10,
        ge=1,
        le=3600,
        description="a whole number of seconds from 1 to 3600 (how long a running job's "
        "lease lasts unrenewed before another worker takes the job over)",
    )
    # 0: workers renew their own leases but never take a lapsed job over (only the visibility timeout does)
    lease_takeover: bool = Field(True, description="1 or 0 (true or false)")
    stuck_seconds: int = Field(
        600,
        ge=1,
        le=86400,
        description="a whole number of seconds from 1 to 86400 (how long a busy worker's GPU loop may "
        "make no progress before the worker stops advertising itself and gives up its jobs' leases)",
    )
    max_batch: int = Field(8, ge=1, le=256, description="a whole number from 1 to 256")
    # How many turns in a row a worker of several models gives its loaded model's queue while other models'
    # jobs wait; 0: no preference, the models' queues are read in turn (kombu's round robin), for comparisons.
    model_streak: int = Field(8, ge=0, le=1000, description="a whole number from 0 to 1000")
    merge: bool = Field(True, description="1 or 0 (true or false)")


def variable(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def describe(error: ValidationError, environ_value) -> str:
    """One line per bad variable: its name, the value given and what is allowed."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        info = Settings.model_fields.get(field)
        allowed = info.description if info and info.description else problem["msg"]
        lines.append(f"{variable(field)}={environ_value(variable(field))!r}: expected {allowed}")
    return "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; raises SettingsError naming every bad variable."""
    import os

    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc, lambda name: os.environ.get(name, ""))) from None
