"""Each injected fault paired with what the central system did next for its charger: the first
frame it sent, the CALLERRORs, and, when the fault took the connection down, how long the
charger took to be back (connected, its boot Accepted).

One pass over the run's events of the kinds that matter, in ``seq`` order, per charger that had
a fault: a ledger of a simulated day is read once, not once per fault. ``FaultInjected.until`` is
monotonic time, as every event's ``t`` is before the ledger makes it relative: it is read back
with the clock origin the run stored in its summary (:data:`CLOCK_ORIGIN_SUMMARY_KEY`); without
it (a killed run) a fault's end is unknown and recovery counts from the injection.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from simulator.events import BootResult, Connected, Disconnected, FaultInjected, FrameIn, FrameOut
from simulator.ledger import RunRecord
from simulator.report.frames import UNKNOWN_ERROR_CODE, kind
from simulator.report.model import FaultEffect

CLOCK_ORIGIN_SUMMARY_KEY: Final = "clock_origin"
"""Set in a run's stored ``summary``: the monotonic time (s) at which the run started, so that
monotonic times inside event data (``FaultInjected.until``) can be read as seconds since the
run's start."""

DISCONNECT_WINDOW_S: Final = 5.0
"""A disconnection at most this long (s) after a fault's end (or a one-shot fault's injection),
before the next fault on the same charger, counts as the fault's doing."""

ACCEPTED: Final = "Accepted"
BOOT: Final = "BootNotification"

_MESSAGE_NAMES: Final = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}

_TIMELINE: Final = (
    "SELECT seq, t, charger, connector, kind,"
    " CASE kind WHEN ? THEN data"
    " WHEN ? THEN json_extract(data, '$.status')"
    " WHEN ? THEN json_extract(data, '$.message_type', '$.action', '$.unique_id')"
    " WHEN ? THEN json_extract(data, '$.action', '$.unique_id', '$.injection') END,"
    " CASE WHEN kind = ? AND data LIKE '%\"message_type\":4%'"
    " AND json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END"
    " FROM events WHERE run_id = ? AND (kind IN (?, ?, ?, ?, ?) OR (kind = ?"
    " AND ((data LIKE '%\"action\":\"BootNotification\"%'"
    " AND json_extract(data, '$.action') = 'BootNotification')"
    " OR data LIKE '%\"injection\":%'))) ORDER BY seq"
)


class _Fault(msgspec.Struct, frozen=True):
    fault: str = "?"
    injection: str | None = None
    until: float | None = None
    deliberate: bool = False


class _Frame(msgspec.Struct, array_like=True, frozen=True):
    message_type: Any = None
    action: Any = None
    unique_id: Any = None
    code: Any = None  # a CALLERROR's, read apart from the rest


class _Sent(msgspec.Struct, array_like=True, frozen=True):
    action: Any = None
    unique_id: Any = None
    injection: Any = None


_fault_decoder: Final = msgspec.json.Decoder(_Fault)
_sent_decoder: Final = msgspec.json.Decoder(_Sent)
_frame_decoder: Final = msgspec.json.Decoder(_Frame)


class Moment(msgspec.Struct, frozen=True):
    """One event of a charger's timeline that the fault pairing reads (``t`` in seconds since
    the run's start). ``what`` is the event kind; ``frame`` is set for a received frame,
    ``sent`` for a sent BootNotification or a frame a protocol fault made or changed,
    ``status`` for a boot answer, ``fault`` for an injection."""

    seq: int
    t: float
    what: str
    connector: int | None = None
    frame: _Frame | None = None
    sent: _Sent | None = None
    status: str | None = None
    fault: _Fault | None = None


def timelines(conn: sqlite3.Connection, rid: int) -> dict[str, list[Moment]]:
    """Per charger that had a fault injected in run ``rid``: its faults, received frames,
    connections, disconnections, boot answers and sent BootNotifications, in ``seq`` order."""
    fault_kind = kind(FaultInjected)
    hit = {charger for (charger,) in conn.execute(
        "SELECT DISTINCT charger FROM events WHERE run_id = ? AND kind = ?"
        " AND charger IS NOT NULL", (rid, fault_kind))}
    if not hit:
        return {}
    frame_in, frame_out, boot = kind(FrameIn), kind(FrameOut), kind(BootResult)
    rows = conn.execute(_TIMELINE, (
        fault_kind, boot, frame_in, frame_out, frame_in, rid, fault_kind, frame_in,
        kind(Connected), kind(Disconnected), boot, frame_out))
    lines: dict[str, list[Moment]] = collections.defaultdict(list)
    for seq, t, charger, connector, what, extra, code in rows:
        if charger not in hit:
            continue
        frame = None
        if what == frame_in:
            frame = msgspec.structs.replace(_frame_decoder.decode(extra), code=code)
        lines[charger].append(Moment(
            seq=int(seq), t=float(t), what=str(what), connector=connector, frame=frame,
            sent=_sent_decoder.decode(extra) if what == frame_out else None,
            status=str(extra) if what == boot else None,
            fault=_fault_decoder.decode(extra) if what == fault_kind else None,
        ))
    return dict(lines)


def clock_origin(run: RunRecord) -> float | None:
    """The monotonic time at which ``run`` started, as it stored it (``None``: not stored)."""
    origin = (run.summary or {}).get(CLOCK_ORIGIN_SUMMARY_KEY)
    return float(origin) if isinstance(origin, int | float) else None


def fault_effects(conn: sqlite3.Connection, run: RunRecord) -> tuple[FaultEffect, ...]:
    """Every fault injected in ``run``, in injection order, with what followed it."""
    origin = clock_origin(run)
    effects: list[tuple[int, FaultEffect]] = []
    for charger, line in timelines(conn, run.id).items():
        effects += _charger_effects(charger, line, origin)
    unattributed = conn.execute(
        "SELECT seq, t, connector, data FROM events WHERE run_id = ? AND kind = ?"
        " AND charger IS NULL", (run.id, kind(FaultInjected)))
    for seq, t, connector, data in unattributed:  # a fleet-wide fault without one charger
        fault = _fault_decoder.decode(data)
        effects.append((int(seq), _effect(None, connector, fault, float(t), origin,
                                          (float(t), None), 0, False, None)))
    return tuple(effect for _, effect in sorted(effects, key=lambda pair: pair[0]))


def _charger_effects(
    charger: str, line: list[Moment], origin: float | None
) -> Iterable[tuple[int, FaultEffect]]:
    faults = [i for i, moment in enumerate(line) if moment.fault is not None]
    for number, index in enumerate(faults):
        start = line[index]
        assert start.fault is not None
        following = line[index + 1: faults[number + 1] if number + 1 < len(faults) else None]
        since, reply = _answer(line, index)
        later = reply is not None and (not following or reply.seq > following[-1].seq)
        answered = line[index + 1: line.index(reply) + 1] if later and reply is not None \
            else following  # (later: the broken frame went out after the next fault)
        errors = sum(1 for m in answered if m.frame is not None and m.frame.message_type == 4)
        end = _end(start, origin)
        disconnect = next((m for m in following if m.what == kind(Disconnected)
                           and m.t <= end + DISCONNECT_WINDOW_S), None)
        back = None if disconnect is None else _back_at(line, line.index(disconnect))
        recovered = None if back is None else max(0.0, back - end)
        yield start.seq, _effect(charger, start.connector, start.fault, start.t, origin,
                                 (since, reply), errors, disconnect is not None, recovered)


def _answer(line: list[Moment], index: int) -> tuple[float, Moment | None]:
    """What answered the fault at ``line[index]``, and from when it is timed: the answer to the
    first frame its injection broke (by message id), timed from that frame; else the first
    frame received after the injection, timed from it."""
    start = line[index]
    assert start.fault is not None
    injection = start.fault.injection
    broken = next((m for m in line[index + 1:] if m.sent is not None
                   and injection is not None and m.sent.injection == injection), None)
    if broken is not None and broken.sent is not None:
        answer = next((m for m in line[line.index(broken) + 1:] if m.frame is not None
                       and m.frame.unique_id == broken.sent.unique_id), None)
        if answer is not None:
            return broken.t, answer
    return start.t, next((m for m in line[index + 1:] if m.frame is not None), None)


def _end(start: Moment, origin: float | None) -> float:
    """When the fault at ``start`` ends, in seconds since the run's start."""
    assert start.fault is not None
    if start.fault.until is None or origin is None:
        return start.t
    return max(start.t, start.fault.until - origin)


def _back_at(line: list[Moment], disconnect: int) -> float | None:
    """When the charger whose connection dropped at ``line[disconnect]`` was back: connected
    again, and, if it sent a BootNotification before its next disconnection, with a boot
    Accepted; ``None`` if it was not back by the end of ``line``. A BootNotification counts
    only on that connection: up to the next disconnection or connection."""
    connected: float | None = None
    booting = False
    for moment in line[disconnect + 1:]:
        if moment.what == kind(Connected) and connected is None:
            connected = moment.t
        elif moment.what == kind(FrameOut) and connected is not None and moment.sent is not None \
                and moment.sent.action == BOOT:
            booting = True
        elif moment.what == kind(BootResult) and connected is not None \
                and moment.status == ACCEPTED:
            return max(connected, moment.t)
        elif moment.what in (kind(Disconnected), kind(Connected)) and connected is not None:
            return None if booting else connected  # that connection ended (a crash records
            # no disconnection: the next connection tells)
    return connected if connected is not None and not booting else None


def _reply(moment: Moment | None) -> str | None:
    if moment is None or moment.frame is None:
        return None
    frame = moment.frame
    name = _MESSAGE_NAMES.get(frame.message_type, "unreadable frame")
    if frame.message_type == 4:
        code = frame.code if isinstance(frame.code, str) and frame.code else UNKNOWN_ERROR_CODE
        return f"{name} {code}"
    return f"{name} {frame.action}" if isinstance(frame.action, str) and frame.action else name


def _effect(charger: str | None, connector: int | None, fault: _Fault, t: float,
            origin: float | None, answer: tuple[float, Moment | None], errors: int,
            disconnected: bool, recovered: float | None) -> FaultEffect:
    since, reply = answer
    until = None if fault.until is None or origin is None else round(fault.until - origin, 6)
    return FaultEffect(
        fault=fault.fault, charger=charger, connector=connector, injection=fault.injection,
        deliberate=fault.deliberate, t_s=t, until_s=until, first_reply=_reply(reply),
        first_reply_after_s=None if reply is None else round(reply.t - since, 6), errors=errors,
        disconnected=disconnected,
        recovered_after_s=None if recovered is None else round(recovered, 6),
    )
