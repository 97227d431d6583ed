"""The chaos catalog: the fault names users write in ``[[chaos]]``, their families, and the rules a
fault's schedule must follow. Pure data and checks (no trio, no I/O).

The names are a contract with users, in four families (transport, protocol, behaviour, fleet):
renaming one breaks fleet files. A check that fails raises :class:`CatalogError` naming the key
at fault (``fault``, ``every``, ``for``, ``probability``...) and a message fit to follow
``file: chaos[i].key:`` in a one-line error.
"""

from __future__ import annotations

import difflib
import enum
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import msgspec

__all__ = [
    "CATALOG",
    "FAULTS",
    "CatalogError",
    "Family",
    "Schedule",
    "check_fault",
    "check_schedule",
    "family_of",
]


class Family(enum.StrEnum):
    """Where a fault acts: the link, the OCPP-J framing, the charger's behaviour, or many chargers
    at once."""

    TRANSPORT = "transport"
    PROTOCOL = "protocol"
    BEHAVIOUR = "behaviour"
    FLEET = "fleet"


CATALOG: Final[Mapping[Family, frozenset[str]]] = MappingProxyType({
    Family.TRANSPORT: frozenset({
        "latency", "bandwidth", "fragment", "disconnect", "reset", "half_open",
        "slow_close", "partition", "reconnect_storm", "identity_clash",
    }),
    Family.PROTOCOL: frozenset({
        "malformed_json", "bad_message_type", "duplicate_id", "overlong_id",
        "concurrent_call", "unknown_action", "schema_violation", "oversize_payload",
        "late_result", "unsolicited_result", "wrong_id_result", "error_code_spelling",
    }),
    Family.BEHAVIOUR: frozenset({
        "clock_skew", "meter_regress", "meter_spike", "duplicate_start",
        "stale_transaction_id", "missing_transaction_id", "connector_fault", "boot_loop",
        "power_loss", "firmware_failure", "slow_responses", "reject_commands",
    }),
    Family.FLEET: frozenset({"blackout", "wave"}),
})  # fmt: skip
"""The fault names of each family."""

FAULTS: Final[frozenset[str]] = frozenset().union(*CATALOG.values())
"""Every valid ``[[chaos]] fault`` name."""

_FAMILY_OF: Final[Mapping[str, Family]] = MappingProxyType(
    {fault: family for family, faults in CATALOG.items() for fault in faults}
)


class CatalogError(ValueError):
    """A fault, schedule or target the catalog does not allow. ``path`` is where, in the keys of
    the table checked (TOML spelling: ``("for",)``, not ``for_``; ``()`` for the table itself);
    ``message`` says what is wrong and what to write."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """When a fault fires: first ``at`` seconds after the start, then every ``every`` seconds if
    set; each time each target is hit with ``probability``; an injection lasts ``for_`` seconds
    (TOML ``for``) if set, else it is instantaneous."""

    at: float = 0.0
    every: float | None = None
    probability: float = 1.0
    for_: float | None = None


def one_of(word: str, choices: Sequence[str]) -> str:
    """``"expected one of a, b, c"`` (at most twelve listed), with the closest to ``word``."""
    listed = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"expected one of {listed}{hint}"


def family_of(fault: str) -> Family:
    """The family of a catalog fault; raises :class:`CatalogError` for an unknown name."""
    return _FAMILY_OF[check_fault(fault)]


def check_fault(name: str) -> str:
    """``name`` if the catalog has it; else :class:`CatalogError` (at ``fault``) listing the
    names and suggesting the closest one."""
    if name not in FAULTS:
        shown = '"' + name + '"'
        raise CatalogError(("fault",), f"unknown fault {shown}; {one_of(name, sorted(FAULTS))}")
    return name


def _seconds(value: float, key: str, *, positive: bool) -> float:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "longer than 0s" if positive else "a finite number of seconds >= 0"
        shown = f"{value:g}s" if math.isfinite(value) else f"{value:g}"
        raise CatalogError((key,), f"must be {bound}, got {shown}")
    return value


MIN_EVERY: Final = 0.001
"""The shortest ``every`` a rule may have, in seconds."""


def check_schedule(
    *,
    at: float = 0.0,
    every: float | None = None,
    probability: float = 1.0,
    lasting: float | None = None,
) -> Schedule:
    """A :class:`Schedule` from seconds and a probability, or :class:`CatalogError`: ``at`` must
    be >= 0; ``every``, when given, at least :data:`MIN_EVERY`; ``lasting`` (TOML ``for``),
    when given, longer than 0s; ``probability`` within 0..1."""
    if not 0.0 <= probability <= 1.0:
        raise CatalogError(("probability",), f"must be within 0..1, got {probability!r}")
    seconds = None if every is None else _seconds(every, "every", positive=True)
    if seconds is not None and seconds < MIN_EVERY:
        raise CatalogError(("every",), f"must be at least {MIN_EVERY * 1000:g}ms (a rule "
                                       f"firing more often would do nothing else), got "
                                       f"{seconds!r}s")
    return Schedule(
        at=_seconds(at, "at", positive=False),
        every=seconds,
        probability=probability,
        for_=None if lasting is None else _seconds(lasting, "for", positive=True),
    )
