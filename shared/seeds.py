"""Seed lists as people type them: a range `0-7`, a list `3,17,42`, or `random:8`."""

import secrets

from seedgrid.shared import limits as L
from seedgrid.shared.request import RequestError


def parse_seeds(text: str, field: str = "seeds") -> list[int]:
    """Turn a seed spec into a list of seeds, or raise a RequestError naming `field`."""
    spec = text.strip().lower()
    if not spec:
        raise RequestError(field, "is empty")
    if spec.startswith("random:"):
        count = _int(spec.removeprefix("random:"), field)
        if not 1 <= count <= L.MAX_SEEDS:
            raise RequestError(field, f"random:{count} asks for {count} seeds")
        return [secrets.randbelow(L.MAX_SEED + 1) for _ in range(count)]
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part.lstrip("-"):
            lo_text, hi_text = part.split("-", 1)
            lo, hi = _int(lo_text, field), _int(hi_text, field)
            if hi < lo:
                raise RequestError(field, f"range {part!r} runs backwards")
            if hi - lo + 1 > L.MAX_SEEDS:
                raise RequestError(field, f"range {part!r} holds {hi - lo + 1} seeds")
            seeds.extend(range(lo, hi + 1))
        else:
            seeds.append(_int(part, field))
    for s in seeds:
        if not L.MIN_SEED <= s <= L.MAX_SEED:
            raise RequestError(field, f"seed {s} is out of range")
    if len(seeds) > L.MAX_SEEDS:
        raise RequestError(field, f"got {len(seeds)} seeds")
    return seeds


def _int(text: str, field: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise RequestError(field, f"{text.strip()!r} is not a whole number (use 0-7, 3,17,42 or random:8)") from None
