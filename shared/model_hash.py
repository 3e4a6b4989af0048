"""A1111's short hashes of model files (`Model hash`, `Lora hashes`), computed once per file version."""

import hashlib
import os
from pathlib import Path

CHUNK_BYTES = 1 << 20
MODEL_HASH_CHARS = 10
LORA_HASH_CHARS = 12
# (path, size, mtime_ns, header skipped) -> hex digest; a file changed in place gets a new entry.
_DIGESTS: dict[tuple[str, int, int, bool], str] = {}


def _sha256_from(path: str | os.PathLike, start: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_sha256(path: str | os.PathLike, skip_header: bool) -> str:
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns, skip_header)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256_from(real, _safetensors_data_offset(real) if skip_header else 0)
    return _DIGESTS[key]


def _safetensors_data_offset(path: str) -> int:
    """Where a safetensors file's tensors start: after its 8-byte header length and the JSON header."""
    with open(path, "rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a whole file (hex), read in chunks and cached per (path, size, mtime)."""
    return _cached_sha256(path, skip_header=False)


def model_short_hash(path: str | os.PathLike) -> str:
    """A1111's `Model hash` of a checkpoint file: the first 10 hex digits of its SHA-256."""
    return sha256_file(path)[:MODEL_HASH_CHARS]


def lora_short_hash(path: str | os.PathLike) -> str:
    """A1111's `Lora hashes` entry of a LoRA file: 12 hex digits.

    As A1111 (and Civitai) compute it: a .safetensors file's SHA-256 skips its header (kohya's
    "addnet" hash, unchanged by edits of the metadata); any other file's is of the whole file."""
    skip_header = Path(path).suffix.lower() == ".safetensors"
    return _cached_sha256(path, skip_header)[:LORA_HASH_CHARS]
