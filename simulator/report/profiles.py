"""The central system's calls by feature profile: for each OCPP 1.6 feature profile and the
security extension, which central-system-to-charge-point actions the central system used in a
run, and how the chargers answered them.

A call is a ``frame_in`` CALL; its answer is the charger's ``frame_out`` CALLRESULT or CALLERROR
with the same unique id (per charger). An action's profile is the one the protocol's registry
gives it (:data:`simulator.ocpp.v16.ACTIONS`); a CALL whose action is not a CS→CP action there
(unknown, or one only a charge point sends) counts under :data:`UNKNOWN_PROFILE`. Answers are
counted by the CALLRESULT's ``status`` (:data:`NO_STATUS` for a result without one, such as
GetConfiguration's) and CALLERRORs by code; a call with no recorded answer is ``unanswered``,
and an answer the connection ended before writing (``frame_unsent``) is also ``unsent``. A
unique id the central system reused for one charger pairs its calls with the answers in order.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, Final

from simulator.events import FrameIn, FrameOut, FrameUnsent
from simulator.ocpp.plugin import Direction
from simulator.ocpp.v16 import ACTIONS, Profile
from simulator.report.frames import UNKNOWN_ACTION, UNKNOWN_ERROR_CODE, kind, sorted_codes
from simulator.report.model import ProfileAction, ProfileUsage

UNKNOWN_PROFILE: Final = "(unknown)"
"""The profile of a central system's CALL whose action is not a CS→CP action of the protocol."""

NO_STATUS: Final = "(no status)"
"""The status counted for a CALLRESULT whose payload has no ``status`` (GetConfiguration,
GetLocalListVersion, GetDiagnostics, UpdateFirmware)."""

_RESULT: Final = 3

PROFILE_OF: Final = {
    spec.action: str(spec.profile) for spec in ACTIONS.values()
    if spec.direction in (Direction.CS_TO_CP, Direction.BOTH)
}
"""Each action the central system may send -> its feature profile."""

# A frame event's ``data`` holds its raw frame as an escaped string, so ``"message_type":N``
# unescaped can only be the top-level field: a cheap prefilter before json_extract.
_CS_CALLS: Final = (
    "SELECT charger, json_extract(data, '$.unique_id'), json_extract(data, '$.action')"
    " FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"message_type\":2%'"
    " AND json_extract(data, '$.message_type') = 2 {charger} ORDER BY seq"
)
_ANSWERS: Final = (
    "SELECT charger, json_extract(data, '$.unique_id'), json_extract(data, '$.message_type'),"
    " CASE WHEN json_valid(json_extract(data, '$.raw')) THEN"
    "  CASE json_extract(data, '$.message_type')"
    "   WHEN 3 THEN json_extract(json_extract(data, '$.raw'), '$[2].status')"
    "   ELSE json_extract(json_extract(data, '$.raw'), '$[2]') END END"
    " FROM events WHERE run_id = ? AND kind = ?"
    " AND (data LIKE '%\"message_type\":3%' OR data LIKE '%\"message_type\":4%') {charger}"
    " ORDER BY seq"
)
_UNSENT: Final = (
    "SELECT charger, json_extract(data, '$.unique_id') FROM events"
    " WHERE run_id = ? AND kind = ? {charger}"
)

Key = tuple[str | None, Any]
"""(charger, unique id) of a CALL and its answer."""


class _Tally:
    __slots__ = ("call_errors", "calls", "statuses", "unanswered", "unsent")

    def __init__(self) -> None:
        self.calls = 0
        self.statuses: dict[str, int] = {}
        self.call_errors: dict[str, int] = {}
        self.unanswered = 0
        self.unsent = 0

    def stats(self, action: str) -> ProfileAction:
        return ProfileAction(
            action=action, calls=self.calls, statuses=dict(sorted(self.statuses.items())),
            call_errors=sorted_codes(self.call_errors), unanswered=self.unanswered,
            unsent=self.unsent)


def _rows(conn: sqlite3.Connection, sql: str, rid: int, tag: str,
          charger: str | None) -> list[tuple[Any, ...]]:
    query = sql.format(charger="" if charger is None else "AND charger = ?")
    args: tuple[Any, ...] = (rid, tag) if charger is None else (rid, tag, charger)
    return conn.execute(query, args).fetchall()


def _name(value: Any, unknown: str) -> str:
    return value if isinstance(value, str) and value else unknown


def profile_usage(conn: sqlite3.Connection, rid: int,
                  charger: str | None = None) -> tuple[ProfileUsage, ...]:
    """Run ``rid``'s central-system calls (to one ``charger`` if given) by feature profile, in
    the order of :class:`~simulator.ocpp.v16.Profile` (every profile, used or not), then
    :data:`UNKNOWN_PROFILE` if any call was not a CS→CP action; actions by name."""
    tallies: dict[str, dict[str, _Tally]] = {str(p): {} for p in Profile}
    calls = _rows(conn, _CS_CALLS, rid, kind(FrameIn), charger)
    if not calls:  # most load runs: no need to read the chargers' frames again
        return tuple(ProfileUsage(profile=profile, calls=0, actions=()) for profile in tallies)
    answers: dict[Key, collections.deque[tuple[Any, Any]]] = {}
    for who, uid, message_type, outcome in _rows(conn, _ANSWERS, rid, kind(FrameOut), charger):
        answers.setdefault((who, uid), collections.deque()).append((message_type, outcome))
    unsent = {(who, uid) for who, uid in _rows(conn, _UNSENT, rid, kind(FrameUnsent), charger)}
    for who, uid, action in calls:
        name = _name(action, UNKNOWN_ACTION)
        profile = PROFILE_OF.get(name, UNKNOWN_PROFILE)
        tally = tallies.setdefault(profile, {}).setdefault(name, _Tally())
        tally.calls += 1
        queue = answers.get((who, uid))
        if not queue:
            tally.unanswered += 1
            continue
        message_type, outcome = queue.popleft()  # a reused id: answers pair in order
        if message_type == _RESULT:
            status = _name(outcome, NO_STATUS)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
        else:
            code = _name(outcome, UNKNOWN_ERROR_CODE)
            tally.call_errors[code] = tally.call_errors.get(code, 0) + 1
        if (who, uid) in unsent:
            tally.unsent += 1
    return tuple(
        ProfileUsage(profile=profile, calls=sum(t.calls for t in actions.values()),
                     actions=tuple(actions[a].stats(a) for a in sorted(actions)))
        for profile, actions in tallies.items()
    )

