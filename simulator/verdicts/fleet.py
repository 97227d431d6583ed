"""The checks on what the central system did for the fleet: ``no_lost_transactions``,
``reconnect`` and ``boot_accepted``.

A transaction is stopped at the central system when it answered (CALLRESULT) a StopTransaction
carrying the id it gave in its StartTransaction answer. Transactions that a deliberate fault
touched (a ``fault`` event with ``deliberate`` set, or a frame a protocol fault broke, on the
same charger while the transaction was open or being stopped) are not held against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from simulator.chaos import FAULTS
from simulator.config.errors import one_of
from simulator.events import BootResult, FaultInjected, FrameIn, FrameOut, Note
from simulator.events import TransactionAcknowledged as Acked
from simulator.events import TransactionStarted as Started
from simulator.report.faults import clock_origin, fault_effects
from simulator.report.frames import kind
from simulator.verdicts.ledger import Outcome, RunLedger, seconds
from simulator.verdicts.params import Duration, ExpectError, Share
from simulator.verdicts.wire import MAX_NAMED

ACCEPTED: Final = "Accepted"

_STOPS_SENT: Final = (
    "SELECT run_id, seq, charger, json_extract(data, '$.unique_id'),"
    " CASE WHEN json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[3].transactionId') END"
    " FROM events WHERE run_id IN ({runs}) AND kind = ?"
    " AND data LIKE '%\"action\":\"StopTransaction\"%'"
    " AND json_extract(data, '$.action', '$.message_type') = '[\"StopTransaction\",2]'"
)
_RESULTS: Final = (
    "SELECT run_id, seq, t, charger, json_extract(data, '$.unique_id') FROM events"
    " WHERE run_id IN ({runs}) AND kind = ? AND data LIKE '%\"message_type\":3%'"
    " AND data LIKE '%\"action\":\"StopTransaction\"%'"
    " AND json_extract(data, '$.message_type') = 3"
    " AND json_extract(data, '$.unique_id') IN (SELECT value FROM json_each(?)) ORDER BY seq"
)


def _runs(run: RunLedger) -> tuple[int, ...]:
    """The run and the one that resumed it, if any (a stop may come there)."""
    (later,) = run.conn.execute("SELECT min(id) FROM runs WHERE resumed_from = ?",
                                (run.run_id,)).fetchone()
    return (run.run_id,) if later is None else (run.run_id, int(later))


def _stops(run: RunLedger, runs: tuple[int, ...]) -> dict[tuple[str, Any], list[float]]:
    """(charger, transaction id) → when the central system answered each StopTransaction."""
    marks = ", ".join("?" * len(runs))
    sent: dict[tuple[int, str, str], tuple[int, Any]] = {}
    for run_id, seq, charger, unique_id, transaction_id in run.conn.execute(
            _STOPS_SENT.format(runs=marks), (*runs, kind(FrameOut))):
        if transaction_id is not None and unique_id is not None:
            sent[(int(run_id), charger, str(unique_id))] = (int(seq), transaction_id)
    stops: dict[tuple[str, Any], list[float]] = {}
    ids = json.dumps(sorted({unique_id for _, _, unique_id in sent}))
    for run_id, seq, t, charger, unique_id in run.conn.execute(
            _RESULTS.format(runs=marks), (*runs, kind(FrameIn), ids)):
        asked = sent.pop((int(run_id), charger, str(unique_id)), None)  # its first answer only
        if asked is not None and asked[0] < seq:
            stops.setdefault((charger, asked[1]), []).append(float(t))
    return stops


def _deliberate(run: RunLedger) -> dict[str, list[tuple[float, float, int | None]]]:
    """Per charger, (from, to, connector) of every deliberate fault and broken frame, in
    seconds since the run's start."""
    origin = clock_origin(run.run)
    applied: dict[tuple[str, Any], float] = {}  # (charger, injection) -> when it last acted
    for charger, t, injection in run.conn.execute(
            "SELECT charger, t, json_extract(data, '$.data.injection') FROM events"
            " WHERE run_id = ? AND kind = ? AND json_extract(data, '$.what') IN"
            " ('fault_applied', 'fault_ended')", (run.run_id, kind(Note))):
        applied[(charger, injection)] = max(float(t), applied.get((charger, injection), 0.0))
    spans: dict[str, list[tuple[float, float, int | None]]] = {}
    for fault in run.events(FaultInjected):
        if fault.deliberate and fault.charger is not None:
            end = fault.t if fault.until is None or origin is None else fault.until - origin
            # a one-shot breach lands on the next frame it can change: as late as it acted
            end = max(end, applied.get((fault.charger, fault.injection), fault.t))
            spans.setdefault(fault.charger, []).append((fault.t, max(fault.t, end),
                                                        fault.connector))
    rows = run.conn.execute(
        "SELECT charger, t FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"fault\":%'"
        " AND json_extract(data, '$.fault') IS NOT NULL", (run.run_id, kind(FrameOut)))
    for charger, t in rows:
        spans.setdefault(charger, []).append((float(t), float(t), None))
    return spans


def _touched(spans: list[tuple[float, float, int | None]], start: float, end: float,
             connector: int | None) -> bool:
    return any(low <= end and high >= start
               and (where in (None, 0) or connector is None or where == connector)
               for low, high, where in spans)


def _starts(run: RunLedger, runs: tuple[int, ...]) -> Iterator[tuple[str, int | None, Any,
                                                                    float, Any]]:
    """(charger, connector, local id, started at, transaction id or None) of each start."""
    acks: dict[tuple[str | None, Any], Any] = {}
    rows = run.conn.execute(
        f"SELECT charger, json_extract(data, '$.local_id', '$.transaction_id') FROM events"
        f" WHERE run_id IN ({', '.join('?' * len(runs))}) AND kind = ? ORDER BY seq",
        (*runs, kind(Acked)))
    for charger, pair in rows:
        local_id, transaction_id = json.loads(pair)
        acks.setdefault((charger, local_id), transaction_id)
    for charger, connector, local_id, t in run.conn.execute(
            "SELECT charger, connector, json_extract(data, '$.local_id'), t FROM events"
            " WHERE run_id = ? AND kind = ? ORDER BY seq", (run.run_id, kind(Started))):
        yield charger, connector, local_id, float(t), acks.get((charger, local_id))


def no_lost_transactions(run: RunLedger) -> Outcome:
    """Every transaction the chargers started was stopped at the central system with its id,
    once (transactions a deliberate fault touched excepted)."""
    runs = _runs(run)
    stops = _stops(run, runs)
    spans = _deliberate(run)
    end = run.end_s()
    total = once = excused = 0
    lost: list[str] = []
    twice: list[str] = []
    for charger, connector, local_id, started, transaction_id in _starts(run, runs):
        total += 1
        answered = stops.get((charger, transaction_id), []) if transaction_id is not None else []
        if len(answered) == 1:
            once += 1
            continue
        until = max(answered) if answered else end
        if _touched(spans.get(charger, []), started, until, connector):
            excused += 1
            continue
        name = f"{charger} #{local_id}" + ("" if transaction_id is None
                                             else f" (id {transaction_id})")
        if transaction_id is None:
            lost.append(f"{name} never acknowledged")
        elif answered:
            twice.append(f"{name} stopped {len(answered)} times")
        else:
            lost.append(f"{name} never stopped")
    parts = [f"{total} transaction(s): {once} stopped at the central system once"]
    if lost:
        parts.append(f"{len(lost)} lost ({'; '.join(lost[:MAX_NAMED])}"
                     + (f"; and {len(lost) - MAX_NAMED} more" if len(lost) > MAX_NAMED else "")
                     + ")")
    if twice:
        parts.append(f"{len(twice)} stopped more than once ({'; '.join(twice[:MAX_NAMED])})")
    if excused:
        parts.append(f"{excused} touched by deliberate faults, not held against it")
    return Outcome(passed=not lost and not twice, measured=", ".join(parts))


def reconnect(run: RunLedger, *, share: Share = 1.0, within: Duration = 60.0,
              fault: str | None = None) -> Outcome:
    """After each fault (of ``fault`` only, if given) that took a charger's connection down,
    at least ``share`` of those chargers were back, connected with their boot Accepted, within
    ``within`` of the fault's end. A fault that ended too close to the run's end for ``within``
    to pass, and whose charger was not back, is not judged."""
    end = run.end_s()
    judged = back = unjudged = 0
    worst = 0.0
    late: list[str] = []
    effects = fault_effects(run.conn, run.run)
    spans: dict[str | None, list[tuple[float, float]]] = {}
    for effect in effects:
        spans.setdefault(effect.charger, []).append(
            (effect.t_s, effect.until_s if effect.until_s is not None else effect.t_s))
    for effect in effects:
        if not effect.disconnected or (fault is not None and effect.fault != fault):
            continue
        own_end = effect.until_s if effect.until_s is not None else effect.t_s
        fault_end = _held_until(spans[effect.charger], effect.t_s, own_end)
        recovered = effect.recovered_after_s
        if recovered is not None:  # timed from the end of whatever else held it down too
            recovered = max(0.0, own_end + recovered - fault_end)
        if recovered is None and fault_end + within > end:
            unjudged += 1
            continue
        judged += 1
        if recovered is not None and recovered <= within:
            back += 1
            worst = max(worst, recovered)
        else:
            late.append(f"{effect.fault} at {effect.t_s:.1f} s on {effect.charger}: "
                        + ("not back" if recovered is None else f"back after {seconds(recovered)}"))
    aside = f" ({unjudged} more ended too close to the run's end to judge)" if unjudged else ""
    which = f"{fault} " if fault is not None else ""
    if not judged:
        judgeable = " that could be judged" if unjudged else ""
        return Outcome(passed=True, measured=f"no {which}fault{judgeable} took a charger's"
                                             f" connection down{aside}")
    ratio = back / judged
    measured = (f"{back} of {judged} charger(s) a {which}fault disconnected were back and"
                f" Accepted within {seconds(within)} ({ratio:.0%}, at least {share:.0%} needed;"
                f" slowest {seconds(worst)}){aside}")
    if late:
        measured += "; " + "; ".join(late[:MAX_NAMED])
    return Outcome(passed=ratio >= share, measured=measured)


def _held_until(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """The end of the faults on one charger that overlap ``[start, end]``, and of those that
    overlap them in turn: a charger a partition keeps offline is not late to come back from a
    disconnect injected meanwhile."""
    held = end
    grown = True
    while grown:
        grown = False
        for low, high in spans:
            if low <= held and high >= start and high > held:
                held, grown = high, True
    return held


def check_reconnect(params: dict[str, Any]) -> None:
    """``fault``, when given, names a fault of the catalog."""
    name = params["fault"]
    if name is not None and name not in FAULTS:
        raise ExpectError("fault", f"unknown fault {name!r}; {one_of(name, sorted(FAULTS))}")


def boot_accepted(run: RunLedger, *, min: Share = 1.0) -> Outcome:
    """At least ``min`` of the run's chargers had a BootNotification Accepted."""
    chargers = run.charger_ids()
    accepted = {event.charger for event in run.events(BootResult) if event.status == ACCEPTED}
    count = sum(1 for charger in chargers if charger in accepted)
    ratio = count / len(chargers) if chargers else 0.0
    missing = [charger for charger in chargers if charger not in accepted]
    named = f"; not accepted: {', '.join(missing[:MAX_NAMED])}" if missing else ""
    if len(missing) > MAX_NAMED:
        named += f" and {len(missing) - MAX_NAMED} more"
    return Outcome(passed=bool(chargers) and ratio >= min,
                   measured=f"{count} of {len(chargers)} charger(s) had a boot Accepted"
                            f" ({ratio:.0%}, at least {min:.0%} needed){named}")
