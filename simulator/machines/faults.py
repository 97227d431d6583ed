"""Behaviour faults: the chaos catalog's behaviour family, as inputs to the charger machine.

The director decides a fault for a charger and the actor hands it to
:meth:`~simulator.machines.charger.ChargerMachine.inject`; :class:`Faults` applies it and ends it
by itself at its ``until`` (the machine's ``next_deadline`` includes every instant kept here).
Each fault acts only on what it names, and the charger is in a correct state afterwards.
Applied breaches and the end of a fault are recorded as notes (``fault_applied``,
``fault_ended``, ``fault_ignored``) naming the injection, so a report can pair them with what the
central system did next. Rules, per fault (parameters as the chaos catalog defines them):

- ``clock_skew``, ``meter_regress``, ``meter_spike``: distortions of what the charger writes
  (:mod:`simulator.machines.breaches` says which frames and how); the charger's state is untouched.
- ``duplicate_start``: the next StartTransaction answered from now on is sent once more, as it
  was (same payload, a new message id), after the next reconnect, once the charger is connected
  and Accepted again: a charger that missed the answer and resends. The resend is an ordinary
  message; the central system's answer is recorded and changes nothing (the charger goes on with
  the id it first got). Pair it with a transport fault (``disconnect``) to make the reconnect
  happen; it is disarmed at ``until`` if nothing was resent by then.
- ``stale_transaction_id``: the next transaction message sent that carries a ``transactionId``
  (StopTransaction, a transaction's MeterValues) carries the id of the transaction of this
  charger that finished last (its StopTransaction was answered) instead; it waits for such a
  transaction to exist. ``missing_transaction_id``: that message carries ``value`` (-1 or 0).
  One frame only: if the central system refuses it with a CALLERROR, the resend carries the
  true id; if it accepts it, the true transaction is left open at the central system (the
  breach is deliberate). Disarmed at ``until`` if unused.
- ``connector_fault``: the hardware reports ``error_code`` (with ``info``) at the target
  connector (none: connector 0, the charge point as a whole), exactly as a ``fault`` step: a
  fault code takes the connector to Faulted and stops its transaction with reason Other. At
  ``until`` it is cleared, unless something else changed that connector's error since.
- ``boot_loop``: the charger reboots at once (hard, watchdog style: running transactions are
  stopped with reason Reboot, their StopTransactions wait for the next Accepted boot), then
  again ``interval`` seconds after each power-on, ``count`` reboots in all (fewer if ``until``
  comes first).
- ``power_loss``: the charger's hard-reboot path (``reboot(hard=True)``): power off at once,
  running transactions stopped with reason PowerLoss (meterStop and timestamp of the cut),
  down (the link with it) for ``outage`` seconds, or until ``until`` when the fault has one
  (a blackout brings all its chargers back at that one instant), then power on, boot, and the
  outbox (what was in flight, then the PowerLoss StopTransactions) is replayed once the boot
  is Accepted. Ignored while the charger is down.
- ``firmware_failure``: a firmware update that fails, run as the charger's own UpdateFirmware
  job (:mod:`simulator.machines.jobs`: it replaces the update under way, a trigger reports its
  status, and its statuses are reported as that job's are): FirmwareStatusNotification
  Downloading, then after :data:`DOWNLOAD_SECONDS` DownloadFailed (``stage`` "download"), or
  Downloaded, Installing :data:`INSTALL_START_SECONDS` later and InstallationFailed
  :data:`INSTALL_SECONDS` after that (``stage`` "install"). A reboot interrupts it (the failure
  of its stage is reported after the boot).
- ``slow_responses``: a CALL of the central system that reaches the charger while the fault
  lasts is acted on and answered ``delay`` seconds after it came (the charger is slow, not the
  link: the answer and what it triggers are decided then). A call still held when the link or
  the power goes is never answered. CALLERRORs the OCPP-J layer sends for frames it cannot take
  (unknown action, unsupported profile, bad payload) are not delayed.
- ``reject_commands``: while it lasts, every CALL of the central system that reaches the
  charger (only those of ``action`` when given) is refused and has no effect: mode "rejected"
  answers the status Rejected where the confirmation has one, and a CALLERROR InternalError
  otherwise; mode "callerror" answers every one with a CALLERROR InternalError.

A new fault of the same kind replaces the one in force (two skews never add up), except register
shifts and connector faults, which are per injection. Faults are not in the charger's memory: a
charger restarted after a crash starts without any. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Final, Protocol, TypeVar

import msgspec

from simulator.events import Note
from simulator.machines.breaches import ClockSkew, RegisterShift, SkewMode
from simulator.machines.context import ChargerContext
from simulator.machines.effects import OutboxEntry
from simulator.machines.jobs import Job, JobKind, Jobs, Stage, Timings
from simulator.machines.outcomes import IncomingCall, OutgoingCall
from simulator.machines.parts import HardwareError, earliest
from simulator.machines.reboot import RebootSequence
from simulator.machines.session import IdOverride
from simulator.machines.transactions import Transactions
from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import (
    ChargePointErrorCode,
    Reason,
    StartTransactionRequest,
    StartTransactionResponse,
)

DOWNLOAD_SECONDS: Final = 30.0
"""``firmware_failure``: seconds from Downloading to DownloadFailed or Downloaded."""
INSTALL_START_SECONDS: Final = 5.0
"""``firmware_failure``: seconds from Downloaded to Installing."""
INSTALL_SECONDS: Final = 60.0
"""``firmware_failure``: seconds from Installing to InstallationFailed."""

REFUSAL: Final = ErrorCode.INTERNAL_ERROR
"""The CALLERROR code of a command refused by ``reject_commands``."""


class FaultOrder(Protocol):
    """What the machine reads of an injection (``simulator.chaos.injection.Injection`` has
    these; the machine does not import the chaos layer above it)."""

    @property
    def id(self) -> str: ...
    @property
    def fault(self) -> str: ...
    @property
    def until(self) -> float | None: ...
    @property
    def connector(self) -> int | None: ...
    @property
    def params(self) -> Mapping[str, str | int | float | bool]: ...


class RejectMode(enum.StrEnum):
    """How ``reject_commands`` refuses a CALL."""

    REJECTED = "rejected"
    CALLERROR = "callerror"


@dataclasses.dataclass(frozen=True, slots=True)
class DuplicateStart:
    """The context of a StartTransaction resent by ``duplicate_start`` (an ordinary CALL)."""

    injection: str
    local_tx: int | None


@dataclasses.dataclass(slots=True)
class _Window:
    """A fault in force until ``until`` (None: until the run ends)."""

    injection: str
    fault: str
    until: float | None

    def over(self, now: float) -> bool:
        return self.until is not None and now >= self.until


_W = TypeVar("_W", bound=_Window)


@dataclasses.dataclass(slots=True)
class _Slow(_Window):
    """``slow_responses``: CS calls answered ``delay`` seconds after they came."""

    delay: float = 0.0


@dataclasses.dataclass(slots=True)
class _Reject(_Window):
    """``reject_commands``: CS calls (of ``action``, or all) refused as ``mode`` says."""

    action: str | None = None
    mode: RejectMode = RejectMode.REJECTED


@dataclasses.dataclass(slots=True)
class _ConnectorFault(_Window):
    """``connector_fault``: ``error`` set at ``connector_id``, cleared at the end if still set."""

    connector_id: int = 0
    error: HardwareError | None = None


@dataclasses.dataclass(slots=True)
class _BootLoop(_Window):
    """``boot_loop``: ``remaining`` reboots, the next at ``next_at`` (None: once powered on)."""

    remaining: int = 0
    interval: float = 0.0
    next_at: float | None = None


@dataclasses.dataclass(slots=True)
class _Duplicate(_Window):
    """``duplicate_start``: the answered StartTransaction to resend (None: none answered yet),
    and whether the link came back since it was answered."""

    request: StartTransactionRequest | None = None
    local_tx: int | None = None
    reconnected: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    """A CS call held by ``slow_responses`` until ``release_at``."""

    release_at: float
    call: IncomingCall
    injection: str


class Faults:
    """The behaviour faults in force on one charger (see the module docstring).

    Args:
        ctx: the charger's shared context (its ``breaches`` and ``session`` are changed here).
        reboots: the reboot sequence (``boot_loop``, ``power_loss``).
        transactions: the charger's transactions (``connector_fault`` reports through them).
        plugin: the protocol version (the confirmation types of ``reject_commands``).
        jobs: the charger's jobs (``firmware_failure`` runs as one).
    """

    def __init__(
        self,
        ctx: ChargerContext,
        *,
        reboots: RebootSequence,
        transactions: Transactions,
        plugin: ProtocolPlugin,
        jobs: Jobs,
    ) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.reboots = reboots
        self.transactions = transactions
        self._plugin = plugin
        self._slow: _Slow | None = None
        self._reject: _Reject | None = None
        self._held: list[_Held] = []
        self._connector_faults: list[_ConnectorFault] = []
        self._boot_loop: _BootLoop | None = None
        self._duplicate: _Duplicate | None = None
        self._stale: _Window | None = None
        self._override: _Window | None = None
        """The ``*_transaction_id`` fault whose override waits in the session."""
        self._started: dict[int, int] = {}
        """Local transaction → the CS's id, for transactions started in this life."""
        self._finished: int | None = None
        """The CS's id of the transaction that finished last (its StopTransaction answered)."""
        self.active = False
        """False only when no fault is in force: set by :meth:`inject`, cleared by :meth:`due`
        once everything ended (what ends elsewhere, e.g. a one-frame shift, waits for it)."""

    # --- input --------------------------------------------------------------------------------

    def inject(self, order: FaultOrder, now: float) -> None:
        """Apply a behaviour fault of the catalog; raises ``ValueError`` for any other name."""
        ctx, params, until, injection = self.ctx, order.params, order.until, order.id
        fault = order.fault
        self.active = True
        match fault:
            case "clock_skew":
                ctx.breaches.skew = ClockSkew(SkewMode(str(params["mode"])), now, until,
                                              float(params["seconds"]), injection)
            case "meter_regress" | "meter_spike":
                wh = float(params["wh"])
                connector = order.connector if order.connector else None
                ctx.breaches.shifts.append(RegisterShift(
                    connector, -wh if fault == "meter_regress" else wh, now, until,
                    injection, fault))
            case "duplicate_start":
                self._duplicate = _Duplicate(injection, fault, until)
            case "stale_transaction_id":
                self._stale = _Window(injection, fault, until)
                self._arm_stale()
            case "missing_transaction_id":
                self._stale = None
                self._set_override(int(params["value"]), _Window(injection, fault, until))
            case "connector_fault":
                self._connector_fault(order, now)
            case "boot_loop":
                self._boot_loop = _BootLoop(injection, fault, until, remaining=int(params["count"]),
                                            interval=float(params["interval"]), next_at=now)
            case "power_loss":
                if not ctx.powered:
                    ctx.note(now, "fault_ignored", fault=fault, injection=injection,
                             reason="the charger is down already")
                    return
                outage = float(params["outage"]) if until is None else max(0.0, until - now)
                self.reboots.begin(now, Reason.POWER_LOSS, hard=True, note="power_loss",
                                   delay=outage)
            case "firmware_failure":
                self._firmware_failure(str(params["stage"]), injection, now)
            case "slow_responses":
                self._slow = _Slow(injection, fault, until, delay=float(params["delay"]))
            case "reject_commands":
                action = params.get("action")
                self._reject = _Reject(injection, fault, until,
                                       action=None if action is None else str(action),
                                       mode=RejectMode(str(params["mode"])))
            case _:
                raise ValueError(f"{fault!r} is not a behaviour fault the charger can apply")

    def end(self, injection: str, now: float) -> bool:
        """End the fault ``injection`` now, before its ``until`` (the control API's ``DELETE``):
        its window, clock skew or register shift ends as it would at its ``until``, at the
        next :meth:`due` (calls already held by ``slow_responses`` keep their time). Returns
        whether a fault of this charger in force had that id (a fault replaced by another of
        its kind, used up or without an end to move has none)."""
        found = False
        for window in (self._slow, self._reject, self._boot_loop, self._duplicate, self._stale,
                       self._override, *self._connector_faults):
            if window is not None and window.injection == injection:
                window.until = now
                found = True
        breaches = self.ctx.breaches
        if breaches.skew is not None and breaches.skew.injection == injection:
            breaches.skew = dataclasses.replace(breaches.skew, until=now)
            found = True
        for shift in breaches.shifts:
            if shift.injection == injection:
                shift.until = now
                found = True
        self.active = self.active or found
        return found

    def _firmware_failure(self, stage: str, injection: str, now: float) -> None:
        failing = {"download": Stage.DOWNLOAD, "install": Stage.INSTALL}.get(stage)
        if failing is None:
            raise ValueError(f"firmware_failure stage must be download or install, got {stage!r}")
        self.jobs.start(Job(
            kind=JobKind.FIRMWARE, id=self.jobs.new_id(JobKind.FIRMWARE), location=None,
            stage=Stage.DOWNLOAD, fail_at=failing, injection=injection,
            timings=Timings(download=DOWNLOAD_SECONDS, downloaded=INSTALL_START_SECONDS,
                            install=INSTALL_SECONDS, upload=0.0),
        ), now)
        self.ctx.note(now, "fault_applied", fault="firmware_failure", injection=injection,
                      stage=stage)

    def _connector_fault(self, order: FaultOrder, now: float) -> None:
        params = order.params
        connector_id = order.connector if order.connector is not None else 0
        if connector_id not in self.ctx.connectors:
            self.ctx.note(now, "fault_ignored", fault=order.fault, injection=order.id,
                          reason=f"the charger has no connector {connector_id}")
            return
        code = ChargePointErrorCode(str(params["error_code"]))
        info = params.get("info")
        text = None if info is None else str(info)
        self.transactions.hardware_error(connector_id, code, now, info=text)
        if order.until is not None:
            self._connector_faults.append(_ConnectorFault(
                order.id, order.fault, order.until, connector_id=connector_id,
                error=self.ctx.errors.get(connector_id)))

    # --- the machine's hooks ------------------------------------------------------------------

    def hold(self, call: IncomingCall, now: float) -> bool:
        """``slow_responses``: keep ``call`` to answer later; False when it is answered now."""
        slow = self._slow
        if slow is None or slow.over(now):
            return False
        self._held.append(_Held(now + slow.delay, call, slow.injection))
        self._applied(now, slow, unique_id=call.unique_id, action=call.action, delay=slow.delay)
        return True

    def refuse(self, call: IncomingCall, now: float) -> bool:
        """``reject_commands``: refuse ``call`` (answered here, no effect); False otherwise."""
        reject = self._reject
        if reject is None or reject.over(now) or (
            reject.action is not None and reject.action != call.action
        ):
            return False
        response = _rejected(self._plugin, call.action) \
            if reject.mode == RejectMode.REJECTED else None
        session = self.ctx.session
        if response is not None:
            session.reply(call, response, now)
        else:
            session.reply_error(call.unique_id, call.action, REFUSAL,
                                f"{call.action} refused (reject_commands)", now)
        self._applied(now, reject, unique_id=call.unique_id, action=call.action,
                      answer="Rejected" if response is not None else str(REFUSAL))
        return True

    def connected(self) -> None:
        """The link is up (again)."""
        if self._duplicate is not None and self._duplicate.request is not None:
            self._duplicate.reconnected = True

    def disconnected(self, now: float) -> None:
        """The link is down: held calls are never answered (their connection is gone)."""
        self._drop_held(now, "connection lost")

    def powered_on(self, now: float) -> None:
        """A (re)boot: held calls end; a boot loop plans its next reboot."""
        self._drop_held(now, "rebooted")
        loop = self._boot_loop
        if loop is not None and loop.next_at is None:
            loop.next_at = now + loop.interval

    def start_answered(
        self, entry: OutboxEntry, response: StartTransactionResponse, now: float
    ) -> None:
        """A StartTransaction was answered: remember its id; capture it for ``duplicate_start``."""
        if entry.local_tx is not None:
            self._started[entry.local_tx] = response.transaction_id
        duplicate = self._duplicate
        if duplicate is not None and duplicate.request is None:
            duplicate.request = msgspec.json.decode(entry.payload, type=StartTransactionRequest)
            duplicate.local_tx = entry.local_tx
            self.ctx.note(now, "fault_armed", fault=duplicate.fault,
                          injection=duplicate.injection, local_tx=entry.local_tx)

    def stop_answered(self, entry: OutboxEntry) -> None:
        """A StopTransaction was answered: its transaction has finished (a stale id from now)."""
        if entry.local_tx is None:
            return
        tx_id = self._started.pop(entry.local_tx, entry.transaction_id)
        if tx_id is not None:
            self._finished = tx_id
            self._arm_stale()

    def duplicate_answered(
        self, call: OutgoingCall, response: StartTransactionResponse, now: float
    ) -> None:
        """The central system answered a resent StartTransaction: recorded, nothing changes."""
        if isinstance(call.context, DuplicateStart):
            self.ctx.note(now, "duplicate_start_answered", injection=call.context.injection,
                          local_tx=call.context.local_tx,
                          transaction_id=response.transaction_id,
                          status=response.id_tag_info.status.value)

    # --- time ---------------------------------------------------------------------------------

    def _in_force(self) -> bool:
        """Whether any fault is in force (something to wake for or to do)."""
        breaches = self.ctx.breaches
        return not (
            self._slow is None and self._reject is None and not self._held
            and not self._connector_faults and self._boot_loop is None
            and self._duplicate is None and self._stale is None
            and self._override is None and breaches.skew is None and not breaches.shifts
        )

    def next_deadline(self) -> float | None:
        """The earliest instant at which :meth:`due` has something to do, or None."""
        if not self.active:
            return None
        windows: list[_Window | None] = [
            self._slow, self._reject, self._boot_loop, self._duplicate, self._stale,
            self._override, *self._connector_faults,
        ]
        loop = self._boot_loop
        return earliest(
            self.ctx.breaches.next_end(),
            *[w.until for w in windows if w is not None],
            *[h.release_at for h in self._held],
            loop.next_at if loop is not None and self.ctx.powered else None,
        )

    def due(self, now: float) -> list[IncomingCall]:
        """End what is over, take the steps that are due; return the held calls to answer
        now (oldest first)."""
        if not self.active:
            return []
        ctx = self.ctx
        for injection in ctx.breaches.end(now):
            ctx.note(now, "fault_ended", injection=injection)
        self._end_windows(now)
        self._step_boot_loop(now)
        self._send_duplicate(now)
        released = [h.call for h in self._held if h.release_at <= now]
        self._held = [h for h in self._held if h.release_at > now]
        self.active = self._in_force()
        return released

    def _end_windows(self, now: float) -> None:
        self._slow = self._unless_over(self._slow, now)
        self._reject = self._unless_over(self._reject, now)
        self._stale = self._unless_over(self._stale, now)
        self._duplicate = self._unless_over(self._duplicate, now)
        self._boot_loop = self._unless_over(self._boot_loop, now)
        if self._override is not None and self._override.over(now):
            self.ctx.session.id_override = None  # unused so far: disarmed
            self._override = self._unless_over(self._override, now)
        for fault in [f for f in self._connector_faults if f.over(now)]:
            self._connector_faults.remove(fault)
            if self.ctx.errors.get(fault.connector_id) == fault.error:
                self.transactions.hardware_error(fault.connector_id,
                                                 ChargePointErrorCode.NO_ERROR, now)
            self._ended(now, fault)

    def _unless_over(self, window: _W | None, now: float) -> _W | None:
        """``window``, or None once it is over by ``now`` (its end recorded)."""
        if window is not None and window.over(now):
            self._ended(now, window)
            return None
        return window

    def _step_boot_loop(self, now: float) -> None:
        loop = self._boot_loop
        if loop is None or loop.next_at is None or now < loop.next_at or not self.ctx.powered:
            return
        loop.remaining -= 1
        loop.next_at = None
        if loop.remaining <= 0:
            self._boot_loop = None
        self._applied(now, loop, remaining=max(loop.remaining, 0))
        self.reboots.begin(now, Reason.REBOOT, hard=True, note="boot_loop")

    def _send_duplicate(self, now: float) -> None:
        """Resend the captured StartTransaction once reconnected, connected and Accepted (every
        step checks, so it goes in the step that makes this true)."""
        duplicate = self._duplicate
        if duplicate is None or duplicate.request is None or not duplicate.reconnected \
                or not self.ctx.accepted_online():
            return
        self._duplicate = None
        self._applied(now, duplicate, local_tx=duplicate.local_tx)
        self.ctx.session.call(duplicate.request, now,
                              context=DuplicateStart(duplicate.injection, duplicate.local_tx))

    # --- helpers ------------------------------------------------------------------------------

    def _arm_stale(self) -> None:
        stale = self._stale
        if stale is not None and self._finished is not None:
            self._stale = None
            self._set_override(self._finished, stale)

    def _set_override(self, transaction_id: int, window: _Window) -> None:
        self._override = window
        self.ctx.session.id_override = IdOverride(transaction_id, window.fault, window.injection)

    def _drop_held(self, now: float, reason: str) -> None:
        for held in self._held:
            self.ctx.note(now, "fault_call_unanswered", fault="slow_responses",
                          injection=held.injection, unique_id=held.call.unique_id,
                          action=held.call.action, reason=reason)
        self._held.clear()

    def _applied(self, now: float, window: _Window, **data: object) -> None:
        self.ctx.publish(Note(t=now, charger=self.ctx.charger, what="fault_applied",
                              data={"fault": window.fault, "injection": window.injection,
                                    **data}))

    def _ended(self, now: float, window: _Window) -> None:
        self.ctx.note(now, "fault_ended", fault=window.fault, injection=window.injection)


def _rejected(plugin: ProtocolPlugin, action: str) -> msgspec.Struct | None:
    """The confirmation of ``action`` with status Rejected, if its type has such a status and
    needs nothing else; None otherwise."""
    spec = plugin.actions.get(action)
    if spec is None:
        return None
    fields = msgspec.structs.fields(spec.response)
    status = next((f for f in fields if f.name == "status"), None)
    if status is None or any(f.required and f is not status for f in fields):
        return None
    kind = status.type
    if not (isinstance(kind, type) and issubclass(kind, enum.Enum)):
        return None
    member = next((m for m in kind if m.value == "Rejected"), None)
    return None if member is None else spec.response(status=member)
