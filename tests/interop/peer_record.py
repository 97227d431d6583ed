"""Reading the peer central system's record (``peer_csms.py``) as a test checks it: the CALLs it
received, each payload once however often it was resent, the transactions it issued, and the
energy register values it was sent, as intervals that allow for their rounding.

Every function takes the record as a list of parsed lines (``PeerCsms.records()``, or
:class:`RecordTail` while the peer runs) and never changes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from .conftest import Record
from .fleet_runs import TRANSACTION_ACTIONS

REGISTER: Final = "Energy.Active.Import.Register"


class RecordTail:
    """Reads the peer's record file as it grows, complete lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[Record] = []
        self._offset = 0

    def read(self) -> list[Record]:
        """Every record so far (new complete lines are parsed once)."""
        if self.path.exists():
            with self.path.open("rb") as file:
                file.seek(self._offset)
                chunk = file.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]
            self._offset += len(complete)
            self.records += [json.loads(line) for line in complete.splitlines()]
        return self.records


def calls(records: list[Record], actions: tuple[str, ...] | None = None) -> list[Record]:
    """The CALLs the peer received (all chargers, in order), only ``actions`` when given."""
    return [r for r in records if r["kind"] == "message" and r.get("message_type") == 2
            and (actions is None or r["action"] in actions)]


def is_transaction_message(action: str | None, payload: Any) -> bool:
    """StartTransaction, StopTransaction, and MeterValues that belong to a transaction: the
    messages a charger keeps in its outbox until they are answered."""
    return action in TRANSACTION_ACTIONS and isinstance(payload, dict) and (
        action != "MeterValues" or "transactionId" in payload)


def key(payload: Any) -> str:
    """``payload`` as canonical JSON: equal payloads, equal keys."""
    return json.dumps(payload, sort_keys=True)


def first_receipts(records: list[Record], actions: tuple[str, ...]) -> list[Record]:
    """The CALLs of ``actions`` in the order received, each (charger, action, payload) once (its
    first receipt): an identical resend is the same message."""
    seen: dict[tuple[str, str, str], Record] = {}
    for record in calls(records, actions):
        seen.setdefault((record["charger"], record["action"], key(record["payload"])), record)
    return list(seen.values())


def resends(records: list[Record]) -> dict[str, int]:
    """Per transaction action, how many CALLs repeated a payload already received."""
    return {action: len(calls(records, (action,))) - len(first_receipts(records, (action,)))
            for action in TRANSACTION_ACTIONS}


def issued(records: list[Record]) -> dict[int, Record]:
    """transactionId -> the peer's ``transaction_started`` record."""
    return {r["transaction_id"]: r for r in records if r["kind"] == "transaction_started"}


Reading = tuple[str, Decimal, Decimal]
"""(what the peer received, the lowest and highest register in Wh it stands for)."""


def whole_wh(label: str, wh: int) -> Reading:
    """meterStart / meterStop: the register rounded down to whole Wh, so within [wh, wh + 1)."""
    return f"{label} {wh}", Decimal(wh), Decimal(wh) + 1


def register_samples(payload: dict[str, Any], field: str) -> Iterator[Reading]:
    """Every Energy.Active.Import.Register sample in ``payload[field]`` (a list of MeterValue),
    in order: a value rounded to its decimals, so within half its last digit (kWh scaled)."""
    for meter_value in payload.get(field, []):
        for sample in meter_value["sampledValue"]:
            if (sample.get("measurand", REGISTER) != REGISTER
                    or sample.get("format") == "SignedData"):
                continue
            value = Decimal(sample["value"])
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int), sample
            half = Decimal(5).scaleb(exponent - 1)
            scale = 1000 if sample.get("unit") == "kWh" else 1
            yield (f"{sample['value']} {sample.get('unit', 'Wh')}", (value - half) * scale,
                   (value + half) * scale)


def readings_received(
    records: list[Record],
) -> Iterator[tuple[tuple[str, int] | None, int | None, Reading]]:
    """((charger, connectorId), transactionId, reading) of every register value the peer
    received, in the order first received: meterStart, the samples of MeterValues and of a
    stop's transactionData, meterStop. The transaction (and, for a stop, the connector) is
    ``None`` where the peer issued no such id to that charger."""
    starts = issued(records)
    start_ids = {(r["charger"], r["connector_id"], r["id_tag"], r["meter_start"],
                  r["timestamp"]): transaction_id for transaction_id, r in starts.items()}
    for record in first_receipts(records, TRANSACTION_ACTIONS):
        charger, action, payload = record["charger"], record["action"], record["payload"]
        if action == "StartTransaction":
            transaction_id = start_ids.get((charger, payload["connectorId"], payload["idTag"],
                                            payload["meterStart"], payload["timestamp"]))
            yield ((charger, payload["connectorId"]), transaction_id,
                   whole_wh(f"transaction {transaction_id} meterStart", payload["meterStart"]))
            continue
        transaction_id = payload.get("transactionId")
        start = starts.get(transaction_id) if transaction_id is not None else None
        if start is None or start["charger"] != charger:
            transaction_id = None
        if action == "MeterValues":
            where: tuple[str, int] | None = (charger, payload["connectorId"])
            samples = register_samples(payload, "meterValue")
        else:
            where = (charger, start["connector_id"]) if transaction_id is not None else None
            samples = register_samples(payload, "transactionData")
        for label, low, high in samples:
            yield where, transaction_id, (f"transaction {transaction_id} {action} {label}",
                                          low, high)
        if action == "StopTransaction":
            yield where, transaction_id, whole_wh(f"transaction {transaction_id} meterStop",
                                                  payload["meterStop"])


def first_step_back(readings: list[Reading]) -> tuple[int, str] | None:
    """Where the register first went backwards: (index of the reading, label of the earlier
    reading above it), or ``None``. Backwards means no non-decreasing register fits every
    reading's interval up to there."""
    floor, floor_label = Decimal("-Infinity"), ""
    for index, (label, low, high) in enumerate(readings):
        if floor > high:
            return index, floor_label
        if low > floor:
            floor, floor_label = low, label
    return None
