"""The reference CSMS's transaction book: ids, starts, meter readings, stops, and what is odd.

:class:`TransactionBook` hands out transaction ids (per charge point: see :class:`IdRanges`),
decides ``ConcurrentTx``, recognises a replayed StartTransaction, folds
Energy.Active.Import.Register readings into the running transaction and closes it on
StopTransaction. Everything suspicious goes to the ``report`` callback the caller passes with each
step (see :class:`~simulator.csms.records.AnomalyKind`); nothing here is ever refused, because a
central system answers every transaction message (it cannot refuse a StopTransaction).
Pure bookkeeping: no clock (``now`` comes in), no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Protocol

from simulator.csms.records import AnomalyKind, TransactionRecord
from simulator.csms.rules import energy_reading
from simulator.ocpp.v16 import MeterValue, StartTransactionRequest, StopTransactionRequest

MAX_TRANSACTION_ID: Final = 2**31 - 1
"""Transaction ids are positive int32 values: many CSMS databases store them so."""

ID_BLOCK_SIZE: Final = 1000
"""Transaction ids a charge point's block holds before it is given another block."""

ACCEPTED: Final = "Accepted"
CONCURRENT_TX: Final = "ConcurrentTx"


class Report(Protocol):
    """Where anomalies go: ``report(kind, **detail)`` (the details must be JSON-serialisable)."""

    def __call__(self, kind: AnomalyKind, /, **detail: Any) -> None: ...


@dataclasses.dataclass(slots=True)
class _Transaction:
    transaction_id: int
    charger: str
    connector_id: int
    id_tag: str
    status: str
    meter_start: int
    start_timestamp: datetime
    started_at: float
    last_register: int
    meter_value_count: int = 0
    meter_stop: int | None = None
    stop_timestamp: datetime | None = None
    stop_reason: str | None = None
    stopped_at: float | None = None

    def snapshot(self) -> TransactionRecord:
        return TransactionRecord(**dataclasses.asdict(self))


def _home_block(charger: str, blocks: int) -> int:
    """The block a charger's ids start from: a stable hash of its identity (sha256, so the
    same on every run, host and Python version)."""
    digest = hashlib.sha256(charger.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % blocks


class IdRanges:
    """Transaction ids, allocated per charge point so that the ids one charger sees depend only
    on its own history (not on how its messages interleave with other chargers').

    Rules:

    - The ids ``first_id`` .. 2**31 - 1 (positive int32) are cut into blocks of
      :data:`ID_BLOCK_SIZE` (fewer when the range is smaller). A charger's first id claims its
      *home block*, a stable hash of its identity; its ids then count up by one through the
      block, and a full block is followed by the next free block after it.
    - A block belongs to one charger, so ids are unique across the CSMS. A block already
      claimed by another charger (two identities hashing to one block) is skipped to the next
      free one, wrapping around: that one case depends on which of the two chargers claimed first.
    - When no free block is left, :meth:`allocate` raises ``OverflowError``.
    """

    def __init__(self, first_id: int = 1) -> None:
        if not 1 <= first_id <= MAX_TRANSACTION_ID:
            raise ValueError(f"first_id must be a positive int32, got {first_id}")
        self._first = first_id
        span = MAX_TRANSACTION_ID - first_id + 1
        self._size = min(ID_BLOCK_SIZE, span)
        self._blocks = span // self._size
        self._claimed: set[int] = set()
        self._cursor: dict[str, tuple[int, int]] = {}
        """charger -> (its current block, the offset of its next id in that block)"""

    def allocate(self, charger: str) -> int:
        """The next transaction id of ``charger``. Raises ``OverflowError`` when every block is
        taken."""
        cursor = self._cursor.get(charger)
        if cursor is None or cursor[1] >= self._size:
            start = _home_block(charger, self._blocks) if cursor is None else cursor[0] + 1
            cursor = (self._claim(start), 0)
        block, offset = cursor
        self._cursor[charger] = (block, offset + 1)
        return self._first + block * self._size + offset

    def _claim(self, start: int) -> int:
        for step in range(self._blocks):
            block = (start + step) % self._blocks
            if block not in self._claimed:
                self._claimed.add(block)
                return block
        raise OverflowError("transaction ids exhausted (positive int32)")


class TransactionBook:
    """Every transaction one CSMS has seen, by id, in the order they started. Ids come from
    :class:`IdRanges` (``first_id`` is the lowest id it may hand out)."""

    def __init__(self, first_id: int = 1) -> None:
        self._ids = IdRanges(first_id)
        self._all: dict[int, _Transaction] = {}
        self._open: dict[str, dict[int, _Transaction]] = {}
        self._running_by_tag: dict[str, int] = {}
        self._start_keys: dict[tuple[str, int, str, int, datetime], int] = {}
        self.stopped = 0
        """How many transactions were closed by a StopTransaction."""

    def allocate_id(self, charger: str) -> int:
        """The next transaction id of ``charger`` (see :class:`IdRanges`). Raises
        ``OverflowError`` when the int32 range is used up."""
        return self._ids.allocate(charger)

    def start(
        self, charger: str, request: StartTransactionRequest, tag_status: str, now: float,
        report: Report,
    ) -> tuple[int, str]:
        """Record a StartTransaction from ``charger`` whose idTag the tag rules gave
        ``tag_status``; the ``(transaction_id, status)`` to answer with.

        A replay of an earlier start (same charger, connector, idTag, meterStart, timestamp) gets
        the earlier answer and opens nothing. An accepted idTag that already has a running
        accepted transaction gets ``ConcurrentTx``. A transaction is recorded (and counts as open
        until stopped) whatever its status: the charge point will send its StopTransaction.
        """
        key = (charger, request.connector_id, request.id_tag, request.meter_start,
               request.timestamp)
        earlier = self._start_keys.get(key)
        if earlier is not None:
            report(AnomalyKind.DUPLICATE_START, transaction_id=earlier)
            return earlier, self._all[earlier].status
        status = tag_status
        running = self._running_by_tag.get(request.id_tag)
        if status == ACCEPTED and running is not None:
            status = CONCURRENT_TX
            report(AnomalyKind.CONCURRENT_TX, id_tag=request.id_tag, running=running)
        open_here = self._open.setdefault(charger, {})
        for other in open_here.values():
            if other.connector_id == request.connector_id:
                report(AnomalyKind.CONNECTOR_BUSY, connector_id=request.connector_id,
                       running=other.transaction_id)
                break
        tx = _Transaction(
            transaction_id=self.allocate_id(charger), charger=charger,
            connector_id=request.connector_id, id_tag=request.id_tag, status=status,
            meter_start=request.meter_start, start_timestamp=request.timestamp,
            started_at=now, last_register=request.meter_start,
        )
        self._all[tx.transaction_id] = tx
        self._start_keys[key] = tx.transaction_id
        open_here[tx.transaction_id] = tx
        if status == ACCEPTED:
            self._running_by_tag[request.id_tag] = tx.transaction_id
        return tx.transaction_id, status

    def meter_values(
        self, charger: str, connector_id: int, transaction_id: int | None,
        meter_values: Iterable[MeterValue], report: Report,
    ) -> None:
        """Check a MeterValues request; fold its register readings into the transaction it
        names when that is a running transaction of this charger on this connector."""
        tx = None
        if transaction_id is not None:
            tx = self._usable(charger, transaction_id, "MeterValues", report)
        if tx is not None and tx.connector_id != connector_id:
            report(AnomalyKind.FOREIGN_TRANSACTION, transaction_id=tx.transaction_id,
                   connector_id=connector_id)
            tx = None
        elif tx is not None and tx.stopped_at is not None:
            report(AnomalyKind.METER_VALUES_AFTER_STOP, transaction_id=tx.transaction_id)
            tx = None
        self._readings(tx, meter_values, report)

    def stop(
        self, charger: str, request: StopTransactionRequest, now: float, report: Report
    ) -> None:
        """Close the transaction a StopTransaction names (after checking its transactionData and
        meterStop against the register). An unknown, foreign or already stopped id only reports
        an anomaly."""
        tx = self._usable(charger, request.transaction_id, "StopTransaction", report)
        if tx is None:
            return
        if tx.stopped_at is not None:
            report(AnomalyKind.DUPLICATE_STOP, transaction_id=tx.transaction_id)
            return
        if request.transaction_data:
            self._readings(tx, request.transaction_data, report)
        if request.meter_stop < tx.last_register:
            report(AnomalyKind.REGISTER_DECREASED, transaction_id=tx.transaction_id,
                   previous=tx.last_register, reading=request.meter_stop, at="meterStop")
        tx.meter_stop = request.meter_stop
        tx.stop_timestamp = request.timestamp
        tx.stop_reason = None if request.reason is None else str(request.reason)
        tx.stopped_at = now
        self.stopped += 1
        self._open.get(charger, {}).pop(tx.transaction_id, None)
        if self._running_by_tag.get(tx.id_tag) == tx.transaction_id:
            del self._running_by_tag[tx.id_tag]

    def _usable(
        self, charger: str, transaction_id: int, action: str, report: Report
    ) -> _Transaction | None:
        """The transaction ``transaction_id`` names if ``charger`` may use it; else report why not
        and return ``None``."""
        if transaction_id <= 0:
            report(AnomalyKind.INVALID_TRANSACTION_ID, transaction_id=transaction_id,
                   action=action)
            return None
        tx = self._all.get(transaction_id)
        if tx is None:
            report(AnomalyKind.UNKNOWN_TRANSACTION, transaction_id=transaction_id, action=action)
            return None
        if tx.charger != charger:
            report(AnomalyKind.FOREIGN_TRANSACTION, transaction_id=transaction_id,
                   action=action, owner=tx.charger)
            return None
        return tx

    @staticmethod
    def _readings(
        tx: _Transaction | None, meter_values: Iterable[MeterValue], report: Report
    ) -> None:
        """Check every sampled value; fold register readings into ``tx`` (when given)."""
        for meter_value in meter_values:
            reading = energy_reading(meter_value.sampled_value)
            for bad in reading.bad_values:
                report(AnomalyKind.BAD_METER_VALUE, value=bad[:50])
            if tx is None:
                continue
            tx.meter_value_count += 1
            if reading.wh is None:
                continue
            if reading.wh < tx.last_register:
                report(AnomalyKind.REGISTER_DECREASED, transaction_id=tx.transaction_id,
                       previous=tx.last_register, reading=reading.wh, at="MeterValues")
            tx.last_register = reading.wh

    # --- queries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._all)

    def get(self, transaction_id: int) -> TransactionRecord | None:
        """One transaction, or ``None`` for an id this book never handed out."""
        tx = self._all.get(transaction_id)
        return None if tx is None else tx.snapshot()

    def records(self, charger: str | None = None) -> tuple[TransactionRecord, ...]:
        """Every transaction (of ``charger`` when given), in the order they started."""
        return tuple(
            tx.snapshot() for tx in self._all.values() if charger is None or tx.charger == charger
        )

    def open_for(self, charger: str) -> tuple[int, ...]:
        """The ids of ``charger``'s transactions not stopped yet, oldest first."""
        return tuple(self._open.get(charger, ()))
