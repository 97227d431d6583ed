"""Durations and ranges as people write them in fleet files, parsed into seconds and ``Range``.

A duration is a number of seconds (``30``, ``0.5``) or a string of number-unit parts with the units
``d``, ``h``, ``m``, ``s`` and ``ms`` in decreasing order: ``"500ms"``, ``"30s"``, ``"2m"``,
``"1h30m"``, ``"1.5h"``. A bare number inside a string (``"30"``) is seconds too. Durations are
never negative. A range is ``"low..high"`` (``"20m..2h"`` for durations, ``"5..40"`` for plain
numbers); a single value is the range from that value to itself. Parsing is pure; failures raise
:class:`DurationError` with a message fit to follow ``file: field:`` in a one-line error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

import msgspec

from simulator.seeds import Rng

UNITS: Final[dict[str, float]] = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
"""Seconds per unit, largest first (the order parts must follow)."""

_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN: Final = re.compile(rf"\s*({_NUMBER})\s*")
_PART: Final = re.compile(rf"\s*({_NUMBER})\s*(ms|d|h|m|s)\s*")
_RANGE_SEPARATOR: Final = ".."

_DURATION_HINT: Final = "write e.g. 500ms, 30s, 2m, 1h30m or a number of seconds"


class DurationError(ValueError):
    """A duration or range that does not parse; ``str()`` says what is wrong and how to write it."""


class Range(msgspec.Struct, frozen=True):
    """A closed interval ``[low, high]``: seconds for durations, else the unit of the field."""

    low: float
    high: float

    def draw(self, rng: Rng) -> float:
        """A value drawn uniformly from the range with ``rng`` (``low`` itself when low == high)."""
        if self.low == self.high:
            return self.low
        return rng.uniform(self.low, self.high)

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _number(value: float | int, what: str) -> float:
    if isinstance(value, bool):
        raise DurationError(f"expected {what}, got {str(value).lower()}")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise DurationError(f"must be a finite number >= 0, got {_show(value)}")
    return result


def parse_duration(value: str | int | float) -> float:
    """Seconds (>= 0) from ``"1h30m"``, ``"500ms"``, ``"30"`` or a number of seconds.

    Raises :class:`DurationError` on anything else (negative, unknown unit, units out of order).
    """
    if not isinstance(value, str):
        return _number(value, "a duration")
    plain = _PLAIN.fullmatch(value)
    if plain:
        return float(plain.group(1))
    total = 0.0
    position = 0
    last_rank = -1
    ranks = list(UNITS)
    while position < len(value):
        part = _PART.match(value, position)
        if part is None:
            raise DurationError(f"{_show(value)} is not a duration; {_DURATION_HINT}")
        rank = ranks.index(part.group(2))
        if rank <= last_rank:
            raise DurationError(
                f"{_show(value)} has its units out of order or repeated; "
                "write the largest unit first, e.g. 1h30m"
            )
        last_rank = rank
        total += float(part.group(1)) * UNITS[part.group(2)]
        position = part.end()
    if last_rank < 0:
        raise DurationError(f"{_show(value)} is not a duration; {_DURATION_HINT}")
    return total


def _parse_number(value: str | int | float) -> float:
    if not isinstance(value, str):
        return _number(value, "a number")
    plain = _PLAIN.fullmatch(value)
    if plain is None:
        raise DurationError(f"{_show(value)} is not a number >= 0")
    return float(plain.group(1))


def _parse_range(
    value: str | int | float, bound: Callable[[str | int | float], float], example: str
) -> Range:
    if isinstance(value, str) and _RANGE_SEPARATOR in value:
        low_text, _, high_text = value.partition(_RANGE_SEPARATOR)
        try:
            low, high = bound(low_text), bound(high_text)
        except DurationError as error:
            raise DurationError(
                f"{_show(value)} is not a range: {error}; write e.g. {example}"
            ) from None
        if low > high:
            raise DurationError(
                f"{_show(value)} has low {low_text.strip()} above high {high_text.strip()}; "
                "write low..high"
            )
        return Range(low, high)
    single = bound(value)
    return Range(single, single)


def parse_duration_range(value: str | int | float) -> Range:
    """A range of durations in seconds from ``"20m..2h"``; a single duration is a one-point range.

    Raises :class:`DurationError` when a bound does not parse or ``low > high``.
    """
    return _parse_range(value, parse_duration, '"20m..2h"')


def parse_number_range(value: str | int | float) -> Range:
    """A range of non-negative numbers from ``"5..40"``; a single number is a one-point range.

    Raises :class:`DurationError` when a bound does not parse or ``low > high``.
    """
    return _parse_range(value, _parse_number, '"5..40"')


def format_duration(seconds: float) -> str:
    """The shortest duration string that :func:`parse_duration` reads back as ``seconds``
    (``90`` → ``"1m30s"``, ``0.5`` → ``"500ms"``, ``0`` → ``"0s"``)."""
    if seconds < 0 or not math.isfinite(seconds):
        raise DurationError(f"cannot format {seconds!r} as a duration")
    milliseconds = round(seconds * 1000)
    if milliseconds != seconds * 1000:  # sub-millisecond precision: keep it exact
        return f"{seconds!r}s"
    if milliseconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in UNITS.items():
        unit_ms = round(size * 1000)
        count, milliseconds = divmod(milliseconds, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_range(value: Range, *, duration: bool = True) -> str:
    """``Range`` back to its file form: ``"20m..2h"`` (durations) or ``"5..40"`` (numbers)."""
    if duration:
        low, high = format_duration(value.low), format_duration(value.high)
    else:
        low, high = f"{value.low:g}", f"{value.high:g}"
    return low if value.low == value.high else f"{low}..{high}"
