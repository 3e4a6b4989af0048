"""What a failed Redis call says about the connection: refused password, TLS problem or unreachable."""

import ssl

import redis

PASSWORD_REFUSALS = ("WRONGPASS", "NOAUTH")
REFUSALS = (*PASSWORD_REFUSALS, "NOPERM")


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` is about reaching Redis at all, not about one job's records."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(REFUSALS)


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "certificate" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connection_message(exc: BaseException) -> str:
    """The status bar's text for a failed call."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, redis.AuthenticationError) or text.startswith(PASSWORD_REFUSALS):
        return f"Redis refused the password ({text})"
    if text.startswith(REFUSALS):
        return f"Redis refused access ({text})"
    if _is_tls(exc):
        return f"TLS problem with Redis ({text}); retrying"
    return f"Redis unreachable ({type(exc).__name__}: {text}); retrying"
