"""Redis replies as the types seedgrid uses.

redis-py types a reply as `bytes | str` (a connection may decode replies); seedgrid's connections never do, so
replies come as bytes. These turn one into str or bytes either way, so the checker knows which it holds.
"""


def text(reply: bytes | str) -> str:
    """A reply as str (UTF-8)."""
    return reply.decode() if isinstance(reply, bytes) else reply


def data(reply: bytes | str) -> bytes:
    """A binary reply (a PNG, a JPEG) as bytes."""
    return reply if isinstance(reply, bytes) else reply.encode()
