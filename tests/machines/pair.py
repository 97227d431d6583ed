"""A charger machine against a small scripted central system, with no event loop.

In the spirit of h11's ``ConnectionPair``: :class:`MachinePair` owns one
:class:`~simulator.machines.charger.ChargerMachine`, a :class:`FakeCentralSystem` and a virtual
clock. Every input goes to the machine, then the pair drains its effects: each ``Send`` is checked
against the official OCPP 1.6 schemas (:data:`tests.oracle.ORACLE`) and against the protocol rules
the harness can see on its own (one CALL of ours outstanding, nothing sent offline, nothing but
BootNotification before the boot is Accepted or Pending, message ids never reused), then delivered
to the fake CS, whose answer goes straight back to the machine. ``Reboot`` effects are carried out
as the actor does (drop the link, wait, ``power_on``, reconnect). :meth:`MachinePair.advance`
moves the clock from deadline to deadline.

The fake CS answers each action from a script: per action a queue of :class:`Answer` overrides
(a payload, a CALLERROR, ``WITHHOLD`` for a timeout, ``DEFER`` to answer later with
:meth:`FakeCentralSystem.release`), falling back to sensible defaults (boot Accepted, every idTag
Accepted unless listed in ``id_tags``, fresh transaction ids). Any violation raises
``AssertionError`` at once, naming the frame.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import itertools
import json
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from simulator.events import Event, MessageDropped, StatusChanged
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.connector import is_allowed
from simulator.machines.effects import (
    ChargerMemory,
    CloseConnection,
    Effect,
    OutboxEntry,
    PersistOutbox,
    Publish,
    Reboot,
    Send,
    UseCredentials,
    durable_through,
)
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import ChargePointStatus
from tests.oracle import ORACLE

EPOCH: Final = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the charger's wall clock at ``now == 0`` (a midnight, so clock-aligned
instants fall on round numbers)."""

TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})
TRIGGER_ACTIONS: Final = frozenset({"TriggerMessage", "ExtendedTriggerMessage"})
"""The CS's calls whose messages may go out while the boot is Pending."""


def iso(seconds: float) -> str:
    """Unix seconds as the ``...Z`` text the machine writes (whole milliseconds, msgspec's
    format: no fraction when it is zero)."""
    stamp = dt.datetime.fromtimestamp(round(seconds, 3), tz=dt.UTC)
    return str(msgspec.json.encode(stamp).decode().strip('"'))


def parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 timestamp."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Special(enum.Enum):
    """Answers that are not a payload."""

    WITHHOLD = "withhold"  # never answer: the charger times out
    DEFER = "defer"  # answer later, with FakeCentralSystem.release


WITHHOLD: Final = Special.WITHHOLD
DEFER: Final = Special.DEFER


@dataclasses.dataclass(frozen=True)
class CallErrorAnswer:
    """Answer with a CALLERROR."""

    code: str = "InternalError"
    description: str = ""


Answer = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]] | CallErrorAnswer | \
    Special
"""One scripted answer: a payload, a function of the request payload, a CALLERROR, or special."""


@dataclasses.dataclass
class Received:
    """A CALL the CS got from the charger."""

    t: float
    unique_id: str
    action: str
    payload: dict[str, Any]
    connection: int
    answer: str = ""  # "result", "error", "withheld", "deferred", "lost", "" (not yet)


@dataclasses.dataclass
class CsCall:
    """A CALL the CS sent to the charger, and what came back."""

    t: float
    unique_id: str
    action: str
    payload: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    answered_at: float | None = None

    @property
    def status(self) -> str | None:
        """The ``status`` of the CALLRESULT, if any."""
        return None if self.result is None else self.result.get("status")


class FakeCentralSystem:
    """A scripted CS (see the module docstring). ``now`` is read from the pair."""

    def __init__(self, *, clock_offset: float = 0.0, boot_interval: int = 300) -> None:
        self.clock_offset = clock_offset
        """Seconds the CS's clock is ahead of the charger's initial one (``currentTime``)."""
        self.boot_interval = boot_interval
        self.id_tags: dict[str, str] = {}
        """idTag → status for Authorize and StartTransaction; unlisted tags are Accepted."""
        self.script: dict[str, collections.deque[Answer]] = collections.defaultdict(
            collections.deque
        )
        self.received: list[Received] = []
        self.calls: list[CsCall] = []
        self.deferred: list[tuple[Received, Answer]] = []
        self.tx_answers: dict[str, int] = {}
        """Message id of each answered StartTransaction → the transaction id given."""
        self._tx_ids = itertools.count(1001)
        self._cs_ids = itertools.count(1)

    # --- scripting ----------------------------------------------------------------------------

    def answer(self, action: str, *answers: Answer) -> None:
        """Queue overrides for the next ``len(answers)`` CALLs of ``action``."""
        self.script[action].extend(answers)

    def next_call_id(self) -> str:
        """A fresh id for a CALL of the CS (cs-1, cs-2, ...)."""
        return f"cs-{next(self._cs_ids)}"

    def next_transaction_id(self) -> int:
        """A fresh transaction id (1001, 1002, ...)."""
        return next(self._tx_ids)

    def wall(self, now: float) -> str:
        """The CS's ``currentTime`` at ``now``."""
        return iso(EPOCH + self.clock_offset + now)

    def default(self, action: str, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """The answer when nothing is scripted."""
        match action:
            case "BootNotification":
                return {"status": "Accepted", "currentTime": self.wall(now),
                        "interval": self.boot_interval}
            case "Heartbeat":
                return {"currentTime": self.wall(now)}
            case "Authorize":
                return {"idTagInfo": {"status": self.id_tags.get(payload["idTag"], "Accepted")}}
            case "StartTransaction":
                return {"idTagInfo": {"status": self.id_tags.get(payload["idTag"], "Accepted")},
                        "transactionId": self.next_transaction_id()}
            case "DataTransfer" | "SignCertificate":
                return {"status": "Accepted"}
            case _:
                return {}

    # --- inspection ---------------------------------------------------------------------------

    def of(self, *actions: str) -> list[Received]:
        """The received CALLs of these actions (all when none given), in order."""
        return [r for r in self.received if not actions or r.action in actions]

    def actions(self) -> list[str]:
        """The actions received, in order."""
        return [r.action for r in self.received]

    def transaction_id_of(self, received: Received) -> int:
        """The transaction id the CS gave in its answer to a StartTransaction."""
        return int(self.tx_answers[received.unique_id])


class MachinePair:
    """A :class:`ChargerMachine` wired to a :class:`FakeCentralSystem` on a virtual clock.

    Args:
        connectors: number of connectors.
        config: configuration overrides for the spec.
        cs: the CS (a default one when omitted).
        seed: seeds the charger's RNG.
        connect: power on and connect at once (the usual start).
        outbox: transaction messages restored from a previous run.
        memory: what the charger kept through a power loss (the last ``memory`` of another
            pair, as a restarted charger gets it).
        write_ahead: the charger sends a transaction message only once a snapshot holding it
            is stored: :meth:`store` stores every snapshot so far (the pair keeps them
            unstored until then).
        tolerate: for a deliberate breach of the schemas (a behaviour fault that writes what
            they forbid): given a frame and its problems, True lets it through, recorded in
            :attr:`MachinePair.tolerated`; any other problem still fails at once.
        spec_overrides: further :class:`ChargerSpec` fields.
    """

    def __init__(
        self,
        *,
        connectors: int = 1,
        config: Mapping[str, str | int | bool | float] | None = None,
        cs: FakeCentralSystem | None = None,
        seed: int = 7,
        connect: bool = True,
        outbox: Iterable[OutboxEntry] = (),
        memory: ChargerMemory | None = None,
        write_ahead: bool = False,
        tolerate: Callable[[Send, list[str]], bool] | None = None,
        **spec_overrides: Any,
    ) -> None:
        self.spec = ChargerSpec(identity="CP-1", vendor="Acme", model="AC22",
                                connectors=connectors, config=dict(config or {}),
                                **spec_overrides)
        self.cs = cs if cs is not None else FakeCentralSystem()
        self.now = 0.0
        self._ids = itertools.count(1)
        restored = tuple(outbox)
        self.machine = ChargerMachine(
            self.spec, rng=random.Random(seed), new_id=self._new_id, wall_epoch=EPOCH, now=0.0,
            outbox=restored, memory=memory,
            stored_through=durable_through(restored, memory) if write_ahead else None,
        )
        self.memory = memory
        """The charger's memory as of its last outbox snapshot."""
        self.unstored: int | None = None
        """Write-ahead: the ``through`` of the last snapshot not stored yet."""
        self.online = False
        self.connection = 0
        self.auto_reconnect = True
        self.tolerate = tolerate
        self.tolerated: list[tuple[Send, list[str]]] = []
        """Frames let through by ``tolerate``, with their problems."""
        self.sent: list[tuple[float, Send]] = []
        self.events: list[Event] = []
        self.outbox: tuple[OutboxEntry, ...] = tuple(outbox)
        self.reboots: list[float] = []
        self.closes: list[str] = []
        self.credentials_used: list[UseCredentials] = []
        """The ``UseCredentials`` effects, in order (the actor's next connection uses them)."""
        self.power_on_at: float | None = None
        self.registered = False
        """The CS answered the current power-on's boot with Accepted or Pending."""
        self.boot_pending = False
        """The CS's last answer to a boot was Pending: only triggered messages may go out."""
        self._triggering = False
        self._allowance = 0
        self.used_ids: set[str] = set()
        self._outstanding: dict[str, tuple[float, int]] = {}
        self._cs_pending: dict[str, CsCall] = {}
        self._inbox: collections.deque[tuple[Received, list[Any]]] = collections.deque()
        self.tx_uid_seq: dict[str, int] = {}
        """Message id of every transaction message sent → its outbox ``seq``."""
        self.seen_seqs: dict[int, OutboxEntry] = {e.seq: e for e in self.outbox}
        self.delivered: collections.Counter[int] = collections.Counter()
        """Outbox ``seq`` → how many times the CS's result for it reached the charger."""
        self.vanished: list[OutboxEntry] = []
        """Entries that left the outbox without a result reaching the charger (dropped)."""
        if connect:
            self.power_on()
            self.connect()

    def _new_id(self) -> str:
        return f"cp-{next(self._ids)}"

    # --- inputs -------------------------------------------------------------------------------

    def power_on(self) -> None:
        """Power the charger on (or back on after a reboot)."""
        self.registered = False
        self.boot_pending = False
        self.machine.power_on(self.now)
        self.drain()

    def connect(self) -> None:
        """The transport comes up."""
        assert not self.online, "already connected"
        self.online = True
        self.connection += 1
        self.machine.connected(self.now)
        self.drain()

    def disconnect(self) -> None:
        """The transport goes down."""
        if not self.online:
            return
        self.online = False
        self._outstanding.clear()
        self.machine.disconnected(self.now)
        self.drain()

    def plug(self, connector_id: int = 1, ev: EvSpec | None = None) -> None:
        """An EV is plugged in (a 60 kWh car at 20 % by default)."""
        self.machine.plug_in(connector_id, self.now, ev=ev if ev is not None else EvSpec())
        self.drain()

    def unplug(self, connector_id: int = 1) -> None:
        self.machine.unplug(connector_id, self.now)
        self.drain()

    def tag(self, id_tag: str, connector_id: int = 1) -> None:
        self.machine.present_tag(connector_id, id_tag, self.now)
        self.drain()

    def stop_local(self, connector_id: int = 1, **kwargs: Any) -> None:
        self.machine.stop_local(connector_id, self.now, **kwargs)
        self.drain()

    def cs_call(self, action: str, payload: Mapping[str, Any] | None = None) -> CsCall:
        """The CS sends a CALL; returns the record, with the charger's answer if it gave one."""
        unique_id = self.cs.next_call_id()
        record = CsCall(self.now, unique_id, action, dict(payload or {}))
        self.cs.calls.append(record)
        self._cs_pending[unique_id] = record
        self._triggering = action in TRIGGER_ACTIONS
        try:
            self.receive(json.dumps([2, unique_id, action, record.payload]))
        finally:
            self._triggering = False
        if action in TRIGGER_ACTIONS:
            self._allowance = max(self._allowance, len(self.machine.statistics().queued_calls))
        return record

    def receive(self, text: str) -> None:
        """A raw frame from the CS (for malformed-input tests)."""
        assert self.online, "the CS cannot send while the link is down"
        self.machine.receive(text, self.now)
        self.drain()

    def store(self) -> None:
        """Write-ahead: the snapshots so far are stored (durable)."""
        if self.unstored is not None:
            through, self.unstored = self.unstored, None
            self.machine.outbox_stored(through, self.now)
            self.drain()

    # --- time ---------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, ticking the machine at every deadline on the way."""
        self.run_until(self.now + seconds)

    def run_until(self, target: float) -> None:
        """Move the clock to ``target``, ticking at every deadline (and reboot) before it."""
        for _ in range(100_000):
            candidates = [d for d in (self.machine.next_deadline(), self.power_on_at)
                          if d is not None and d <= target]
            if not candidates:
                break
            self._step(max(self.now, min(candidates)))
        else:
            raise AssertionError(f"deadlines do not advance (stuck at t={self.now})")
        self._step(target)

    def _step(self, when: float) -> None:
        self.now = when
        if self.power_on_at is not None and when >= self.power_on_at:
            self.power_on_at = None
            self.power_on()
            if self.auto_reconnect and not self.online:
                self.connect()
        self.machine.tick(when)
        self.drain()

    # --- effects ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Apply the machine's effects in order, then hand the CS's answers to the machine one
        at a time (each followed by its own effects), until both are exhausted."""
        for _ in range(10_000):
            effects = self.machine.take_effects()
            if effects:
                for effect in effects:
                    self._apply(effect)
                continue
            if not self._inbox:
                return
            self._deliver(*self._inbox.popleft())
        raise AssertionError("the machine and the CS keep talking without end")

    def _apply(self, effect: Effect) -> None:
        match effect:
            case Send():
                self._on_send(effect)
            case Publish(event=event):
                self._on_event(event)
            case PersistOutbox(entries=entries, memory=memory, through=through):
                assert memory is not None  # the machine's one snapshot per step carries it
                self.memory = memory
                self.unstored = through
                kept = {entry.seq for entry in entries}
                for entry in self.outbox:
                    if entry.seq not in kept and not self.delivered[entry.seq]:
                        self.vanished.append(entry)
                self.outbox = entries
                for entry in entries:
                    self.seen_seqs.setdefault(entry.seq, entry)
                    if entry.unique_id is not None:
                        self.tx_uid_seq[entry.unique_id] = entry.seq
            case CloseConnection(reason=reason):
                self.closes.append(reason)
                self.disconnect()
            case UseCredentials():
                self.credentials_used.append(effect)
            case Reboot(delay=delay):
                self.reboots.append(self.now)
                self.power_on_at = self.now + delay
                self.disconnect()

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, StatusChanged):
            old, new = ChargePointStatus(event.old), ChargePointStatus(event.new)
            assert event.connector is not None
            assert is_allowed(event.connector, old, new), f"illegal status change {event}"

    def _on_send(self, send: Send) -> None:
        assert self.online, f"frame sent while offline: {send.data!r}"
        pending = {uid: call.action for uid, call in self._cs_pending.items()}
        problems = ORACLE.check_frame_out(send.data, pending)
        if problems and self.tolerate is not None and self.tolerate(send, problems):
            self.tolerated.append((send, problems))
            problems = []
        assert not problems, f"schema violation in {send.data!r}: {problems}"
        self.sent.append((self.now, send))
        frame = json.loads(send.data)
        if frame[0] == 2:
            self._on_call(frame[1], frame[2], frame[3])
        else:
            record = self._cs_pending.pop(frame[1])
            record.answered_at = self.now
            if frame[0] == 3:
                record.result = frame[2]
            else:
                record.error = frame[2]

    def _on_call(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        assert unique_id not in self.used_ids, f"message id {unique_id} reused"
        self.used_ids.add(unique_id)
        live = self.outstanding()
        assert not live, f"{action} sent while CALL {live} is outstanding"
        if not self.registered:
            assert action == "BootNotification", f"{action} sent before the boot was answered"
        if self.boot_pending and not self._triggering:
            if self._allowance > 0:
                # waited in the session's queue behind another CALL: triggered, or queued
                # while Accepted before a triggered boot was answered Pending
                self._allowance -= 1
            else:
                assert action == "BootNotification", f"{action} sent untriggered while Pending"
        self._outstanding[unique_id] = (self.now, self.connection)
        received = Received(self.now, unique_id, action, payload, self.connection)
        self.cs.received.append(received)
        script = self.cs.script.get(action)
        answer: Answer = script.popleft() if script else self.cs.default(action, payload,
                                                                          self.now)
        if answer is DEFER:
            received.answer = "deferred"
            self.cs.deferred.append((received, self.cs.default(action, payload, self.now)))
            return
        self._answer(received, answer)

    def _answer(self, received: Received, answer: Answer) -> None:
        """The CS answers ``received``: the frame joins the inbox, delivered by :meth:`drain`
        once the effects applied so far are through (as the actor would)."""
        if answer is WITHHOLD:
            received.answer = "withheld"
            return
        assert not isinstance(answer, Special)
        uid = received.unique_id
        if isinstance(answer, CallErrorAnswer):
            received.answer = "error"
            frame: list[Any] = [4, uid, answer.code, answer.description, {}]
        else:
            payload = dict(answer(received.payload) if callable(answer) else answer)
            received.answer = "result"
            if received.action == "StartTransaction":
                self.cs.tx_answers[uid] = int(payload["transactionId"])
            frame = [3, uid, payload]
        self._inbox.append((received, frame))

    def _deliver(self, received: Received, frame: list[Any]) -> None:
        uid = received.unique_id
        if not (self.online and received.connection == self.connection
                and self.machine.statistics().powered):
            received.answer = "lost"  # the link (or the charger) went down before it arrived
            return
        self._outstanding.pop(uid, None)
        if frame[0] == 3:
            if received.action == "BootNotification":
                status = frame[2].get("status")
                self.registered = self.registered or status in ("Accepted", "Pending")
                self.boot_pending = status == "Pending"
                self._allowance = len(self.machine.statistics().queued_calls)
            seq = self.tx_uid_seq.get(uid)
            pending = self.machine.statistics().pending_call
            if seq is not None and pending == uid:
                self.delivered[seq] += 1  # (a result after the timeout is not a delivery)
        self.machine.receive(json.dumps(frame), self.now)

    def release(self, action: str | None = None, answer: Answer | None = None) -> int:
        """Send the deferred answers (of ``action``, or all), in order; returns how many.
        ``answer`` replaces the default answer computed when the CALL came in."""
        kept: list[tuple[Received, Answer]] = []
        released = 0
        for received, default in self.cs.deferred:
            if action is None or received.action == action:
                released += 1
                self._outstanding.pop(received.unique_id, None)
                self._answer(received, default if answer is None else answer)
            else:
                kept.append((received, default))
        self.cs.deferred = kept
        self.drain()
        return released

    # --- views --------------------------------------------------------------------------------

    def outstanding(self) -> list[str]:
        """Ids of the charger's CALLs on the current link that are neither answered nor past
        the charger's response timeout."""
        timeout = self.spec.call_timeout
        return [uid for uid, (t, conn) in self._outstanding.items()
                if conn == self.connection and t + timeout > self.now]

    def events_of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def statuses(self, connector_id: int = 1) -> list[str]:
        """Every status the connector moved to, in order (from StatusChanged events)."""
        return [e.new for e in self.events_of(StatusChanged) if e.connector == connector_id]

    def status(self, connector_id: int = 1) -> ChargePointStatus:
        return self.machine.connectors()[connector_id].status

    def notified(self, connector_id: int | None = None) -> list[str]:
        """Statuses the CS got in StatusNotification (for one connector, or all)."""
        return [r.payload["status"] for r in self.cs.of("StatusNotification")
                if connector_id is None or r.payload["connectorId"] == connector_id]

    def dropped(self) -> list[MessageDropped]:
        return self.events_of(MessageDropped)
