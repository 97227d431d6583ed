"""The checks on the frames the central system sent: ``latency``, ``schema_clean``,
``error_codes`` and ``max_errors``.

What the central system should answer to a frame a protocol fault broke on purpose (a
``FrameOut`` with ``fault`` set) is judged by the simulator's own reference decoding, the one its
chargers and its embedded CSMS answer with (:func:`expected_error`): the ten 1.6 codes, in 1.6
spelling. A broken frame the spec asks no CALLERROR for (a frame of unknown type, one whose id
cannot be read, a result, a valid CALL) is not judged by ``error_codes``; the CALLERRORs that
answer deliberately broken frames are not counted by ``max_errors``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from simulator.config.errors import one_of
from simulator.events import CRASH_NOTE, FrameIn, FrameOut
from simulator.ocpp.frames import Call, ErrorCode, FrameError, MessageType, decode_frame
from simulator.ocpp.plugin import Direction, PayloadError, ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.report.frames import PERCENTILES, UNKNOWN_ERROR_CODE, kind, percentile
from simulator.verdicts.ledger import Outcome, RunLedger, seconds
from simulator.verdicts.params import Duration, ExpectError
from simulator.verdicts.schemas import OfficialSchemas

MAX_NAMED: Final = 3
"""Cases a measured line names (the others are counted)."""

_CALL_ERRORS_IN: Final = (
    "SELECT seq, charger, json_extract(data, '$.unique_id'),"
    " CASE WHEN json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END"
    " FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"message_type\":4%'"
    " AND json_extract(data, '$.message_type') = 4"
)


def expected_error(raw: str, plugin: ProtocolPlugin = PLUGIN) -> tuple[str | None, ErrorCode
                                                                          | None]:
    """What a receiver answers to the charger's frame ``raw`` by the spec: ``(unique id,
    code)`` of the CALLERROR due, or ``(id, None)`` when no CALLERROR is due."""
    try:
        frame = decode_frame(raw)
    except FrameError as error:
        return error.unique_id, (error.code if error.should_reply else None)
    if not isinstance(frame, Call):
        return frame.unique_id, None
    spec = plugin.actions.get(frame.action)
    if spec is None:
        return frame.unique_id, ErrorCode.NOT_IMPLEMENTED
    if spec.direction == Direction.CS_TO_CP:
        return frame.unique_id, ErrorCode.NOT_SUPPORTED
    try:
        plugin.decode_request(frame.action, frame.payload)
    except PayloadError as error:
        return frame.unique_id, error.code
    return frame.unique_id, None


def _named(cases: list[str]) -> str:
    shown = "; ".join(cases[:MAX_NAMED])
    return shown + (f"; and {len(cases) - MAX_NAMED} more" if len(cases) > MAX_NAMED else "")


def latency(run: RunLedger, *, action: str, p50: Duration | None = None,
            p95: Duration | None = None, p99: Duration | None = None) -> Outcome:
    """The central system's answers to the chargers' CALLs of ``action``: each given percentile
    of their latency at most its bound."""
    samples = sorted(float(latency) for (latency,) in run.conn.execute(
        "SELECT json_extract(data, '$.latency') FROM events WHERE run_id = ? AND kind = ?"
        " AND data LIKE '%\"latency\":%' AND json_extract(data, '$.action') = ?",
        (run.run_id, kind(FrameIn), action)))
    if not samples:
        return Outcome(passed=False, measured=f"no answer to a {action} was received: nothing"
                                              " to measure")
    parts, passed = [], True
    for percent, bound in zip(PERCENTILES, (p50, p95, p99), strict=True):
        if bound is None:
            continue
        value = percentile(samples, percent)
        ok = value <= bound
        passed = passed and ok
        parts.append(f"p{percent:g} {seconds(value)} {'<=' if ok else '>'} {seconds(bound)}")
    virtual = " (virtual time)" if run.fleet is not None and run.fleet.run.time == "virtual" \
        else ""
    return Outcome(passed=passed, measured=f"{', '.join(parts)} over {len(samples)} {action}"
                                           f" answer(s){virtual}")


def check_latency(params: dict[str, Any]) -> None:
    """``latency`` needs a known action and at least one bound."""
    action = params["action"]
    if action not in PLUGIN.actions:
        raise ExpectError("action", f"unknown OCPP 1.6 action {action!r};"
                                    f" {one_of(action, sorted(PLUGIN.actions))}")
    if all(params[key] is None for key in ("p50", "p95", "p99")):
        raise ExpectError(None, 'latency needs a bound: p50, p95 or p99 (e.g. p95 = "2s")')


def _frames_in(run: RunLedger, every: bool
               ) -> Iterator[tuple[float, str | None, Any, Any, Any, str, list[str]]]:
    """(t, charger, message type, action, unique id, raw, violations) of the frames the central
    system sent: ``every`` one, or only those with violations (an event stores none when it has
    none). The note a charger's crash leaves on the frame it failed on is not a violation of the
    central system's, and is left out."""
    rows = run.conn.execute(
        "SELECT t, charger, json_extract(data, '$.message_type', '$.action', '$.unique_id',"
        " '$.violations'), json_extract(data, '$.raw') FROM events WHERE run_id = ? AND kind = ?"
        + ("" if every else " AND data LIKE '%\"violations\":%'") + " ORDER BY seq",
        (run.run_id, kind(FrameIn)))
    for t, charger, fields, raw in rows:
        message_type, action, unique_id, violations = json.loads(fields)
        found = [v for v in violations or () if v != CRASH_NOTE]
        yield float(t), charger, message_type, action, unique_id, str(raw), found


def schema_clean(run: RunLedger) -> Outcome:
    """Every frame the central system sent was well formed and fit its action's schema: by the
    simulator's own decoding always, and by the official 1.6 JSON schemas with
    ``[run] validate_csms = true`` (slower: jsonschema)."""
    official = None
    if run.fleet is not None and run.fleet.run.validate_csms:
        try:
            official = OfficialSchemas.load()
        except ModuleNotFoundError as error:
            return Outcome(passed=False, measured=f"cannot be checked: {error}")
    bad: list[str] = []
    provoked = _provoked(run)
    for t, charger, message_type, action, unique_id, raw, violations in _frames_in(
            run, official is not None):
        if message_type != MessageType.CALL and (charger, unique_id) in provoked:
            continue  # the answer to a frame broken on purpose echoes what was broken (its id)
        problem = violations[0] if violations else None
        if problem is None and official is not None:
            problem = official.problem(raw, message_type, action)
        if problem is not None:
            what = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}.get(message_type, "frame")
            bad.append(f"{what} {action or ''} at {t:.1f} s to {charger}: {problem}"
                       .replace("  ", " "))
    total = run.count(FrameIn)
    how = ("the official 1.6 schemas and the simulator's decoding" if official is not None
           else "the simulator's decoding ([run] validate_csms = true adds the official schemas)")
    if not bad:
        return Outcome(passed=True, measured=f"all {total} frame(s) from the central system"
                                             f" were clean by {how}")
    return Outcome(passed=False, measured=f"{len(bad)} of {total} frame(s) from the central"
                                          f" system broke {how}: {_named(bad)}")


def _faulty_frames(run: RunLedger) -> Iterator[tuple[int, float, str | None, str, str]]:
    rows = run.conn.execute(
        "SELECT seq, t, charger, json_extract(data, '$.fault'), json_extract(data, '$.raw')"
        " FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"fault\":%'"
        " AND json_extract(data, '$.fault') IS NOT NULL ORDER BY seq",
        (run.run_id, kind(FrameOut)))
    for seq, t, charger, fault, raw in rows:
        yield int(seq), float(t), charger, str(fault), str(raw)


def _replies(run: RunLedger, ids: set[str]) -> dict[tuple[str | None, str], list[tuple[int,
                                                                                     float, int,
                                                                                     str]]]:
    """(charger, unique id) → every (seq, t, message type, error code) received with that id,
    for the ``ids`` asked for."""
    found: dict[tuple[str | None, str], list[tuple[int, float, int, str]]] = {}
    rows = run.conn.execute(
        "SELECT seq, t, charger, json_extract(data, '$.unique_id', '$.message_type'),"
        " CASE WHEN data LIKE '%\"message_type\":4%' AND json_valid(json_extract(data, '$.raw'))"
        " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END"
        " FROM events WHERE run_id = ? AND kind = ?"
        " AND json_extract(data, '$.unique_id') IN (SELECT value FROM json_each(?))",
        (run.run_id, kind(FrameIn), json.dumps(sorted(ids))))
    for seq, t, charger, pair, code in rows:
        unique_id, message_type = json.loads(pair)
        found.setdefault((charger, str(unique_id)), []).append(
            (int(seq), float(t), int(message_type or 0),
             code if isinstance(code, str) else UNKNOWN_ERROR_CODE))
    return found


def error_codes(run: RunLedger, *, within: Duration = 30.0) -> Outcome:
    """Every frame a protocol fault broke that calls for a CALLERROR was answered with one, with
    the 1.6 code the spec names, within ``within``."""
    due: list[tuple[int, float, str | None, str, str, ErrorCode]] = []
    unjudged = 0
    for seq, t, charger, fault, raw in _faulty_frames(run):
        unique_id, code = expected_error(raw)
        if code is None or unique_id is None:
            unjudged += 1
            continue
        due.append((seq, t, charger, fault, unique_id, code))
    aside = f" ({unjudged} other broken frame(s) call for no CALLERROR)" if unjudged else ""
    if not due:
        return Outcome(passed=True, measured="no deliberately broken frame called for a"
                                             f" CALLERROR{aside}")
    replies = _replies(run, {unique_id for *_, unique_id, _ in due})
    wrong: list[str] = []
    for seq, t, charger, fault, unique_id, code in due:
        answer = next((r for r in replies.get((charger, unique_id), ()) if r[0] > seq), None)
        where = f"{fault} at {t:.1f} s on {charger}"
        if answer is None:
            wrong.append(f"{where}: no answer, expected {code}")
        elif answer[2] != MessageType.CALL_ERROR:
            wrong.append(f"{where}: a CALLRESULT, expected CALLERROR {code}")
        elif answer[3] != code:
            wrong.append(f"{where}: {answer[3]}, expected {code}")
        elif answer[1] - t > within:
            wrong.append(f"{where}: {code} after {seconds(answer[1] - t)}, later than"
                         f" {seconds(within)}")
    right = len(due) - len(wrong)
    measured = (f"{right} of {len(due)} deliberately broken frame(s) answered with the CALLERROR"
                f" the spec names within {seconds(within)}{aside}")
    return Outcome(passed=not wrong, measured=measured + (f"; {_named(wrong)}" if wrong else ""))


def _provoked(run: RunLedger) -> set[tuple[str | None, str]]:
    """(charger, unique id) of every frame a protocol fault broke on purpose."""
    provoked = set()
    for _seq, _t, charger, _fault, raw in _faulty_frames(run):
        unique_id, _ = expected_error(raw)
        if unique_id is not None:
            provoked.add((charger, unique_id))
    return provoked


def max_errors(run: RunLedger, *, max: int = 0, code: str | None = None) -> Outcome:
    """At most ``max`` CALLERRORs received from the central system (of ``code`` only, if
    given), not counting those that answer frames broken on purpose."""
    provoked = _provoked(run)
    counted: dict[str, int] = {}
    excused = 0
    for _seq, charger, unique_id, error_code in run.conn.execute(
            _CALL_ERRORS_IN, (run.run_id, kind(FrameIn))):
        name = error_code if isinstance(error_code, str) and error_code else UNKNOWN_ERROR_CODE
        if code is not None and name != code:
            continue
        if (charger, unique_id) in provoked:
            excused += 1
            continue
        counted[name] = counted.get(name, 0) + 1
    total = sum(counted.values())
    which = f" {code}" if code is not None else ""
    codes = f" ({', '.join(f'{c} {n}' for c, n in sorted(counted.items()))})" \
        if counted and code is None else ""
    aside = f"; {excused} more answered deliberately broken frames, not counted" if excused else ""
    return Outcome(passed=total <= max,
                   measured=f"{total}{which} CALLERROR(s) received{codes}, at most {max}"
                            f" allowed{aside}")


def check_max_errors(params: dict[str, Any]) -> None:
    """``max`` is a count."""
    if params["max"] < 0:
        raise ExpectError("max", f"must be >= 0, got {params['max']}")
