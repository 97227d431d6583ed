"""What a run achieved, read from its ledger: the central system's answers by status, the
energy its transactions delivered (per group of the run's own fleet file), and what a
``--resume`` run took over from the run it resumed.

The fleet file comes from ``runs.config`` (the resolved TOML the run was started with); a
config that cannot be read back (an older or hand-written ledger) leaves the groups unknown.
"""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any, Final

from simulator.config import ConfigError, Fleet, parse_fleet
from simulator.config.model import REDACTED
from simulator.events import (
    BootResult,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.ledger import RunRecord, get_run, queued_chargers_at_end
from simulator.report.frames import UNKNOWN_ERROR_CODE, grouped, kind
from simulator.report.model import Energy, Outcomes, ResumeStats

UNKNOWN_GROUP: Final = "(unknown)"
"""The group of a charger the run's fleet file does not name."""

POWER_LOSS: Final = "PowerLoss"
"""The StopTransaction reason of a transaction a power loss (a kill, a crash) interrupted."""

_AUTHORIZE_STATUSES: Final = (
    "SELECT CASE WHEN json_valid(json_extract(data, '$.raw'))"
    " THEN json_extract(json_extract(data, '$.raw'), '$[2].idTagInfo.status') END, count(*)"
    " FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"action\":\"Authorize\"%'"
    " AND json_extract(data, '$.action', '$.message_type') = '[\"Authorize\",3]'"
    " {charger} GROUP BY 1"
)


class _NoEnvironment(Mapping[str, str]):
    """Reads every ``${VAR}`` left in a stored config (a secret's reference) as a placeholder,
    and applies no ``SIM_*`` override: the config is read back as the run used it."""

    def __getitem__(self, name: str) -> str:
        return "(secret)"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def run_fleet(run: RunRecord) -> Fleet | None:
    """The fleet ``run`` was started with, from its stored config; ``None`` when there is none
    or it cannot be read back."""
    if not run.config:
        return None
    try:
        return parse_fleet(run.config, source=f"run {run.id}", env=_NoEnvironment())
    except ConfigError:
        return None


def secrets_to_give(config: str) -> list[str]:
    """The ``SIM_`` environment variables that would give back each secret a stored ``config``
    has only as ``<redacted>`` (a secret written literally: the ledger never keeps it), e.g.
    ``SIM_CSMS__PASSWORD``; a secret written as ``${VAR}`` is read from ``VAR`` again."""
    found: list[str] = []

    def walk(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, str(index)))
        elif value == REDACTED:
            found.append("SIM_" + "__".join(part.upper() for part in path))

    try:
        walk(tomllib.loads(config), ())
    except tomllib.TOMLDecodeError:
        return []  # parse_fleet says what is wrong with it
    return found


def groups_of(fleet: Fleet | None) -> dict[str, str]:
    """Charger id → group name, for every charger of ``fleet``."""
    if fleet is None:
        return {}
    return {charger: group.name for group in fleet.groups for charger in group.ids}


def outcomes(conn: sqlite3.Connection, rid: int, charger: str | None = None) -> Outcomes:
    """The central system's answers in run ``rid`` (to one ``charger`` if given), by status."""
    sql = _AUTHORIZE_STATUSES.format(charger="" if charger is None else "AND charger = ?")
    args: tuple[Any, ...] = (rid, "frame_in")
    rows = conn.execute(sql, args if charger is None else (*args, charger))
    authorize: dict[str, int] = {}
    for status, n in rows:
        name = status if isinstance(status, str) and status else UNKNOWN_ERROR_CODE
        authorize[name] = authorize.get(name, 0) + int(n)
    return Outcomes(
        boot=grouped(conn, rid, BootResult, "$.status", charger),
        authorize=dict(sorted(authorize.items())),
        start_transaction=grouped(conn, rid, TransactionAcknowledged, "$.status", charger),
    )


def _starts(conn: sqlite3.Connection, run_ids: tuple[int, ...],
            charger: str | None) -> dict[tuple[str | None, Any], tuple[int, Any]]:
    """(charger, local_id) → (run id, meterStart) of every transaction started in ``run_ids``."""
    sql = ("SELECT run_id, charger, json_extract(data, '$.local_id', '$.meter_start') FROM events"
           f" WHERE run_id IN ({', '.join('?' * len(run_ids))}) AND kind = ?"
           + ("" if charger is None else " AND charger = ?"))
    args: tuple[Any, ...] = (*run_ids, kind(TransactionStarted))
    starts: dict[tuple[str | None, Any], tuple[int, Any]] = {}
    for run_id, who, pair in conn.execute(sql, args if charger is None else (*args, charger)):
        local_id, meter_start = _pair(pair)
        starts[(who, local_id)] = (int(run_id), meter_start)
    return starts


def _pair(text: str) -> tuple[Any, Any]:
    first, _, second = text.strip("[]").partition(",")
    return _number(first), _number(second)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


class Stops:
    """One pass over the transactions run ``run``'s chargers stopped: the energy they delivered
    (meterStop - meterStart, in Wh; the start in this run or the one it resumed) per charger,
    and how many of the resumed run's transactions were stopped with PowerLoss."""

    def __init__(self, conn: sqlite3.Connection, run: RunRecord, charger: str | None = None):
        run_ids = (run.id,) if run.resumed_from is None else (run.id, run.resumed_from)
        starts = _starts(conn, run_ids, charger)
        self.wh_by_charger: dict[str | None, float] = {}
        self.stopped = 0
        self.powerloss_of_earlier_run = 0
        sql = ("SELECT charger, json_extract(data, '$.local_id', '$.meter_stop'),"
               " json_extract(data, '$.reason') FROM events WHERE run_id = ? AND kind = ?"
               + ("" if charger is None else " AND charger = ?"))
        args: tuple[Any, ...] = (run.id, kind(TransactionStopped))
        for who, pair, reason in conn.execute(sql, args if charger is None else (*args, charger)):
            local_id, meter_stop = _pair(pair)
            start = starts.get((who, local_id))
            if start is None:
                continue
            started_in, meter_start = start
            if started_in != run.id and reason == POWER_LOSS:
                self.powerloss_of_earlier_run += 1
            if isinstance(meter_stop, int | float) and isinstance(meter_start, int | float):
                self.stopped += 1
                self.wh_by_charger[who] = self.wh_by_charger.get(who, 0.0) + (
                    meter_stop - meter_start)

    def energy(self, groups: Mapping[str, str]) -> Energy:
        """The energy by group (chargers not in ``groups`` under :data:`UNKNOWN_GROUP`)."""
        by_group: dict[str, float] = {name: 0.0 for name in sorted(set(groups.values()))}
        for who, wh in self.wh_by_charger.items():
            group = groups.get(who or "", UNKNOWN_GROUP)
            by_group[group] = by_group.get(group, 0.0) + wh
        return Energy(
            total_kwh=kwh(sum(self.wh_by_charger.values())),
            by_group_kwh={name: kwh(wh) for name, wh in by_group.items()},
            transactions=self.stopped,
        )


def kwh(wh: float) -> float:
    """``wh`` watt-hours in kilowatt-hours, rounded to the watt-hour."""
    return round(wh / 1000.0, 3)


def resume_stats(conn: sqlite3.Connection, run: RunRecord, stops: Stops) -> ResumeStats | None:
    """What ``run`` (a ``--resume`` run) took over and delivered; ``None`` for any other run.

    A charger's messages leave its outbox from the front, and seqs only grow: those of the
    earlier run's messages still queued at this run's end are the ones from this run's first
    queued seq up to the earlier run's last."""
    if run.resumed_from is None:
        return None
    try:
        earlier = get_run(conn, run.resumed_from)
    except KeyError:
        earlier = None
    restored = None if earlier is None else queued_chargers_at_end(conn, earlier)
    left = queued_chargers_at_end(conn, run)
    delivered: int | None = None
    if restored is not None and left is not None:
        still = 0
        for charger, (count, _first, last) in restored.items():
            if charger in left:
                still += max(0, min(count, last - left[charger][1] + 1))
        delivered = sum(count for count, _, _ in restored.values()) - still
    return ResumeStats(
        resumed_from=run.resumed_from,
        restored=None if restored is None else sum(count for count, _, _ in restored.values()),
        delivered=delivered,
        powerloss_stops=stops.powerloss_of_earlier_run,
    )
