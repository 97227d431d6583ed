"""The frozen records the reference CSMS hands out: query snapshots, statistics and call results.

Nothing here is live state: :class:`simulator.csms.core.CentralSystem` keeps its own mutable
bookkeeping and builds these snapshots on request, so a test or a viewer can hold one as long as
it likes. Times are ``now`` values (monotonic seconds) unless the field says ``wall``; timestamps
reported by a charge point are kept as the aware ``datetime`` it sent (naive when it sent no zone).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec

from simulator.events import Event


class AnomalyKind(enum.StrEnum):
    """What a charge point did that a careful CSMS notices (the chaos verdicts count these)."""

    UNKNOWN_TRANSACTION = "unknown_transaction"
    """StopTransaction or MeterValues with a transaction id this CSMS never handed out."""
    INVALID_TRANSACTION_ID = "invalid_transaction_id"
    """A transaction id that is zero or negative (the -1 of a charger that never got an answer)."""
    METER_VALUES_AFTER_STOP = "meter_values_after_stop"
    """MeterValues for a transaction that is already stopped."""
    REGISTER_DECREASED = "register_decreased"
    """An Energy.Active.Import.Register reading (or meterStop) lower than the previous one."""
    DUPLICATE_START = "duplicate_start"
    """A StartTransaction repeating an earlier one (connector, idTag, meterStart, timestamp)."""
    DUPLICATE_STOP = "duplicate_stop"
    """A StopTransaction for a transaction that is already stopped."""
    CONCURRENT_TX = "concurrent_tx"
    """A StartTransaction for an idTag that already has a running accepted transaction."""
    CONNECTOR_BUSY = "connector_busy"
    """A StartTransaction on a connector that already has a running transaction."""
    FOREIGN_TRANSACTION = "foreign_transaction"
    """A transaction id used by another charger or on another connector than the one it began on."""
    CALL_BEFORE_BOOT = "call_before_boot"
    """A CALL other than BootNotification while the charger's boot is not accepted."""
    DUPLICATE_MESSAGE_ID = "duplicate_message_id"
    """A CALL reusing the id of the charger's previous CALL."""
    BAD_METER_VALUE = "bad_meter_value"
    """A sampled value that is not a decimal number."""
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    """A timestamp more than ``max_clock_skew`` seconds after the CSMS's wall clock."""
    TIMESTAMP_ANCIENT = "timestamp_ancient"
    """A timestamp before 2000-01-01 (a charger whose clock reset to 1970)."""
    TIMESTAMP_WITHOUT_ZONE = "timestamp_without_zone"
    """A timestamp without a UTC offset."""
    SCHEMA_VIOLATION = "schema_violation"
    """A payload that broke the schema (answered anyway: only when ``validate`` is false)."""
    UNSOLICITED_RESULT = "unsolicited_result"
    """A CALLRESULT or CALLERROR whose id matches no outstanding CALL of the CSMS."""


class Anomaly(msgspec.Struct, frozen=True, kw_only=True):
    """One anomaly: when (``now``), who, what, and the details that make it checkable."""

    t: float
    charger: str
    kind: AnomalyKind
    detail: dict[str, Any] = {}


class TransactionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A transaction as the CSMS saw it.

    ``status`` is the idTagInfo status it answered StartTransaction with. ``last_register`` is the
    latest Energy.Active.Import.Register reading in Wh (``meter_start`` until one arrives);
    ``energy_wh`` is ``meter_stop - meter_start`` once stopped, else ``last_register -
    meter_start``. ``stopped_at`` is ``now`` at the StopTransaction, ``None`` while it runs.
    """

    transaction_id: int
    charger: str
    connector_id: int
    id_tag: str
    status: str
    meter_start: int
    start_timestamp: datetime
    started_at: float
    last_register: int
    meter_value_count: int
    meter_stop: int | None = None
    stop_timestamp: datetime | None = None
    stop_reason: str | None = None
    stopped_at: float | None = None

    @property
    def running(self) -> bool:
        """True until a StopTransaction closed it."""
        return self.stopped_at is None

    @property
    def energy_wh(self) -> int:
        """Energy delivered so far (Wh), from the register readings the CSMS received."""
        end = self.meter_stop if self.meter_stop is not None else self.last_register
        return end - self.meter_start


class ConnectorState(msgspec.Struct, frozen=True, kw_only=True):
    """The last StatusNotification of one connector (``updated_at`` is ``now``)."""

    status: str
    error_code: str
    updated_at: float
    info: str | None = None
    timestamp: datetime | None = None


class ChargerState(msgspec.Struct, frozen=True, kw_only=True):
    """One charge point as the CSMS sees it.

    ``boot_status`` is the answer to its last BootNotification (``None``: it never booted here);
    ``connections`` counts accepted WebSocket sessions, ``replaced`` how many of them were cut off
    by a newer session with the same identity. ``anomalies`` holds the most recent records (at most
    ``max_anomalies_per_charger``); ``anomaly_counts`` is complete.
    """

    identity: str
    connected: bool
    connections: int
    replaced: int
    boots: int
    boot_status: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    last_seen: float | None
    connectors: dict[int, ConnectorState]
    open_transactions: tuple[int, ...]
    anomalies: tuple[Anomaly, ...]
    anomaly_counts: dict[str, int]
    firmware_status: str | None = None
    diagnostics_status: str | None = None


class CsmsStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters over the CSMS's whole life (a frozen snapshot).

    ``calls_in`` counts the CALLs received per action; ``call_errors_out`` the CALLERRORs we sent
    per error code; ``frame_errors`` the frames that could not be decoded at all.
    """

    chargers: int
    connected: int
    connections: int
    replaced_connections: int
    frames_in: int
    frames_out: int
    calls_in: dict[str, int]
    call_errors_out: dict[str, int]
    frame_errors: int
    boots: int
    transactions_started: int
    transactions_stopped: int
    transactions_running: int
    anomalies: dict[str, int]


class CallOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a CS→CP CALL ended: a decoded ``response``, or an ``error_code`` (a CALLERROR received,
    a result that failed to decode, or ``"Timeout"`` when it was abandoned) with a description.
    ``latency`` is seconds from the CALL to its answer (``None`` when abandoned)."""

    charger: str
    unique_id: str
    action: str
    response: Any = None
    error_code: str | None = None
    error_description: str = ""
    latency: float | None = None

    @property
    def ok(self) -> bool:
        """True when a valid CALLRESULT arrived."""
        return self.error_code is None


class Outgoing(msgspec.Struct, frozen=True):
    """A frame to put on the wire, and the action it is a CALL of or answers (for the log)."""

    data: bytes
    action: str | None


class Reply(msgspec.Struct, frozen=True):
    """What the core returns for one received frame: ``frames`` to send back in order, ``events`` to
    publish (the CsmsFrameIn first, then notes), and ``outcome`` when the frame answered our
    CALL."""

    frames: tuple[Outgoing, ...]
    events: tuple[Event, ...]
    outcome: CallOutcome | None = None


class Opened(msgspec.Struct, frozen=True):
    """What :meth:`CentralSystem.connect` returns: the new session number (pass it back to
    ``disconnect``), whether an older session of the same identity was replaced, events to
    publish, and the outcome of a CALL that was in flight on the replaced session."""

    session: int
    replaced: bool
    events: tuple[Event, ...]
    abandoned: CallOutcome | None = None
