"""The connector status machine: which status changes are legal, and which get reported when.

One :class:`ConnectorMachine` per connector (connector 0 is the charge point as a whole). It holds
the current status and error code, refuses transitions that OCPP 1.6 forbids (§3 of the digest:
:data:`TRANSITIONS`), and decides which ``StatusNotification`` is due: a status must hold for
``MinimumStatusDuration`` seconds before it is reported (transient states are skipped), nothing is
reported while offline, and after a reconnect only the current status goes out, and only if it
differs from the last one reported. The pure helpers at the bottom encode the trigger rules the
charger applies (EV-side disconnect, suspended-state choice, which error codes fault a connector).
Pure: no I/O, no clock; ``now`` is monotonic seconds and wall time is ``wall_offset + now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.ocpp.v16 import (
    ChargePointErrorCode,
    ChargePointStatus,
    Reason,
    StatusNotificationRequest,
)

_S = ChargePointStatus
_E = ChargePointErrorCode

# Transition rules (connectors > 0), OCPP 1.6 §3 of the digest:
# - a row lists every status the connector may move to from its key; anything else raises
#   IllegalTransition ("we broke it": the charger logic asked for something the spec forbids);
# - staying in the same status is not a transition and is always allowed (a new error code or
#   info on the same status is reported again);
# - Faulted may return to any status (normally the pre-fault one: see pre_fault_status);
# - connector 0 (the whole charge point) knows only Available, Unavailable and Faulted and moves
#   freely among them (CONNECTOR_ZERO_TRANSITIONS).
TRANSITIONS: Final[Mapping[ChargePointStatus, frozenset[ChargePointStatus]]] = MappingProxyType(
    {
        _S.AVAILABLE: frozenset(
            {
                _S.PREPARING,
                _S.CHARGING,
                _S.SUSPENDED_EV,
                _S.SUSPENDED_EVSE,
                _S.RESERVED,
                _S.UNAVAILABLE,
                _S.FAULTED,
            }
        ),
        _S.PREPARING: frozenset(
            {
                _S.AVAILABLE,
                _S.CHARGING,
                _S.SUSPENDED_EV,
                _S.SUSPENDED_EVSE,
                _S.FINISHING,
                _S.FAULTED,
            }
        ),
        _S.CHARGING: frozenset(
            {
                _S.AVAILABLE,
                _S.SUSPENDED_EV,
                _S.SUSPENDED_EVSE,
                _S.FINISHING,
                _S.UNAVAILABLE,
                _S.FAULTED,
            }
        ),
        _S.SUSPENDED_EV: frozenset(
            {
                _S.AVAILABLE,
                _S.CHARGING,
                _S.SUSPENDED_EVSE,
                _S.FINISHING,
                _S.UNAVAILABLE,
                _S.FAULTED,
            }
        ),
        _S.SUSPENDED_EVSE: frozenset(
            {
                _S.AVAILABLE,
                _S.CHARGING,
                _S.SUSPENDED_EV,
                _S.FINISHING,
                _S.UNAVAILABLE,
                _S.FAULTED,
            }
        ),
        _S.FINISHING: frozenset({_S.AVAILABLE, _S.PREPARING, _S.UNAVAILABLE, _S.FAULTED}),
        _S.RESERVED: frozenset({_S.AVAILABLE, _S.PREPARING, _S.UNAVAILABLE, _S.FAULTED}),
        _S.UNAVAILABLE: frozenset(
            {
                _S.AVAILABLE,
                _S.PREPARING,
                _S.CHARGING,
                _S.SUSPENDED_EV,
                _S.SUSPENDED_EVSE,
                _S.FAULTED,
            }
        ),
        _S.FAULTED: frozenset(set(_S) - {_S.FAULTED}),
    }
)

#: The statuses connector 0 (the charge point as a whole) may take.
CONNECTOR_ZERO_STATUSES: Final[frozenset[ChargePointStatus]] = frozenset(
    {_S.AVAILABLE, _S.UNAVAILABLE, _S.FAULTED}
)

#: Connector 0's table: free movement among its three statuses.
CONNECTOR_ZERO_TRANSITIONS: Final[Mapping[ChargePointStatus, frozenset[ChargePointStatus]]] = (
    MappingProxyType({s: CONNECTOR_ZERO_STATUSES - {s} for s in CONNECTOR_ZERO_STATUSES})
)

#: Statuses in which the connector takes part in a transaction (energy may flow or is paused).
TRANSACTION_STATUSES: Final[frozenset[ChargePointStatus]] = frozenset(
    {_S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE}
)

# Which error codes, raised by the (simulated) hardware, take the connector to Faulted (True) and
# which are only warnings reported with the current status (False). The spec leaves the choice to
# the charge point; a code with any status other than Faulted is a warning. NoError is neither.
ERROR_CODE_FAULTS: Final[Mapping[ChargePointErrorCode, bool]] = MappingProxyType(
    {
        _E.CONNECTOR_LOCK_FAILURE: True,
        _E.EV_COMMUNICATION_ERROR: False,
        _E.GROUND_FAILURE: True,
        _E.HIGH_TEMPERATURE: False,
        _E.INTERNAL_ERROR: True,
        _E.LOCAL_LIST_CONFLICT: False,
        _E.OTHER_ERROR: True,
        _E.OVER_CURRENT_FAILURE: True,
        _E.POWER_METER_FAILURE: True,
        _E.POWER_SWITCH_FAILURE: True,
        _E.READER_FAILURE: False,
        _E.RESET_FAILURE: False,
        _E.UNDER_VOLTAGE: False,
        _E.OVER_VOLTAGE: False,
        _E.WEAK_SIGNAL: False,
    }
)


class IllegalTransition(Exception):
    """The charger asked for a status change the transition table forbids ("we broke it").

    This is a bug in the caller, never something a peer can provoke.
    """

    def __init__(self, connector_id: int, old: ChargePointStatus, new: ChargePointStatus) -> None:
        super().__init__(f"connector {connector_id}: illegal status transition {old} -> {new}")
        self.connector_id = connector_id
        self.old = old
        self.new = new


def allowed_transitions(
    connector_id: int, status: ChargePointStatus
) -> frozenset[ChargePointStatus]:
    """The statuses a connector may move to from ``status`` (excluding staying put)."""
    table = CONNECTOR_ZERO_TRANSITIONS if connector_id == 0 else TRANSITIONS
    return table.get(status, frozenset())


def is_allowed(connector_id: int, old: ChargePointStatus, new: ChargePointStatus) -> bool:
    """True if ``old -> new`` is legal for this connector (same status is always legal, except a
    status connector 0 cannot take)."""
    if connector_id == 0 and new not in CONNECTOR_ZERO_STATUSES:
        return False
    return old == new or new in allowed_transitions(connector_id, old)


def is_warning(status: ChargePointStatus, error_code: ChargePointErrorCode) -> bool:
    """True if ``error_code`` is a warning: an error code with a status other than Faulted."""
    return error_code != _E.NO_ERROR and status != _S.FAULTED


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """One StatusNotification to send: the status as it was when it took effect.

    ``since`` is the monotonic time the status took effect; the request's timestamp is the wall
    time of that moment (``wall_offset + since``).
    """

    connector_id: int
    status: ChargePointStatus
    error_code: ChargePointErrorCode
    since: float
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None

    def to_request(self, wall_offset: float) -> StatusNotificationRequest:
        """The wire request; ``wall_offset`` is Unix seconds at ``now == 0`` (the charger's clock,
        including any offset from clock sync)."""
        return StatusNotificationRequest(
            connector_id=self.connector_id,
            error_code=self.error_code,
            status=self.status,
            timestamp=dt.datetime.fromtimestamp(wall_offset + self.since, tz=dt.UTC),
            info=self.info,
            vendor_id=self.vendor_id,
            vendor_error_code=self.vendor_error_code,
        )


class _Condition(msgspec.Struct, frozen=True):
    """What a StatusNotification carries, minus the time: equal conditions are not re-reported."""

    status: ChargePointStatus
    error_code: ChargePointErrorCode
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None


class ConnectorMachine:
    """Status of one connector and the policy for reporting it.

    Starts ``online`` with ``initial`` status (Available by default) and nothing reported yet, so
    the first ``due_notification`` reports it (the boot-time StatusNotification). The charger
    calls :meth:`set_status` on every change, :meth:`mark_offline` / :meth:`mark_online` as the
    transport goes down and up, and polls :meth:`due_notification` (at :meth:`next_deadline` and
    after every input).
    """

    def __init__(
        self,
        connector_id: int,
        *,
        now: float,
        minimum_status_duration: float = 0,
        initial: ChargePointStatus = ChargePointStatus.AVAILABLE,
    ) -> None:
        if connector_id < 0:
            raise ValueError(f"connector id must be >= 0, got {connector_id}")
        if connector_id == 0 and initial not in CONNECTOR_ZERO_STATUSES:
            raise ValueError(f"connector 0 cannot start in {initial}")
        self.connector_id = connector_id
        self._minimum_status_duration = max(0.0, float(minimum_status_duration))
        self._condition = _Condition(initial, _E.NO_ERROR, None, None, None)
        self._since = now
        self._pre_fault: ChargePointStatus | None = None
        self._reported: _Condition | None = None
        self._online = True

    # --- state -------------------------------------------------------------------------------

    @property
    def status(self) -> ChargePointStatus:
        """The current status."""
        return self._condition.status

    @property
    def error_code(self) -> ChargePointErrorCode:
        """The current error code (NoError when healthy)."""
        return self._condition.error_code

    @property
    def info(self) -> str | None:
        """Free text sent with the status (≤ 50 characters), or None."""
        return self._condition.info

    @property
    def vendor_error_code(self) -> str | None:
        """The vendor-specific error code sent with the status, or None."""
        return self._condition.vendor_error_code

    @property
    def since(self) -> float:
        """Monotonic time the current status (or error code) took effect."""
        return self._since

    @property
    def pre_fault_status(self) -> ChargePointStatus | None:
        """The status before the connector went Faulted (None when not Faulted)."""
        return self._pre_fault

    @property
    def online(self) -> bool:
        """Whether notifications may go out now (the transport is up and boot accepted)."""
        return self._online

    @property
    def warning(self) -> bool:
        """True if the current error code is a warning (an error with a status not Faulted)."""
        return is_warning(self.status, self.error_code)

    @property
    def minimum_status_duration(self) -> float:
        """Seconds a status must hold before it is reported (``MinimumStatusDuration``)."""
        return self._minimum_status_duration

    def set_minimum_status_duration(self, seconds: float) -> None:
        """Apply a new ``MinimumStatusDuration`` (negative values count as 0)."""
        self._minimum_status_duration = max(0.0, float(seconds))

    # --- inputs ------------------------------------------------------------------------------

    def set_status(
        self,
        new: ChargePointStatus,
        now: float,
        *,
        error_code: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR,
        info: str | None = None,
        vendor_id: str | None = None,
        vendor_error_code: str | None = None,
    ) -> bool:
        """Move to ``new`` with the given error code at ``now``; return True if anything changed.

        Raises :class:`IllegalTransition` if the table forbids ``status -> new``. Setting the same
        status with the same error code, info and vendor fields changes nothing (and keeps
        ``since``). A non-NoError code with a status other than Faulted is a warning: allowed and
        reported like any change.
        """
        old = self._condition.status
        condition = _Condition(new, error_code, info, vendor_id, vendor_error_code)
        if condition == self._condition:
            return False  # (staying put is always legal)
        if not is_allowed(self.connector_id, old, new):
            raise IllegalTransition(self.connector_id, old, new)
        if new == _S.FAULTED and old != _S.FAULTED:
            self._pre_fault = old
        elif new != _S.FAULTED:
            self._pre_fault = None
        self._condition = condition
        self._since = now
        return True

    def shows(
        self,
        status: ChargePointStatus,
        error_code: ChargePointErrorCode,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> bool:
        """Whether the connector already shows exactly this (no vendor id): :meth:`set_status`
        with the same arguments would change nothing."""
        c = self._condition
        return (c.status == status and c.error_code == error_code and c.info == info
                and c.vendor_id is None and c.vendor_error_code == vendor_error_code)

    def mark_offline(self) -> None:
        """The transport went down: nothing is reported until :meth:`mark_online`."""
        self._online = False

    def mark_online(self, now: float) -> None:
        """The transport is back (and boot accepted). Only the current status is reported, and
        only if it differs from the last one reported: the offline history is not replayed."""
        del now  # the due time depends on ``since`` only; kept for a uniform input signature
        self._online = True

    def forget_reported(self) -> None:
        """Treat the current status as never reported (after a reboot's BootNotification is
        accepted, every connector reports its status again)."""
        self._reported = None

    def report_lost(self, status: ChargePointStatus, error_code: ChargePointErrorCode) -> None:
        """A StatusNotification for ``status`` / ``error_code`` was handed out but never reached
        the central system (the connection went down first). If it was the last one handed out,
        the current status counts as unreported again, so it goes out after the reconnect."""
        reported = self._reported
        if reported is not None and (reported.status, reported.error_code) == (status, error_code):
            self._reported = None

    # --- outputs -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the pending status becomes due, or None if nothing is pending (or offline)."""
        if not self._online or self._condition == self._reported:
            return None
        return self._since + self._minimum_status_duration

    def due_notification(self, now: float) -> StatusReport | None:
        """The StatusNotification due at ``now``, consumed (marked reported), or None.

        Due when online, the current status differs from the last reported one, and it has held
        for ``MinimumStatusDuration`` seconds. A status that came and went within that time is
        never reported.
        """
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        return self.current_notification()

    def current_notification(self) -> StatusReport:
        """The current status as a report, regardless of timing, marked reported (for
        TriggerMessage(StatusNotification), which asks for the status now)."""
        c = self._condition
        self._reported = c
        return StatusReport(
            connector_id=self.connector_id,
            status=c.status,
            error_code=c.error_code,
            since=self._since,
            info=c.info,
            vendor_id=c.vendor_id,
            vendor_error_code=c.vendor_error_code,
        )

    def preparing_deadline(self, connection_timeout: float) -> float | None:
        """When a Preparing connector without a started transaction falls back to Available
        (``ConnectionTimeOut`` seconds after entering Preparing); None if not Preparing or the
        timeout is 0 (disabled)."""
        if self.status != _S.PREPARING or connection_timeout <= 0:
            return None
        return self._since + connection_timeout


# --- trigger rules -------------------------------------------------------------------------------


class DisconnectOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an EV-side unplug does: the next status, whether the transaction stops (and why), and
    whether the connector unlocks the cable at the charge point side."""

    status: ChargePointStatus
    stop_reason: Reason | None
    unlock: bool


def ev_side_disconnect(
    status: ChargePointStatus,
    *,
    in_transaction: bool,
    stop_transaction_on_ev_side_disconnect: bool,
    unlock_connector_on_ev_side_disconnect: bool,
) -> DisconnectOutcome:
    """The outcome of the EV unplugging from a connector in ``status``.

    In a transaction: ``StopTransactionOnEVSideDisconnect`` true → Finishing and stop with reason
    EVDisconnected; false → SuspendedEV and the transaction goes on. The cable unlocks when
    ``UnlockConnectorOnEVSideDisconnect`` is true. Without a transaction: Unavailable and Faulted
    stay as they are, anything else becomes Available.
    """
    unlock = unlock_connector_on_ev_side_disconnect
    if in_transaction:
        if stop_transaction_on_ev_side_disconnect:
            return DisconnectOutcome(
                status=_S.FINISHING, stop_reason=Reason.EV_DISCONNECTED, unlock=unlock
            )
        return DisconnectOutcome(status=_S.SUSPENDED_EV, stop_reason=None, unlock=unlock)
    if status in (_S.UNAVAILABLE, _S.FAULTED):
        return DisconnectOutcome(status=status, stop_reason=None, unlock=unlock)
    return DisconnectOutcome(status=_S.AVAILABLE, stop_reason=None, unlock=unlock)


def delivery_status(*, ev_suspended: bool, evse_suspended: bool) -> ChargePointStatus:
    """The status of a connector in a transaction: Charging, SuspendedEV (the EV does not take
    energy) or SuspendedEVSE (the EVSE does not offer it: a limit of 0, a rejected idTag). Both
    suspended → SuspendedEVSE."""
    if evse_suspended:
        return _S.SUSPENDED_EVSE
    if ev_suspended:
        return _S.SUSPENDED_EV
    return _S.CHARGING


def fault_status(status: ChargePointStatus, error_code: ChargePointErrorCode) -> ChargePointStatus:
    """The status to report when the hardware raises ``error_code`` in ``status``: Faulted for a
    code :data:`ERROR_CODE_FAULTS` marks as a fault, otherwise the status stays (a warning)."""
    if ERROR_CODE_FAULTS.get(error_code, False):
        return _S.FAULTED
    return status
