"""One charger machine at the mercy of a hostile central system, every frame it sends checked.

:class:`FuzzBench` drives a :class:`~simulator.machines.charger.ChargerMachine` directly (no event
loop) on a virtual clock, as the actor would: inputs with ``now``, ``tick`` at every deadline,
``Reboot`` and ``CloseConnection`` effects carried out. The hostile CS's frames go in through
:meth:`FuzzBench.receive`; after each input it asserts:

- nothing raised, and nothing was sent while the link was down;
- every frame sent is valid OCPP-J, its payload valid for the official 1.6 schema (a CALLRESULT
  against the response schema of the CALL it answers);
- a CALL the charger can read gets exactly one answer, of the kind :class:`~tests.fuzz.hostile.
  Expect` names, and nothing else is answered; a charger whose boot was Rejected stays silent;
- the charger's own CALLs: at most one per input, never two outstanding, ids never reused;
- every event it publishes can be written to the ledger (JSON, a connector id SQLite can hold);
- its next deadline is a finite instant that moves on once reached (no busy loop).

:func:`build` puts a fresh bench in one of the :data:`STATES`.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from simulator.events import Event
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.effects import CloseConnection, Effect, Publish, Reboot, Send
from simulator.machines.meter import EvSpec
from simulator.machines.parts import BootState
from tests.fuzz.hostile import NO_ANSWER, Hostile, HostileFrames, encode, proper
from tests.oracle import ERROR_CODES_16, MAX_ID_LENGTH, ORACLE, Kind

EPOCH: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z
INT64: Final = 2**63
STATES: Final = ("booting", "pending", "rejected", "idle", "charging", "offline_queue")
"""The states a bench starts in: boot unanswered; boot Pending; boot Rejected; Accepted and
idle; a transaction running on connector 1; a transaction whose messages queued while the link
was down, the link just back."""

CONFIG: Final[dict[str, str | int | bool | float]] = {
    "MeterValueSampleInterval": 30,
    "ClockAlignedDataInterval": 300,
    "HeartbeatInterval": 60,
    "TransactionMessageRetryInterval": 5,
    "StopTxnSampledData": "Energy.Active.Import.Register",
}


class FuzzBench:
    """A two-connector charger and the checks above. ``frames`` counts the frames fed to it,
    ``kinds`` tallies them by kind."""

    def __init__(self, seed: int, config: Mapping[str, str | int | bool | float] = CONFIG,
                 profiles: tuple[str, ...] | None = None) -> None:
        spec = ChargerSpec(identity="FZ-1", vendor="Acme", model="AC22", connectors=2,
                           config=dict(config), data_transfer_vendors=("v",), profiles=profiles)
        ids = itertools.count(1)
        self.machine = ChargerMachine(spec, rng=random.Random(seed),
                                      new_id=lambda: f"cp-{next(ids)}", wall_epoch=EPOCH,
                                      now=0.0)
        self.now = 0.0
        self.online = False
        self.power_on_at: float | None = None
        self.frames = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.used_ids: set[str] = set()
        self.calls: dict[str, tuple[str, dict[str, Any]]] = {}
        """The charger's CALLs, by id: (action, payload)."""
        self._transaction_ids = itertools.count(1001)
        self._checked: dict[tuple[int, str, str], list[str]] = {}

    # --- inputs ---------------------------------------------------------------------------------

    def power_on(self) -> None:
        self._input(lambda: self.machine.power_on(self.now))

    def connect(self) -> None:
        if not self.online:
            self.online = True
            self._input(lambda: self.machine.connected(self.now))

    def disconnect(self) -> None:
        if self.online:
            self.online = False
            self._input(lambda: self.machine.disconnected(self.now))

    def plug(self, connector_id: int) -> None:
        self._input(lambda: self.machine.plug_in(connector_id, self.now, ev=EvSpec()))

    def unplug(self, connector_id: int) -> None:
        self._input(lambda: self.machine.unplug(connector_id, self.now))

    def tag(self, connector_id: int, id_tag: str) -> None:
        self._input(lambda: self.machine.present_tag(connector_id, id_tag, self.now))

    def stop_local(self, connector_id: int) -> None:
        self._input(lambda: self.machine.stop_local(connector_id, self.now))

    def receive(self, frame: Hostile) -> None:
        """Feed one hostile frame and check the charger's answer (see the module docstring)."""
        stats = self.machine.statistics()
        online = self.online and stats.powered
        rejected = stats.boot == BootState.REJECTED
        self.frames += 1
        self.kinds[frame.kind] += 1
        sends = self._input(lambda: self.machine.receive(frame.data, self.now), frame)
        answers = [s for s in sends if s.message_type != 2]
        where = f"{frame.kind} {frame.data[:200]!r} at t={self.now} ({stats.boot})"
        assert all(s.unique_id == frame.unique_id for s in answers), \
            f"{where}: answered something else: {answers}"
        expect = frame.expect
        if not online or expect.answer == "none" or rejected:
            assert answers == [], f"{where}: must not be answered, got {answers}"
            return
        assert len(answers) == 1, f"{where}: {len(answers)} answers: {answers}"
        (answer,) = answers
        if expect.answer == "result":
            assert answer.message_type == 3, f"{where}: expected a CALLRESULT, got {answer}"
        else:
            assert answer.message_type == 4, f"{where}: expected a CALLERROR, got {answer}"
            code = json.loads(answer.data)[2]
            assert expect.code is None or code == expect.code, \
                f"{where}: expected {expect.code}, got {answer}"

    def outstanding(self) -> tuple[str, str, dict[str, Any]] | None:
        """The charger's CALL waiting for an answer: (id, action, payload), or None."""
        uid = self.machine.statistics().pending_call
        if uid is None:
            return None
        action, payload = self.calls[uid]
        return uid, action, payload

    def answer(self, hostile: HostileFrames, *, friendly: bool = False) -> bool:
        """Answer the charger's outstanding CALL (as ``hostile`` does, unless ``friendly``);
        False if there is none, or no answer."""
        pending = self.outstanding()
        if pending is None or not self.online:
            return False
        uid, action, request = pending
        wall = dt.datetime.fromtimestamp(EPOCH + self.now, tz=dt.UTC).isoformat()
        tx_id = next(self._transaction_ids)
        if friendly:
            kind, data = "answer", encode([3, uid, proper(action, request, wall, tx_id)])
        else:
            answer = hostile.answer(uid, action, request, wall, tx_id)
            if answer is None:
                return False
            kind, data = answer
        self.receive(Hostile(kind, data, None, None, NO_ANSWER))
        return True

    def settle(self, hostile: HostileFrames, *, rounds: int = 50) -> None:
        """Answer the charger's CALLs in a friendly way until it waits for nothing."""
        for _ in range(rounds):
            if not self.answer(hostile, friendly=True):
                return
        raise AssertionError("the charger keeps calling")

    # --- time -----------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, ticking at every deadline (and carrying out reboots)."""
        target = self.now + seconds
        for _ in range(10_000):
            deadline = self.machine.next_deadline()
            candidates = [d for d in (deadline, self.power_on_at) if d is not None and d <= target]
            if not candidates:
                break
            when = max(self.now, min(candidates))
            self.now = when
            if self.power_on_at is not None and when >= self.power_on_at:
                self.power_on_at = None
                self.power_on()
                self.connect()
                continue
            self._input(lambda: self.machine.tick(self.now))
            after = self.machine.next_deadline()
            assert after is None or after > when, \
                f"the deadline {after} does not move on after a tick at t={when}"
        else:
            raise AssertionError(f"deadlines do not advance (stuck at t={self.now})")
        self.now = target
        self._input(lambda: self.machine.tick(target))

    # --- effects --------------------------------------------------------------------------------

    def _input(self, step: Callable[[], None], frame: Hostile | None = None) -> list[Send]:
        step()
        sends: list[Send] = []
        for effect in self.machine.take_effects():
            self._apply(effect, sends, frame)
        calls = sum(send.message_type == 2 for send in sends)
        assert calls <= 1, f"{calls} CALLs of the charger's own after one input: {sends}"
        deadline = self.machine.next_deadline()
        assert deadline is None or math.isfinite(deadline), f"deadline {deadline}"
        return sends

    def _apply(self, effect: Effect, sends: list[Send], frame: Hostile | None) -> None:
        match effect:
            case Send():
                assert self.online, f"sent while the link is down: {effect.data[:200]!r}"
                self._check(effect, frame)
                sends.append(effect)
            case Publish(event=event):
                _check_event(event)
            case CloseConnection():
                self.disconnect()
            case Reboot(delay=delay):
                assert math.isfinite(delay) and delay >= 0, f"reboot delay {delay}"
                self.power_on_at = self.now + delay
                self.disconnect()

    def _check(self, send: Send, frame: Hostile | None) -> None:
        data = json.loads(send.data)
        assert isinstance(data, list) and data and data[0] in (2, 3, 4), send.data[:200]
        if data[0] == 2:
            uid, action = data[1], data[2]
            assert uid not in self.used_ids, f"message id {uid} reused"
            assert self.machine.statistics().pending_call == uid, \
                f"{action} {uid} sent while another CALL is outstanding"
            self.used_ids.add(uid)
            self.calls[uid] = (action, data[3])
            problems = self._validate(2, action, data[3])
            assert not problems, f"{send.data[:300]!r}: {problems}"
            return
        assert frame is not None and data[1] == frame.unique_id, f"unasked answer {send.data!r}"
        assert len(data[1]) <= MAX_ID_LENGTH or data[0] == 4, "a long id is answered CALLERROR"
        if data[0] == 3:
            assert frame.action is not None
            problems = self._validate(3, frame.action, data[2])
        else:
            problems = ORACLE.check_frame_out(json.dumps([4, "id", *data[2:]]), {})
            assert data[2] in ERROR_CODES_16
        assert not problems, f"{send.data[:300]!r}: {problems}"

    def _validate(self, message_type: int, action: str, payload: Any) -> list[str]:
        key = (message_type, action, json.dumps(payload, sort_keys=True))
        found = self._checked.get(key)
        if found is None:
            kind: Kind = "request" if message_type == 2 else "response"
            found = self._checked[key] = ORACLE.errors(action, kind, payload)
        return found


def _check_event(event: Event) -> None:
    """The event can be written to the ledger: JSON-encodable, its connector an SQLite integer."""
    msgspec.json.encode(event)
    assert event.connector is None or -INT64 <= event.connector < INT64, \
        f"connector id {event.connector} cannot be stored: {event!r:.300}"


def build(state: str, seed: int, hostile: HostileFrames,
          config: Mapping[str, str | int | bool | float] = CONFIG) -> FuzzBench:
    """A fresh bench in ``state`` (one of :data:`STATES`) with ``config`` (:data:`CONFIG` and
    overrides) and the profiles ``hostile`` expects, its CS friendly so far."""
    bench = FuzzBench(seed, config, profiles=tuple(sorted(hostile.profiles)))
    bench.power_on()
    bench.connect()
    if state == "booting":
        return bench
    pending = bench.outstanding()
    assert pending is not None and pending[1] == "BootNotification"
    if state in ("pending", "rejected"):
        status = "Pending" if state == "pending" else "Rejected"
        bench.receive(Hostile("boot", json.dumps([3, pending[0], {
            "status": status, "currentTime": "2026-01-01T00:00:00Z", "interval": 600}]),
            None, None, NO_ANSWER))
        return bench
    bench.settle(hostile)
    if state == "idle":
        return bench
    bench.plug(1)
    bench.tag(1, "TAG-1")
    bench.settle(hostile)
    assert bench.machine.statistics().in_transaction == 1
    if state == "charging":
        return bench
    bench.disconnect()
    bench.advance(200)
    bench.stop_local(1)
    bench.connect()
    assert bench.machine.statistics().outbox > 5
    return bench
