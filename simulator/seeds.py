"""Seeded randomness: every random choice in a run derives from the run seed.

``derive(seed, charger_id, purpose)`` gives an independent ``random.Random`` per charger and purpose
(behaviour, meter noise, chaos, reconnect backoff...), so adding a charger never changes the
choices of the others, and replaying a ledger's seed replays the same decisions. The derivation
hashes the three parts with SHA-256, which is stable across Python versions and processes (unlike
``hash()``).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from collections.abc import Callable


def derive(seed: int, *parts: str | int) -> random.Random:
    """A ``random.Random`` seeded from ``seed`` and ``parts`` (e.g. charger id, purpose)."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def uuid_ids(rng: random.Random) -> Callable[[], str]:
    """Message ids as uuid4 strings (36 characters) drawn from ``rng``: unique and reproducible."""

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    return new_id


def counter_ids(prefix: str = "m") -> Callable[[], str]:
    """Message ids ``m1``, ``m2``, ...: short and readable, for tests."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"
