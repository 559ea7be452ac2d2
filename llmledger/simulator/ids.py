"""Deterministic randomness and identifiers for the simulator.

Every random draw comes from a stream keyed by (seed, day, origin, purpose), so one day or one
route can be regenerated alone and gives the same values; ids are hashes of the same keys
(splitmix64), rendered as hex. Nothing here reads the clock or global random state.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stream(seed: int, day: int, origin: int, purpose: int = 0) -> np.random.Generator:
    """The random stream for one (seed, day ordinal, origin, purpose) key."""
    return np.random.default_rng(np.random.SeedSequence([seed, day, origin, purpose]))


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def mix(*parts: int | np.ndarray) -> np.ndarray:
    """A 64-bit hash of integer keys (scalars broadcast against arrays)."""
    arrays = [np.asarray(p).astype(np.uint64) for p in parts]
    size = max((a.size for a in arrays if a.ndim), default=1)
    h = np.zeros(size, dtype=np.uint64)
    for a in arrays:
        h = _splitmix(h ^ _splitmix(np.broadcast_to(a, (size,)).astype(np.uint64)))
    return h


def hex64(values: np.ndarray) -> pl.Series:
    """16-character lower-case hex of unsigned 64-bit values (big-endian), vectorised."""
    n = int(values.size)
    raw = np.ascontiguousarray(values.astype(">u8")).tobytes()
    binary = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), n, [None, pa.py_buffer(raw)])
    return pl.Series(pl.from_arrow(binary)).cast(pl.Binary).bin.encode("hex")
