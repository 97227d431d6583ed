"""The frame passes of a report: per-action counts, CALLERROR codes, violations and latency
percentiles, aggregated in SQLite over a run's ``frame_in`` / ``frame_out`` rows (the indexed
``(run_id, kind)``), so that only latencies and small grouped counts reach Python.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from simulator.events import CallTimedOut, Event, FrameIn, FrameOut
from simulator.report.model import ActionStats

PERCENTILES: Final = (50.0, 95.0, 99.0)
"""The latency percentiles a report gives, in percent."""

UNKNOWN_ACTION: Final = "(unknown)"
"""Action name used for frames whose action is not known (e.g. a malformed frame)."""

UNKNOWN_ERROR_CODE: Final = "(unreadable)"
"""Error code used for a CALLERROR frame whose code cannot be read from its raw text."""

_CALL: Final = 2
_CALL_ERROR: Final = 4


def kind(cls: type[Event]) -> str:
    """The ``kind`` (tag) under which the ledger stores events of ``cls``."""
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)  # every event class has a string tag (see simulator.events)
    return tag


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """The ``percent`` (0..100) percentile of ``sorted_values`` (ascending, non-empty), by
    linear interpolation between closest ranks (numpy's default method).

    Raises ``ValueError`` on an empty sequence or a percent outside 0..100."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be within 0..100, got {percent}")
    rank = (len(sorted_values) - 1) * percent / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def grouped(conn: sqlite3.Connection, rid: int, cls: type[Event], field: str,
            charger: str | None = None) -> dict[str, int]:
    """Events of ``cls`` in run ``rid`` (of one ``charger`` if given) counted by the JSON path
    ``field`` of their data, sorted by value."""
    sql = ("SELECT json_extract(data, ?), count(*) FROM events WHERE run_id = ? AND kind = ?"
           + ("" if charger is None else " AND charger = ?") + " GROUP BY 1")
    args: tuple[Any, ...] = (field, rid, kind(cls))
    rows = conn.execute(sql, args if charger is None else (*args, charger))
    return dict(sorted((str(key), int(n)) for key, n in rows))


def sorted_codes(counts: dict[str, int], unknown: str = UNKNOWN_ERROR_CODE) -> dict[str, int]:
    """``counts`` ordered by key, the ``unknown`` key last."""
    return {key: counts[key] for key in sorted(counts, key=lambda k: (k == unknown, k))}


def to_ms(seconds: float) -> float:
    """``seconds`` in milliseconds, rounded to the microsecond."""
    return round(seconds * 1000.0, 3)


# ``data`` is compact JSON written by msgspec, in which an embedded ``raw`` frame has its quotes
# escaped; so ``LIKE '%"field":%'`` is a cheap prefilter for a top-level field (never a false
# negative; a false positive is checked again after parsing). SQLite before 3.45 re-parses
# ``data`` for every json_extract call, hence one multi-path extract per row.
_FRAME_GROUPS: Final = (
    "SELECT kind, json_extract(data, '$.message_type', '$.action', '$.violations[0]'),"
    " CASE WHEN data LIKE '%\"message_type\":4%' AND json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END, count(*)"
    " FROM events WHERE run_id = ? AND kind IN (?, ?) {charger} GROUP BY 1, 2, 3"
)
_ANSWERS: Final = (
    "SELECT data FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"latency\":%'"
)


class _GroupKey(msgspec.Struct, array_like=True):
    message_type: Any
    action: Any
    violation: Any


class _Answer(msgspec.Struct):
    action: str | None = None
    latency: float | None = None


_group_key_decoder: Final = msgspec.json.Decoder(_GroupKey)
_answer_decoder: Final = msgspec.json.Decoder(_Answer)


def _action_name(action: Any) -> str:
    return action if isinstance(action, str) and action else UNKNOWN_ACTION


class _ActionCounts:
    __slots__ = ("calls_received", "calls_sent", "errors_received", "errors_sent", "timeouts")

    def __init__(self) -> None:
        self.calls_sent = 0
        self.calls_received = 0
        self.errors_received = 0
        self.errors_sent = 0
        self.timeouts = 0


class FrameTally:
    """Per-action counts, CALLERROR codes and violations from run ``rid``'s frame events (of
    one ``charger`` if given; latencies only for the whole run)."""

    def __init__(self, conn: sqlite3.Connection, rid: int, charger: str | None = None) -> None:
        self.actions: dict[str, _ActionCounts] = {}
        self.errors_received: dict[str, int] = {}
        self.errors_sent: dict[str, int] = {}
        self.violations_in = 0
        self.latencies: dict[str, list[float]] = {}
        frame_in, frame_out = kind(FrameIn), kind(FrameOut)
        sql = _FRAME_GROUPS.format(charger="" if charger is None else "AND charger = ?")
        args: tuple[Any, ...] = (rid, frame_in, frame_out)
        for kind_, key_json, code, n in conn.execute(
                sql, args if charger is None else (*args, charger)):
            key = _group_key_decoder.decode(key_json)
            self._count(kind_ == frame_in, key, code, int(n))
        if charger is not None:
            return
        by_action: dict[str | None, list[float]] = {}
        for (data,) in conn.execute(_ANSWERS, (rid, frame_in)):
            answer = _answer_decoder.decode(data)
            if answer.latency is not None:
                by_action.setdefault(answer.action, []).append(answer.latency)
        for action, samples in by_action.items():
            name = _action_name(action)
            self.latencies.setdefault(name, []).extend(samples)
            self.of(name)
        for action, n in grouped(conn, rid, CallTimedOut, "$.action").items():
            self.of(action).timeouts += n

    def of(self, action: Any) -> _ActionCounts:
        """The counts of ``action`` (created empty)."""
        return self.actions.setdefault(_action_name(action), _ActionCounts())

    def _count(self, incoming: bool, key: _GroupKey, code: Any, n: int) -> None:
        entry = self.of(key.action)
        if incoming and key.violation is not None:
            self.violations_in += n
        if key.message_type == _CALL:
            if incoming:
                entry.calls_received += n
            else:
                entry.calls_sent += n
        elif key.message_type == _CALL_ERROR:
            codes = self.errors_received if incoming else self.errors_sent
            name = code if isinstance(code, str) and code else UNKNOWN_ERROR_CODE
            codes[name] = codes.get(name, 0) + n
            if incoming:
                entry.errors_received += n
            else:
                entry.errors_sent += n

    def stats(self) -> tuple[ActionStats, ...]:
        """Every action's stats, by name (unknown last)."""
        stats: list[ActionStats] = []
        for action in sorted(self.actions, key=lambda name: (name == UNKNOWN_ACTION, name)):
            entry = self.actions[action]
            samples = sorted(self.latencies.get(action, ()))
            p50, p95, p99 = (
                (to_ms(percentile(samples, p)) for p in PERCENTILES) if samples
                else (None, None, None)
            )
            stats.append(ActionStats(
                action=action, calls_sent=entry.calls_sent, calls_received=entry.calls_received,
                results=len(samples), errors_received=entry.errors_received,
                errors_sent=entry.errors_sent, timeouts=entry.timeouts,
                p50_ms=p50, p95_ms=p95, p99_ms=p99, max_ms=to_ms(samples[-1]) if samples else None,
            ))
        return tuple(stats)
