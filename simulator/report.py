"""What happened in a run, read back from its ledger: counts, latency percentiles, errors.

:func:`summarize` reads one run of a ledger (the latest by default) through a read-only
connection and returns a frozen :class:`Report`; :func:`render_text` and :func:`render_json` turn
it into what ``sim report`` prints. Reading works while a writer is still appending and on a
ledger whose process was killed mid-run (its run still says ``running``; the duration then comes
from the last event written). The aggregation runs in SQLite (``json_extract`` over the indexed
``(run_id, kind)`` rows), so only latencies and small grouped counts reach Python.

Everything is seen from the simulated chargers' side: "received" means sent by the central system
to a charger, "sent" means sent by a charger. Latencies are in seconds.
Bad input (no such file, not SQLite, not a ledger, no such run) raises :class:`ReportError`,
whose message is one line naming the file.
"""

from __future__ import annotations

import collections
import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    CsmsFrameIn,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    LoopLagged,
    MessageDropped,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
    UnmatchedResult,
)
from simulator.ledger import (
    LOOP_PROBE_SUMMARY_KEY,
    RunRecord,
    get_run,
    open_readonly,
    queued_at_end,
)

PERCENTILES: Final = (50.0, 95.0, 99.0)
"""The latency percentiles a report gives, in percent."""

UNKNOWN_ACTION: Final = "(unknown)"
"""Action name used for frames whose action is not known (e.g. a malformed frame)."""

UNKNOWN_ERROR_CODE: Final = "(unreadable)"
"""Error code used for a CALLERROR frame whose code cannot be read from its raw text."""

_CALL: Final = 2

_Count = Callable[[type[Event]], int]
_CALL_ERROR: Final = 4


class ReportError(ValueError):
    """The ledger cannot be reported on: missing, not SQLite, not a ledger, or no such run.
    ``str()`` is one line naming the file."""


class ActionStats(msgspec.Struct, frozen=True, kw_only=True):
    """One OCPP action, from the chargers' side.

    ``calls_sent``: CALLs the chargers sent; ``calls_received``: CALLs the central system sent.
    ``results``: answers (CALLRESULT or CALLERROR) to the chargers' CALLs, each with a latency.
    ``errors_received``: CALLERRORs among those answers; ``errors_sent``: CALLERRORs the
    chargers answered the central system's CALLs with. ``timeouts``: chargers' CALLs left
    unanswered. ``p50`` / ``p95`` / ``p99`` / ``max``: latency in seconds over ``results``
    (linear interpolation between closest ranks), ``None`` without results.
    """

    action: str
    calls_sent: int = 0
    calls_received: int = 0
    results: int = 0
    errors_received: int = 0
    errors_sent: int = 0
    timeouts: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


class TransactionStats(msgspec.Struct, frozen=True, kw_only=True):
    """Transactions: ``started`` locally, ``acknowledged`` by the central system (a
    StartTransaction answer; ``accepted`` of those with idTag status Accepted), ``stopped``
    locally, and ``open`` (started, never stopped)."""

    started: int
    acknowledged: int
    accepted: int
    stopped: int
    open: int


class ConnectionStats(msgspec.Struct, frozen=True, kw_only=True):
    """Connections: every ``connects``, ``reconnects`` (connects of a charger that had connected
    before in this run), ``disconnects``, failed attempts (``connect_failures``) and the number
    of distinct ``chargers`` that connected at least once."""

    connects: int
    reconnects: int
    disconnects: int
    connect_failures: int
    chargers: int


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The summary of one run (see the module docstring for the point of view).

    ``duration`` (s) is from the run's start to its recorded end, or to its last event when no
    end was recorded (a killed or still running run: ``ended_at`` is then ``None``).
    ``call_errors_received`` / ``call_errors_sent`` map each OCPP-J error code to a count
    (sorted by code, unreadable codes last). ``actions`` are sorted by name, unknown last.
    ``faults`` maps each injected fault to a count. ``loop_lagged_seconds``: seconds in which the
    simulator's own event loop ran late (the periods of its
    :class:`~simulator.events.LoopLagged` events), the worst by ``loop_lag_max`` s (``None``
    when it never did): latencies measured then include the simulator's own delay.
    ``loop_lag_measured`` is false when the run had no probe (virtual time, a run that ended
    without its summary, or a ledger written before the probe existed).
    ``messages_queued``: transaction messages the run left undelivered in its outbox (never
    dropped, never answered: a ``--resume`` run sends them), per action in ``queued_by_action``;
    ``None`` when it is not known (an earlier run that ended before the ledger recorded it). For
    a run still going, what is queued now.
    """

    path: str
    run_id: int
    name: str
    seed: int | None
    config_sha256: str | None
    version: str | None
    status: str
    exit_code: int | None
    started_at: str
    ended_at: str | None
    duration: float
    resumed_from: int | None
    events: int
    frames_in: int
    frames_out: int
    frames_in_with_violations: int
    actions: tuple[ActionStats, ...]
    call_errors_received: dict[str, int]
    call_errors_sent: dict[str, int]
    timeouts: int
    unmatched_results: int
    messages_dropped: int
    messages_queued: int | None
    queued_by_action: dict[str, int]
    transactions: TransactionStats
    connections: ConnectionStats
    crashes: int
    faults: dict[str, int]
    csms_violations: int
    loop_lagged_seconds: float = 0.0
    loop_lag_max: float | None = None
    loop_lag_measured: bool = False


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


def summarize(path: str | Path, run_id: int | None = None) -> Report:
    """Summarize run ``run_id`` (default: the latest run) of the ledger at ``path``.

    Opens the file read-only and never writes to it. Raises :class:`ReportError` when the file
    is missing, is not SQLite, is not a ledger, or has no such run (or no run at all)."""
    target = Path(path)
    try:
        with open_readonly(target) as conn:
            return _summarize(conn, target, run_id)
    except FileNotFoundError:
        raise ReportError(f"{target}: no such ledger file") from None
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{target}: not a readable simulator ledger ({exc})") from None


def _summarize(conn: sqlite3.Connection, path: Path, run_id: int | None) -> Report:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if not {"runs", "events"} <= tables:
        raise ReportError(f"{path}: not a simulator ledger (no runs/events tables)")
    try:
        run = get_run(conn, run_id)
    except KeyError:
        which = "has no runs" if run_id is None else f"has no run with id {run_id}"
        raise ReportError(f"{path}: the ledger {which}") from None
    rid = run.id
    kinds = dict(
        conn.execute("SELECT kind, count(*) FROM events WHERE run_id = ? GROUP BY kind", (rid,))
    )

    def count(cls: type[Event]) -> int:
        return int(kinds.get(_kind(cls), 0))

    last_t = None
    if run.ended_at is None:  # killed or still running: it lasted up to its last event
        last_t = conn.execute("SELECT max(t) FROM events WHERE run_id = ?", (rid,)).fetchone()[0]
    csms_violations = conn.execute(
        "SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
        " AND data LIKE '%\"violations\":%' AND json_array_length(data, '$.violations') > 0",
        (rid, _kind(CsmsFrameIn)),
    ).fetchone()[0]
    frames = _FrameTally(conn, rid)
    queued = queued_at_end(conn, run)
    lagged_s, loop_lag_max = conn.execute(
        "SELECT total(coalesce(json_extract(data, '$.period'), 1.0)),"
        " max(json_extract(data, '$.max')) FROM events WHERE run_id = ? AND kind = ?",
        (rid, _kind(LoopLagged)),
    ).fetchone()
    return Report(
        path=str(path),
        run_id=rid,
        name=run.name,
        seed=run.seed,
        config_sha256=run.config_sha256,
        version=run.version,
        status=run.status,
        exit_code=run.exit_code,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration=_duration(run, last_t),
        resumed_from=run.resumed_from,
        events=sum(int(n) for n in kinds.values()),
        frames_in=count(FrameIn),
        frames_out=count(FrameOut),
        frames_in_with_violations=frames.violations_in,
        actions=frames.stats(),
        call_errors_received=_sorted(frames.errors_received, UNKNOWN_ERROR_CODE),
        call_errors_sent=_sorted(frames.errors_sent, UNKNOWN_ERROR_CODE),
        timeouts=count(CallTimedOut),
        unmatched_results=count(UnmatchedResult),
        messages_dropped=count(MessageDropped),
        messages_queued=None if queued is None else sum(queued.values()),
        queued_by_action={} if queued is None else dict(sorted(queued.items())),
        transactions=_transactions(conn, rid, count),
        connections=_connections(conn, rid, count),
        crashes=count(Crashed),
        faults=_grouped(conn, rid, FaultInjected, "$.fault"),
        csms_violations=int(csms_violations),
        loop_lagged_seconds=round(float(lagged_s), 3),
        loop_lag_max=None if loop_lag_max is None else float(loop_lag_max),
        loop_lag_measured=bool(loop_lag_max is not None
                               or (run.summary or {}).get(LOOP_PROBE_SUMMARY_KEY)),
    )


def _kind(cls: type[Event]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)  # every event class has a string tag (see simulator.events)
    return tag


def _duration(run: RunRecord, last_t: float | None) -> float:
    if run.ended_at is not None:
        try:
            started = datetime.fromisoformat(run.started_at)
            ended = datetime.fromisoformat(run.ended_at)
        except ValueError:
            pass
        else:
            return max(0.0, (ended - started).total_seconds())
    return max(0.0, float(last_t or 0.0))


def _grouped(conn: sqlite3.Connection, rid: int, cls: type[Event], field: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT json_extract(data, ?), count(*) FROM events WHERE run_id = ? AND kind = ?"
        " GROUP BY 1",
        (field, rid, _kind(cls)),
    )
    return dict(sorted((str(key), int(n)) for key, n in rows))


# The frame passes. ``data`` is compact JSON written by msgspec, in which an embedded ``raw``
# frame has its quotes escaped; so ``LIKE '%"field":%'`` is a cheap prefilter for a top-level
# field (never a false negative; a false positive is checked again after parsing). SQLite before
# 3.45 re-parses ``data`` for every json_extract call, hence one multi-path extract per row.
_FRAME_GROUPS: Final = (
    "SELECT kind, json_extract(data, '$.message_type', '$.action', '$.violations[0]'),"
    " CASE WHEN data LIKE '%\"message_type\":4%' AND json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END, count(*)"
    " FROM events WHERE run_id = ? AND kind IN (?, ?) GROUP BY 1, 2, 3"
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


class _FrameTally:
    """Per-action counts, CALLERROR codes and violations from the run's frame events."""

    def __init__(self, conn: sqlite3.Connection, rid: int) -> None:
        self.actions: dict[str, _ActionCounts] = {}
        self.errors_received: dict[str, int] = {}
        self.errors_sent: dict[str, int] = {}
        self.violations_in = 0
        self.latencies: dict[str, list[float]] = {}
        frame_in, frame_out = _kind(FrameIn), _kind(FrameOut)
        for kind, key_json, code, n in conn.execute(_FRAME_GROUPS, (rid, frame_in, frame_out)):
            key = _group_key_decoder.decode(key_json)
            incoming = kind == frame_in
            self._count(incoming, key, code, int(n))
        by_action: dict[str | None, list[float]] = {}
        for (data,) in conn.execute(_ANSWERS, (rid, frame_in)):
            answer = _answer_decoder.decode(data)
            if answer.latency is not None:
                by_action.setdefault(answer.action, []).append(answer.latency)
        for action, samples in by_action.items():
            name = _action_name(action)
            self.latencies.setdefault(name, []).extend(samples)
            self.of(name)
        for action, n in _grouped(conn, rid, CallTimedOut, "$.action").items():
            self.of(action).timeouts += n

    def of(self, action: Any) -> _ActionCounts:
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
        stats: list[ActionStats] = []
        for action in sorted(self.actions, key=lambda name: (name == UNKNOWN_ACTION, name)):
            entry = self.actions[action]
            samples = sorted(self.latencies.get(action, ()))
            p50, p95, p99 = (
                (percentile(samples, p) for p in PERCENTILES) if samples else (None, None, None)
            )
            stats.append(ActionStats(
                action=action, calls_sent=entry.calls_sent, calls_received=entry.calls_received,
                results=len(samples), errors_received=entry.errors_received,
                errors_sent=entry.errors_sent, timeouts=entry.timeouts,
                p50=p50, p95=p95, p99=p99, max=samples[-1] if samples else None,
            ))
        return tuple(stats)


def _sorted(counts: dict[str, int], unknown: str) -> dict[str, int]:
    """``counts`` ordered by key, the ``unknown`` key last."""
    return {key: counts[key] for key in sorted(counts, key=lambda k: (k == unknown, k))}


def _transactions(conn: sqlite3.Connection, rid: int, count: _Count) -> TransactionStats:
    accepted = conn.execute(
        "SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
        " AND json_extract(data, '$.status') = 'Accepted'",
        (rid, _kind(TransactionAcknowledged)),
    ).fetchone()[0]
    # (charger, local_id) of every start and stop; a stop closes one start with the same key.
    ends: dict[str, collections.Counter[tuple[str | None, Any]]] = {}
    for kind in (_kind(TransactionStarted), _kind(TransactionStopped)):
        ends[kind] = collections.Counter(conn.execute(
            "SELECT charger, json_extract(data, '$.local_id') FROM events"
            " WHERE run_id = ? AND kind = ?",
            (rid, kind),
        ).fetchall())
    open_count = (ends[_kind(TransactionStarted)] - ends[_kind(TransactionStopped)]).total()
    return TransactionStats(
        started=count(TransactionStarted),
        acknowledged=count(TransactionAcknowledged),
        accepted=int(accepted),
        stopped=count(TransactionStopped),
        open=int(open_count),
    )


def _connections(conn: sqlite3.Connection, rid: int, count: _Count) -> ConnectionStats:
    # Not GROUP BY charger: SQLite would then walk the (run_id, charger) index over every event.
    per_charger = collections.Counter(
        charger
        for (charger,) in conn.execute(
            "SELECT charger FROM events WHERE run_id = ? AND kind = ?", (rid, _kind(Connected))
        )
    )
    return ConnectionStats(
        connects=count(Connected),
        reconnects=sum(n - 1 for n in per_charger.values()),
        disconnects=count(Disconnected),
        connect_failures=count(ConnectFailed),
        chargers=len(per_charger),
    )


# --- rendering ----------------------------------------------------------------------------------

_encoder: Final = msgspec.json.Encoder()


def render_json(report: Report) -> str:
    """``report`` as one JSON object (the fields of :class:`Report`; latencies in seconds)."""
    return _encoder.encode(report).decode()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


MAX_SHOWN: Final = 40
"""Characters of a name that came from outside (an action, an error code) the text report
shows; a longer one is cut with an ellipsis."""


def _clip(text: str) -> str:
    """``text`` as one short printable cell: what a central system sends may be any length and
    hold control characters."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 1] + "…"


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{_clip(code)} {n}" for code, n in counts.items()) if counts else "none"


def _queued(r: Report) -> str:
    if r.messages_queued is None:
        return "(not recorded)"
    if not r.messages_queued:
        return "0"
    return f"{r.messages_queued} ({_codes(r.queued_by_action)})"


def _loop_lag_line(r: Report) -> str:
    if not r.loop_lag_measured:
        return "simulator event loop: not measured (virtual time, or no probe in this run)"
    if r.loop_lag_max is None:
        return "simulator event loop: on time"
    return (f"simulator event loop: late in {r.loop_lagged_seconds:g} s of the run, by up to"
            f" {_ms(r.loop_lag_max)} ms: latencies then include the simulator's own delay"
            " (the fleet asked for more than this process serves)")


def render_text(report: Report) -> str:
    """``report`` as a readable plain-text page (latencies in milliseconds), no trailing
    newline."""
    r = report
    exit_code = "-" if r.exit_code is None else str(r.exit_code)
    lines = [
        f"Run {r.run_id} {r.name!r} in {r.path}: {r.status} (exit code {exit_code})",
        f"  seed {r.seed}   config sha256 {r.config_sha256 or '-'}   version {r.version or '-'}",
        f"  started {r.started_at}   ended {r.ended_at or '- (no end recorded)'}"
        f"   duration {r.duration:.1f} s",
    ]
    if r.resumed_from is not None:
        lines.append(f"  resumed from run {r.resumed_from}")
    if r.status == "running":
        lines.append("  the run has no end: it is still going, or its process was killed")
    lines.append("")
    header = ("action", "sent", "recv", "results", "err in", "err out", "timeouts",
              "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (_clip(a.action), str(a.calls_sent), str(a.calls_received), str(a.results),
         str(a.errors_received), str(a.errors_sent), str(a.timeouts),
         _ms(a.p50), _ms(a.p95), _ms(a.p99), _ms(a.max))
        for a in r.actions
    ]
    if rows:
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
    else:
        lines.append("no frames recorded")
    t, c = r.transactions, r.connections
    lines += [
        "",
        f"CALLERRORs received: {_codes(r.call_errors_received)}",
        f"CALLERRORs sent:     {_codes(r.call_errors_sent)}",
        f"timeouts {r.timeouts}   unmatched results {r.unmatched_results}"
        f"   messages dropped {r.messages_dropped}   still queued {_queued(r)}",
        f"transactions: started {t.started}, acknowledged {t.acknowledged}"
        f" ({t.accepted} accepted), stopped {t.stopped}, open {t.open}",
        f"connections: {c.chargers} chargers, connects {c.connects}, reconnects {c.reconnects},"
        f" disconnects {c.disconnects}, failed attempts {c.connect_failures}",
        f"crashes {r.crashes}",
        f"faults injected: {_codes(r.faults)}",
        f"frames: in {r.frames_in} ({r.frames_in_with_violations} with violations),"
        f" out {r.frames_out}; events {r.events}; CSMS-side violations {r.csms_violations}",
        _loop_lag_line(r),
    ]
    return "\n".join(lines)
