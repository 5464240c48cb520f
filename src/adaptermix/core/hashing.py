"""The one content hasher: every key, fingerprint and checksum of the package is SHA-256 through here.

Trial keys, config hashes, training keys, weights hashes, data fingerprints and cache keys all hash a
byte string built by their own module (canonical JSON, a tensor stream, a file's bytes) with these
functions. The byte strings and digest lengths are those each key had before this module existed, so
every stored key (results stores, artefacts, caches) stays valid; ``tests/test_hashing.py`` pins them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

#: Hex digits kept by the short keys (config hashes, trial keys, cache keys).
SHORT_HEX = 16

Chunk = str | bytes


def sha256_hex(data: Chunk | Iterable[Chunk], chars: int | None = None) -> str:
    """SHA-256 (hex) of ``data``: one chunk or an iterable of chunks hashed in order (``str`` as UTF-8),
    cut to its first ``chars`` hex digits when given."""
    h = hashlib.sha256()
    for chunk in ([data] if isinstance(data, (str, bytes)) else data):
        h.update(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
    digest = h.hexdigest()
    return digest if chars is None else digest[:chars]


def short_hash(data: Chunk | Iterable[Chunk], chars: int = SHORT_HEX) -> str:
    """The first ``chars`` (16) hex digits of :func:`sha256_hex`: the package's short keys."""
    return sha256_hex(data, chars)


def json_hash(value: Any, *, compact: bool = False, default: Any = None, ensure_ascii: bool = True,
              chars: int | None = SHORT_HEX) -> str:
    """SHA-256 of ``value`` as key-sorted JSON (``compact``: separators ``(",", ":")``; ``default``: as
    :func:`json.dumps`'s), cut to ``chars`` hex digits (``None``: the whole digest)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":") if compact else None, default=default,
                      ensure_ascii=ensure_ascii)
    return sha256_hex(text, chars)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (caches, data fingerprints, checksums).
    Never memoised by size or mtime, which a same-size rewrite within one clock tick would fool."""
    def blocks() -> Iterable[bytes]:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    return sha256_hex(blocks())


def stable_int(text: str, bits: int = 63) -> int:
    """A ``bits``-bit integer derived from ``text`` (BLAKE2b, 8 bytes, little-endian): seeds that depend on
    an identity, never on a position or on Python's randomised ``hash``."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << bits) - 1)
