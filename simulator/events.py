"""Event Structs: what every part of the simulator publishes to the bus and the ledger records.

Every event is a frozen msgspec Struct tagged by ``kind`` (the ledger's ``events.kind`` column).
Events carry ``t``, the monotonic time in seconds at which they happened (the ``now`` that the core
was given, ``trio.current_time()`` in the actors); the ledger turns it into seconds since run start
and a UTC wall time, so nothing here reads a clock. ``charger`` and ``connector`` say who, where it
applies. Everything else is the event's own ``data``.

Adding a kind: subclass :class:`Event` with ``tag="snake_case_kind"``. Existing kinds are a contract
with stored ledgers and the report: add fields with defaults, never rename.
Secrets never go into an event (``AuthorizationKey`` values and passwords are redacted at source).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", omit_defaults=True):
    """Base of every event. ``t`` is monotonic seconds (not since run start)."""

    t: float
    charger: str | None = None
    connector: int | None = None


# --- frames -------------------------------------------------------------------------------------


class FrameOut(Event, frozen=True, tag="frame_out"):
    """A frame we sent. ``action`` is the CALL's action, or for a result the action answered.
    ``fault`` names the protocol fault (chaos catalog) that made or changed the frame, and
    ``injection`` the injection's id; both absent for a frame sent as the protocol says."""

    raw: str
    message_type: int | None = None
    unique_id: str | None = None
    action: str | None = None
    fault: str | None = None
    injection: str | None = None


class FrameUnsent(Event, frozen=True, tag="frame_unsent"):
    """A frame handed to a connection (recorded as ``frame_out``) that the connection ended
    before it was written."""

    unique_id: str
    action: str


CRASH_NOTE = "the charger failed on this frame"
"""The violation a charger's crash records on the frame it failed on (its own failure, not the
sender's)."""


class FrameIn(Event, frozen=True, tag="frame_in"):
    """A frame we received. ``latency`` (s) is set on a result to one of our CALLs; ``violations``
    lists what was wrong with it (framing or schema), empty when it was valid."""

    raw: str
    message_type: int | None = None
    unique_id: str | None = None
    action: str | None = None
    latency: float | None = None
    violations: list[str] = []


class CallTimedOut(Event, frozen=True, tag="call_timeout"):
    """One of our CALLs got no result within the response timeout."""

    unique_id: str
    action: str
    timeout: float


class UnmatchedResult(Event, frozen=True, tag="unmatched_result"):
    """A CALLRESULT/CALLERROR whose id matches no outstanding CALL of ours (recorded, ignored)."""

    unique_id: str
    message_type: int


class MessageDropped(Event, frozen=True, tag="message_dropped"):
    """A message given up on: retries exhausted, or a non-transaction message after a failure."""

    action: str
    attempts: int
    reason: str


# --- charger state ------------------------------------------------------------------------------


class BootResult(Event, frozen=True, tag="boot"):
    status: str
    interval: int


class StatusChanged(Event, frozen=True, tag="status"):
    old: str
    new: str
    error_code: str = "NoError"


class TransactionStarted(Event, frozen=True, tag="tx_started"):
    """A transaction began locally (the CS may not know it yet: see
    :class:`TransactionAcknowledged`)."""

    id_tag: str
    meter_start: int
    local_id: int


class TransactionAcknowledged(Event, frozen=True, tag="tx_acked"):
    """The CS answered StartTransaction: its transaction id and the idTag status."""

    local_id: int
    transaction_id: int
    status: str


class TransactionStopped(Event, frozen=True, tag="tx_stopped"):
    local_id: int
    transaction_id: int | None
    meter_stop: int
    reason: str


class ConfigurationChanged(Event, frozen=True, tag="config_changed"):
    """A configuration key changed (write-only keys are recorded with ``value`` = "***")."""

    key: str
    value: str
    status: str


class Note(Event, frozen=True, tag="note"):
    """A free-form decision worth recording (``what`` is a short slug, ``data`` its details)."""

    what: str
    data: dict[str, Any] = {}


# --- transport and supervision ------------------------------------------------------------------


class Connected(Event, frozen=True, tag="connected"):
    url: str
    subprotocol: str | None = None


class Disconnected(Event, frozen=True, tag="disconnected"):
    code: int | None = None
    reason: str = ""


class ConnectFailed(Event, frozen=True, tag="connect_failed"):
    url: str
    error: str
    attempt: int
    retry_in: float


class Crashed(Event, frozen=True, tag="crash"):
    """An actor crashed; its supervisor restarts it after ``restart_in`` seconds. ``input`` is
    what it was handling (a frame, shortened; a request), ``unique_id`` that frame's message id:
    its ``frame_in`` event is recorded before this one."""

    error: str
    traceback: str
    restart_in: float
    input: str | None = None
    unique_id: str | None = None


class LoopLagged(Event, frozen=True, tag="loop_lag"):
    """A stretch of ``period`` seconds (normally one; as long as the stall when the loop was
    held up longer) in which the simulator's own event loop ran late (``simulator.actors.lag``):
    a probe that asks to wake every ``probe_interval`` s woke ``max`` s late at worst (``mean``
    over ``samples`` wake-ups). Everything the chargers did then was as late, so the latencies
    measured then include the simulator's own delay, not only the CSMS's."""

    max: float
    mean: float
    samples: int
    probe_interval: float
    period: float = 1.0


# --- the embedded central system ----------------------------------------------------------------


class CsmsFrameIn(Event, frozen=True, tag="csms_frame_in"):
    raw: str
    action: str | None = None
    violations: list[str] = []


class CsmsFrameOut(Event, frozen=True, tag="csms_frame_out"):
    raw: str
    action: str | None = None


class CsmsNote(Event, frozen=True, tag="csms_note"):
    what: str
    data: dict[str, Any] = {}


# --- chaos ----------------------------------------------------------------------------------------


STOP_RUN: Final = "stop_run"
"""The ``command`` of a run ended through the control API (no charger)."""


class CommandIssued(Event, frozen=True, tag="command"):
    """A command given through the simulation's facade (a step, the API, a test), recorded
    before the charger gets it: ``command`` is its name (plug, unplug, present_tag, stop,
    reboot, fault, clear_fault), ``params`` its arguments. ``skipped`` says why a scripted
    step's command went nowhere (the charger was not running); absent: the charger got it.
    ``source`` says who gave it when it was not the run's own script or a test (``api``: the
    control API; ``sim replay`` applies those again at the same times). The command
    :data:`STOP_RUN` names no charger: the run's graceful end, asked for through the API."""

    command: str
    params: dict[str, Any] = {}
    skipped: str | None = None
    source: str | None = None


class FaultInjected(Event, frozen=True, tag="fault"):
    """A fault of the chaos catalog handed to ``charger`` (recorded before the charger gets it):
    ``fault`` its name, ``family`` its catalog family, ``injection`` the injection's run-unique id,
    ``params`` its parameters, ``until`` when it ends (monotonic seconds; absent: it acts once),
    ``deliberate`` whether it breaks a spec invariant on purpose (verdicts do not blame the CSMS
    for it), ``seed_path`` the seed derivation that chose it, ``source`` who asked (``chaos``: a
    ``[[chaos]]`` table; ``step``: a ``[[step]]``; ``api``...). ``skipped`` says why the charger
    did not get it (not started by the ramp yet, or finished); absent: it got it."""

    fault: str
    params: dict[str, Any] = {}
    family: str | None = None
    injection: str | None = None
    until: float | None = None
    deliberate: bool = False
    seed_path: list[str | int] = []
    source: str = "chaos"
    skipped: str | None = None


class FaultEnded(Event, frozen=True, tag="fault_ended"):
    """A fault ended before its time by whoever asked (``source``; ``api``: ``DELETE
    /api/chaos/{id}``). Without ``charger``: the whole fault ``injection`` (its id, e.g.
    ``api3``), whose hits still to come are cancelled (``cancelled``: whether any were left).
    With ``charger``: that charger's injection ``injection`` still in force (``until`` not
    reached); ``early`` says whether the charger ended it now (false: this fault cannot be cut
    short, it lasts until its ``until``)."""

    fault: str
    injection: str
    source: str = "chaos"
    early: bool = False
    cancelled: bool = False
