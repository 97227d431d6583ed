"""Seeded randomness: every random choice in a run derives from the run seed.

``derive(seed, charger_id, purpose)`` gives an independent :class:`Stream` per charger and purpose
(behaviour, meter noise, chaos, reconnect backoff...), so adding a charger never changes the
choices of the others, and replaying a ledger's seed replays the same decisions. The derivation
hashes the parts with SHA-256, which is stable across Python versions and processes (unlike
``hash()``).

A :class:`Stream` is keyed BLAKE2b in counter mode: block ``n`` of the stream is
``blake2b(n, key=key)``, 64 bytes, read 8 bytes at a time. It exists because a fleet holds seven
or eight streams per charger: a ``random.Random`` carries the 2.5 KB state of its Mersenne
Twister, a :class:`Stream` about 200 bytes, which at 10,000 chargers is the difference between
190 MB and 15 MB. It offers the part of ``random.Random``'s interface the simulator uses
(:class:`Rng`), with the same distributions.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import struct
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar

T = TypeVar("T")

_BLOCK_BYTES: Final = 64
"""BLAKE2b's largest digest: eight 64-bit draws per hash."""
_DOUBLE_SCALE: Final = 2.0**-53
_read_u64: Final = struct.Struct("<Q").unpack_from
"""The little-endian 64-bit word at an offset of a block (cheaper than slicing the block)."""


class Rng(Protocol):
    """What the simulator asks of a random stream (a subset of ``random.Random``'s interface, so
    a ``random.Random`` fits too)."""

    def random(self) -> float: ...

    def getrandbits(self, k: int, /) -> int: ...

    def uniform(self, a: float, b: float, /) -> float: ...

    def expovariate(self, lambd: float, /) -> float: ...

    def choice(self, seq: Sequence[T], /) -> T: ...


class Stream:
    """A reproducible random stream with a small state (see the module docstring).

    Two streams with the same key yield the same draws; :meth:`spawn` derives an independent
    child stream from draws of this one.
    """

    __slots__ = ("_block", "_counter", "_key", "_offset")

    def __init__(self, key: bytes) -> None:
        if not 1 <= len(key) <= hashlib.blake2b.MAX_KEY_SIZE:
            raise ValueError(f"a stream key has 1 to 64 bytes, got {len(key)}")
        self._key = key
        self._counter = 0
        self._block = b""
        self._offset = _BLOCK_BYTES

    def _next64(self) -> int:
        """The next 64 random bits."""
        offset = self._offset
        if offset >= _BLOCK_BYTES:
            self._counter += 1
            self._block = hashlib.blake2b(self._counter.to_bytes(8, "little"),
                                          key=self._key).digest()
            offset = 0
        self._offset = offset + 8
        value: int = _read_u64(self._block, offset)[0]
        return value

    def getrandbits(self, k: int, /) -> int:
        """A non-negative integer of ``k`` random bits."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        value, filled = 0, 0
        while filled < k:
            value |= self._next64() << filled
            filled += 64
        return value >> (filled - k) if filled else 0

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits, as ``random.Random.random``."""
        return (self._next64() >> 11) * _DOUBLE_SCALE

    def uniform(self, a: float, b: float, /) -> float:
        """A float between ``a`` and ``b``, as ``random.Random.uniform``."""
        # self.random(), inlined: the meter draws five of these per reading.
        return a + (b - a) * ((self._next64() >> 11) * _DOUBLE_SCALE)

    def expovariate(self, lambd: float = 1.0, /) -> float:
        """An exponentially distributed float with rate ``lambd``, as ``random.Random``'s."""
        return -math.log(1.0 - self.random()) / lambd

    def randbelow(self, n: int) -> int:
        """An integer in [0, n), uniformly (rejection sampling, no modulo bias)."""
        if n <= 0:
            raise ValueError(f"randbelow needs n > 0, got {n}")
        k = n.bit_length()
        while True:
            r = self.getrandbits(k)
            if r < n:
                return r

    def choice(self, seq: Sequence[T], /) -> T:
        """One element of the non-empty ``seq``, uniformly."""
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randbelow(len(seq))]

    def spawn(self) -> Stream:
        """An independent child stream keyed by the next 256 bits of this one."""
        return child(self)


def child(rng: Rng) -> Stream:
    """An independent stream keyed by the next 256 bits of ``rng`` (any :class:`Rng`)."""
    return Stream(rng.getrandbits(256).to_bytes(32, "little"))


def derive(seed: int, *parts: str | int) -> Stream:
    """The stream for ``seed`` and ``parts`` (e.g. charger id, purpose)."""
    return Stream(hashlib.sha256(repr((seed, *parts)).encode()).digest())


_UUID_CLEAR: Final = ~(0xC000 << 48 | 0xF000 << 64)
"""The variant and version bits of a 128-bit uuid (cleared, then set by :data:`_UUID_SET`)."""
_UUID_SET: Final = 0x8000 << 48 | 4 << 76
"""Variant RFC 4122 and version 4."""


def uuid_ids(rng: Rng) -> Callable[[], str]:
    """Message ids as uuid4 strings (36 characters) drawn from ``rng``: unique and reproducible."""

    def new_id() -> str:
        # What str(uuid.UUID(int=bits, version=4)) gives, without building the UUID: the
        # variant bits set to RFC 4122, the version nibble to 4, then 8-4-4-4-12 hex digits.
        bits = rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET
        digits = f"{bits:032x}"
        return (f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-"
                f"{digits[20:]}")

    return new_id


def counter_ids(prefix: str = "m") -> Callable[[], str]:
    """Message ids ``m1``, ``m2``, ...: short and readable, for tests."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"
