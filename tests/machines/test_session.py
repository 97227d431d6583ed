"""The session RPC machine: one outstanding CALL, the transaction outbox and its retries, CALLERRORs
for bad frames from the central system, unmatched results, and the outbox export.

Every frame the session emits is validated against the official 1.6 schemas (``tests.oracle``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from typing import Any

import msgspec
import pytest

from simulator.events import CallTimedOut, Event, FrameIn, MessageDropped, UnmatchedResult
from simulator.machines.effects import OutboxEntry, PersistOutbox, Publish, Send
from simulator.machines.session import (
    CallAnswered,
    CallFailed,
    IncomingCall,
    Outcome,
    Session,
)
from simulator.ocpp.frames import BINARY_FRAME, BINARY_PREVIEW
from simulator.ocpp.v16 import (
    PLUGIN,
    AuthorizeRequest,
    ChangeConfigurationResponse,
    ChargePointErrorCode,
    ChargePointStatus,
    ConfigurationStatus,
    DataTransferResponse,
    DataTransferStatus,
    GetConfigurationResponse,
    HeartbeatRequest,
    MeterValue,
    MeterValuesRequest,
    Profile,
    ResetResponse,
    ResetStatus,
    SampledValue,
    StartTransactionRequest,
    StatusNotificationRequest,
    StopTransactionRequest,
)
from tests.oracle import ORACLE

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
T0_WIRE = "2026-03-01T12:00:00Z"
TIMEOUT = 30.0
# Reservation and Security are left out on purpose: their CS→CP actions must be NotSupported.
PROFILES = (
    Profile.CORE,
    Profile.FIRMWARE_MANAGEMENT,
    Profile.LOCAL_AUTH_LIST_MANAGEMENT,
    Profile.SMART_CHARGING,
    Profile.REMOTE_TRIGGER,
)
HEARTBEAT_RESULT = {"currentTime": T0_WIRE}


def counter(prefix: str = "") -> Any:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


class Wire:
    """Drives one session and checks everything it emits.

    Each ``Send`` must pass the schema oracle (a CALLRESULT is checked against the response
    schema of the CS CALL it answers); each ``PersistOutbox`` must equal the session's queue.
    """

    def __init__(self, session: Session | None = None, **kwargs: Any) -> None:
        if session is None:
            kwargs.setdefault("new_id", counter())
            kwargs.setdefault("supported_profiles", PROFILES)
            kwargs.setdefault("call_timeout", TIMEOUT)
            session = Session("CP-1", **kwargs)
        self.s = session
        self.cs_calls: dict[str, str] = {}  # id -> action of the CALLs the CS sent us
        self.sent: list[Send] = []
        self.events: list[Event] = []
        self.outcomes: list[Outcome] = []
        self.persisted: list[tuple[OutboxEntry, ...]] = []

    def take(self) -> list[Send]:
        """Drain effects and outcomes; return the new Sends (all schema-checked)."""
        sends = []
        for effect in self.s.take_effects():
            match effect:
                case Send():
                    assert effect.data == effect.data.strip()
                    problems = ORACLE.check_frame_out(effect.data, self.cs_calls)
                    assert problems == [], (problems, effect.data)
                    frame = json.loads(effect.data)
                    assert frame[0] == effect.message_type and frame[1] == effect.unique_id
                    sends.append(effect)
                case Publish():
                    self.events.append(effect.event)
                case PersistOutbox():
                    assert effect.charger == "CP-1"
                    self.persisted.append(effect.entries)
        if self.persisted:
            assert self.persisted[-1] == self.s.export_outbox()
        self.sent += sends
        self.outcomes += self.s.take_outcomes()
        return sends

    def outcomes_now(self) -> list[Outcome]:
        self.take()
        outcomes, self.outcomes = self.outcomes, []
        return outcomes

    def events_of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    # --- the CS side ---------------------------------------------------------------------------

    def cs_call(self, unique_id: str, action: str, payload: dict[str, Any], now: float) -> None:
        self.cs_calls[unique_id] = action
        self.s.receive(json.dumps([2, unique_id, action, payload]), now)

    def result(self, unique_id: str, payload: dict[str, Any], now: float) -> None:
        self.s.receive(json.dumps([3, unique_id, payload]), now)

    def error(self, unique_id: str, now: float, code: str = "InternalError") -> None:
        self.s.receive(json.dumps([4, unique_id, code, "boom", {}]), now)


def frame_of(send: Send) -> list[Any]:
    return json.loads(send.data)  # type: ignore[no-any-return]


def payload_of(send: Send) -> dict[str, Any]:
    frame = frame_of(send)
    assert frame[0] == 2
    return frame[3]  # type: ignore[no-any-return]


def online(**kwargs: Any) -> Wire:
    wire = Wire(**kwargs)
    wire.s.transactions_enabled = True
    wire.s.connected(0.0)
    wire.take()
    return wire


def start(connector: int = 1, meter: int = 1000, when: dt.datetime = T0) -> StartTransactionRequest:
    return StartTransactionRequest(
        connector_id=connector, id_tag="TAG-1", meter_start=meter, timestamp=when
    )


def stop(meter: int = 2000, when: dt.datetime = T0, tx: int = -1) -> StopTransactionRequest:
    return StopTransactionRequest(meter_stop=meter, timestamp=when, transaction_id=tx)


def meter_values(connector: int = 1, wh: int = 1500, tx: int | None = -1) -> MeterValuesRequest:
    value = MeterValue(timestamp=T0 + dt.timedelta(minutes=1),
                       sampled_value=(SampledValue(value=str(wh)),))
    return MeterValuesRequest(connector_id=connector, meter_value=(value,), transaction_id=tx)


def start_result(tx: int, status: str = "Accepted") -> dict[str, Any]:
    return {"idTagInfo": {"status": status}, "transactionId": tx}


# --- one outstanding CALL -------------------------------------------------------------------------


def test_one_outstanding_call_at_a_time() -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 1.0)
    w.s.call(AuthorizeRequest(id_tag="TAG-1"), 1.0, context="connector 1")
    w.s.call(HeartbeatRequest(), 1.0)
    [first] = w.take()
    assert (first.action, first.unique_id) == ("Heartbeat", "1")
    assert w.s.pending is not None and w.s.pending.unique_id == "1"
    assert w.s.queued_actions() == ["Authorize", "Heartbeat"]
    assert w.s.next_deadline() == 1.0 + TIMEOUT
    assert not w.s.idle

    w.result("1", HEARTBEAT_RESULT, 2.0)
    [answered] = w.outcomes_now()
    assert isinstance(answered, CallAnswered)
    assert answered.call.action == "Heartbeat"
    [second] = w.sent[-1:]
    assert (second.action, second.unique_id) == ("Authorize", "2")
    assert payload_of(second) == {"idTag": "TAG-1"}

    w.result("2", {"idTagInfo": {"status": "Accepted"}}, 3.0)
    [answered] = w.outcomes_now()
    assert isinstance(answered, CallAnswered) and answered.call.context == "connector 1"
    assert answered.response.id_tag_info.status == "Accepted"
    w.result("3", HEARTBEAT_RESULT, 4.0)
    w.take()
    assert [s.unique_id for s in w.sent] == ["1", "2", "3"]
    assert w.s.idle and w.s.pending is None and w.s.next_deadline() is None


def test_incoming_calls_are_served_while_our_call_waits() -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 0.0)
    w.take()
    w.cs_call("cs-1", "GetConfiguration", {"key": ["HeartbeatInterval"]}, 1.0)
    w.cs_call("cs-2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, 1.0)
    w.cs_call("cs-3", "DataTransfer", {"vendorId": "acme"}, 1.0)
    w.cs_call("cs-4", "Reset", {"type": "Soft"}, 1.0)
    incoming = w.outcomes_now()
    assert [type(o) for o in incoming] == [IncomingCall] * 4
    assert [(o.unique_id, o.action) for o in incoming] == [  # type: ignore[union-attr]
        ("cs-1", "GetConfiguration"), ("cs-2", "ChangeConfiguration"),
        ("cs-3", "DataTransfer"), ("cs-4", "Reset"),
    ]
    assert w.s.pending is not None and w.s.pending.unique_id == "1"
    answers = [
        GetConfigurationResponse(configuration_key=(), unknown_key=("HeartbeatInterval",)),
        ChangeConfigurationResponse(status=ConfigurationStatus.ACCEPTED),
        DataTransferResponse(status=DataTransferStatus.UNKNOWN_VENDOR_ID),
        ResetResponse(status=ResetStatus.ACCEPTED),
    ]
    for call, answer in zip(incoming, answers, strict=True):
        assert isinstance(call, IncomingCall)
        w.s.reply(call, answer, 2.0)
    replies = w.take()
    assert [(frame_of(r)[0], r.unique_id) for r in replies] == [
        (3, "cs-1"), (3, "cs-2"), (3, "cs-3"), (3, "cs-4")
    ]
    assert w.s.last_sent == 2.0
    # Our own CALL is still the one outstanding, and its answer still matches.
    w.result("1", HEARTBEAT_RESULT, 3.0)
    [answered] = w.outcomes_now()
    assert isinstance(answered, CallAnswered) and answered.call.unique_id == "1"


def test_message_ids_come_from_the_injected_generator() -> None:
    ids = iter(["alpha", "bravo", "charlie", "delta", "echo"])
    w = online(new_id=lambda: next(ids))
    w.s.call(HeartbeatRequest(), 0.0)
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.take()
    w.result("alpha", HEARTBEAT_RESULT, 1.0)
    w.take()
    w.error("bravo", 2.0)  # the StartTransaction fails: its retry gets a fresh id
    w.s.tick(2.0 + 60)
    w.take()
    assert [s.unique_id for s in w.sent] == ["alpha", "bravo", "charlie"]
    assert w.s.export_outbox()[0].unique_id == "charlie"


def test_call_while_offline_fails_at_once() -> None:
    w = Wire()
    w.s.call(HeartbeatRequest(), 5.0, context="ctx")
    [failed] = w.outcomes_now()
    assert isinstance(failed, CallFailed) and failed.final and failed.call.context == "ctx"
    assert w.sent == []
    [dropped] = w.events_of(MessageDropped)
    assert dropped.action == "Heartbeat"


def test_reply_offline_is_not_sent() -> None:
    w = online()
    w.cs_call("cs-1", "Reset", {"type": "Hard"}, 0.0)
    [call] = w.outcomes_now()
    assert isinstance(call, IncomingCall)
    w.s.disconnected(1.0)
    w.s.reply(call, ResetResponse(status=ResetStatus.ACCEPTED), 1.0)
    assert w.take() == []


# --- ordinary messages ----------------------------------------------------------------------------


def _fail(w: Wire, how: str, unique_id: str, sent_at: float) -> float:
    """Make the CALL ``unique_id`` fail ``how``; return the time it failed."""
    match how:
        case "callerror":
            w.error(unique_id, sent_at + 1)
            return sent_at + 1
        case "callerror-2.x":
            w.error(unique_id, sent_at + 1, code="RpcFrameworkError")
            return sent_at + 1
        case "timeout":
            w.s.tick(sent_at + TIMEOUT - 0.001)
            assert w.take() == [] and w.s.pending is not None
            w.s.tick(sent_at + TIMEOUT)
            return sent_at + TIMEOUT
        case "invalid-result":
            w.result(unique_id, {"unexpected": True}, sent_at + 1)
            return sent_at + 1
    raise AssertionError(how)


FAILURES = ["callerror", "callerror-2.x", "timeout", "invalid-result"]


@pytest.mark.parametrize("how", [*FAILURES, "disconnect"])
def test_ordinary_message_is_dropped_after_one_failure(how: str) -> None:
    w = online()
    status = StatusNotificationRequest(
        connector_id=1, error_code=ChargePointErrorCode.NO_ERROR, status=ChargePointStatus.AVAILABLE
    )
    w.s.call(status, 0.0)
    w.s.call(HeartbeatRequest(), 0.0)
    [sent] = w.take()
    if how == "disconnect":
        w.s.disconnected(3.0)
        w.s.connected(4.0)
    else:
        _fail(w, how, sent.unique_id, 0.0)
    outcomes = w.outcomes_now()
    failed = [o for o in outcomes if isinstance(o, CallFailed)]
    assert failed[0].call.action == "StatusNotification" and failed[0].final
    assert w.events_of(MessageDropped)[0].action == "StatusNotification"
    if how == "timeout":
        [timed_out] = w.events_of(CallTimedOut)
        assert (timed_out.unique_id, timed_out.timeout) == (sent.unique_id, TIMEOUT)
    # Never resent, however long we wait.
    w.s.tick(10_000.0)
    w.take()
    assert [s.action for s in w.sent].count("StatusNotification") == 1
    if how == "disconnect":
        # The queued Heartbeat went down with the connection too.
        assert [o.call.action for o in failed] == ["StatusNotification", "Heartbeat"]
        assert w.s.idle
    else:
        # The next ordinary message goes out after the failure.
        assert w.sent[-1].action == "Heartbeat"


# --- the transaction outbox -----------------------------------------------------------------------


def test_outbox_is_fifo_and_transaction_id_is_filled_in() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.s.enqueue_transaction(meter_values(), 0.0, local_tx=1)
    w.s.enqueue_transaction(stop(), 0.0, local_tx=1)
    [first] = w.take()
    assert first.action == "StartTransaction"
    assert payload_of(first) == {
        "connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": T0_WIRE
    }
    stored = [json.loads(e.payload) for e in w.s.export_outbox()[1:]]
    assert all("transactionId" not in p for p in stored), "placeholders are never stored"

    w.result(first.unique_id, start_result(42), 1.0)
    [answered] = w.outcomes_now()
    assert isinstance(answered, CallAnswered) and answered.call.entry is not None
    assert w.s.transaction_id(1) == 42
    assert all(e.transaction_id == 42 for e in w.s.export_outbox())
    [mv] = w.sent[-1:]
    assert mv.action == "MeterValues" and payload_of(mv)["transactionId"] == 42
    w.result(mv.unique_id, {}, 2.0)
    w.take()
    [st] = w.sent[-1:]
    assert st.action == "StopTransaction"
    assert payload_of(st) == {"meterStop": 2000, "timestamp": T0_WIRE, "transactionId": 42}
    w.result(st.unique_id, {}, 3.0)
    w.take()
    assert w.s.export_outbox() == () and w.s.idle
    assert w.s.transaction_id(1) is None  # forgotten once the transaction is closed


def test_a_message_after_the_start_was_answered_carries_the_id() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=5)
    w.result(w.take()[0].unique_id, start_result(77), 1.0)
    entry = w.s.enqueue_transaction(stop(tx=0), 2.0, local_tx=5)
    assert entry.transaction_id == 77
    [st] = w.take()
    assert payload_of(st)["transactionId"] == 77


def test_a_transaction_message_in_flight_is_the_one_outstanding_call() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    [first] = w.take()
    w.s.call(HeartbeatRequest(), 1.0)
    w.s.enqueue_transaction(stop(), 1.0, local_tx=1)
    assert w.take() == []
    assert w.s.queued_actions() == ["Heartbeat"]
    w.result(first.unique_id, start_result(5), 2.0)
    [heartbeat] = w.take()
    assert heartbeat.action == "Heartbeat"
    w.result(heartbeat.unique_id, HEARTBEAT_RESULT, 3.0)
    [st] = w.take()
    assert st.action == "StopTransaction" and payload_of(st)["transactionId"] == 5


def test_outbox_waits_for_its_gates_and_ordinary_messages_go_first() -> None:
    w = Wire()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.s.connected(1.0)
    assert w.take() == []  # boot not Accepted yet: the outbox stays shut
    w.s.call(HeartbeatRequest(), 1.0)
    w.s.transactions_enabled = True
    w.s.call(AuthorizeRequest(id_tag="X"), 1.0)
    w.s.pump(1.0)
    w.take()
    assert [s.action for s in w.sent] == ["Heartbeat"]
    w.result("1", HEARTBEAT_RESULT, 2.0)
    w.take()
    assert [s.action for s in w.sent] == ["Heartbeat", "Authorize"]  # ordinary skips ahead
    w.result("2", {"idTagInfo": {"status": "Accepted"}}, 3.0)
    w.take()
    assert [s.action for s in w.sent] == ["Heartbeat", "Authorize", "StartTransaction"]


def test_disconnect_is_not_a_failure_and_keeps_the_original_payload() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    [first] = w.take()
    w.s.disconnected(1.0)
    w.s.enqueue_transaction(meter_values(), 1.0, local_tx=1)  # queued while offline
    w.s.connected(2.0)
    [again] = w.take()
    assert payload_of(again) == payload_of(first)
    now = 3.0
    for _ in range(4):  # more disconnects than TransactionMessageAttempts: never dropped
        w.s.disconnected(now)
        assert w.s.pending is None and w.s.next_deadline() is None
        w.s.tick(now + 1000)
        assert w.take() == []  # nothing goes out offline
        now += 2000
        w.s.connected(now)
        [again] = w.take()
        assert again.action == "StartTransaction"
        assert payload_of(again) == payload_of(first), "original payload and timestamp kept"
        now += 1
    assert [o for o in w.outcomes_now() if isinstance(o, CallFailed)] == []
    assert w.events_of(MessageDropped) == []
    assert w.s.export_outbox()[0].attempts == 0
    ids = [s.unique_id for s in w.sent]
    assert len(ids) == len(set(ids)) == 6
    w.result(ids[-1], start_result(9), now)
    [mv] = w.take()
    assert payload_of(mv)["transactionId"] == 9
    assert payload_of(mv)["meterValue"][0]["timestamp"] == "2026-03-01T12:01:00Z"


@pytest.mark.parametrize("how", FAILURES)
@pytest.mark.parametrize(("attempts", "interval"), [(3, 60.0), (1, 60.0), (2, 0.0), (5, 10.0)])
def test_transaction_message_retries(how: str, attempts: int, interval: float) -> None:
    w = online()
    w.s.attempts, w.s.retry_interval = attempts, interval
    w.s.enqueue_transaction(stop(tx=3), 0.0, local_tx=None)  # a stop from an earlier run
    w.s.enqueue_transaction(start(connector=2), 0.0, local_tx=2)
    [send] = w.take()
    first_payload = payload_of(send)
    sends = [send]
    now = 0.0
    for n in range(1, attempts + 1):
        now = _fail(w, how, sends[-1].unique_id, now)
        at_once = w.take()
        failed = [o for o in w.outcomes_now() if isinstance(o, CallFailed)]
        assert len(failed) == 1 and failed[0].final is (n == attempts)
        if n == attempts:
            break
        assert w.s.export_outbox()[0].attempts == n
        # Wait retry_interval * (sends so far) before the next send.
        due = now + interval * n
        if interval:
            assert at_once == []
            assert w.s.next_deadline() == due
            w.s.tick(due - 0.5)
            assert w.take() == []
            w.s.tick(due)
            [resend] = w.take()
        else:
            [resend] = at_once  # no interval: resent at once
        assert resend.action == "StopTransaction"
        assert payload_of(resend) == first_payload
        sends.append(resend)
        now = due
    assert len(sends) == attempts
    assert len({s.unique_id for s in sends}) == attempts, "a new id per retry"
    [dropped] = w.events_of(MessageDropped)
    assert (dropped.action, dropped.attempts) == ("StopTransaction", attempts)
    # The queue moves on to the next message.
    assert w.sent[-1].action == "StartTransaction"
    assert [e.action for e in w.s.export_outbox()] == ["StartTransaction"]


def test_a_disconnect_does_not_shorten_the_retry_wait() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.error(w.take()[0].unique_id, 1.0)
    w.take()
    assert w.s.next_deadline() == 61.0
    w.s.disconnected(2.0)
    assert w.s.next_deadline() is None
    w.s.connected(3.0)
    assert w.take() == []
    assert w.s.next_deadline() == 61.0
    w.s.tick(61.0)
    [resend] = w.take()
    assert resend.action == "StartTransaction"
    assert w.s.export_outbox()[0].attempts == 1


def test_late_start_result_fills_in_the_queued_messages() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    [first] = w.take()
    w.s.enqueue_transaction(meter_values(), 10.0, local_tx=1)
    w.s.enqueue_transaction(stop(), 20.0, local_tx=1)
    w.s.tick(TIMEOUT)  # no answer: a failure, retried after 60 s
    w.take()
    # The answer to the timed-out send arrives late: recorded, ignored, never raises.
    w.result(first.unique_id, start_result(41), 40.0)
    w.take()
    [unmatched] = w.events_of(UnmatchedResult)
    assert unmatched.unique_id == first.unique_id
    assert w.s.transaction_id(1) is None
    w.s.tick(TIMEOUT + 60)
    [retry] = w.take()
    assert retry.action == "StartTransaction" and retry.unique_id != first.unique_id
    w.result(retry.unique_id, start_result(42), 100.0)
    [mv] = w.take()
    w.result(mv.unique_id, {}, 101.0)
    [st] = w.take()
    assert payload_of(mv)["transactionId"] == payload_of(st)["transactionId"] == 42


def test_messages_of_a_given_up_start_are_dropped_never_sent() -> None:
    w = online()
    w.s.attempts = 2
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.s.enqueue_transaction(meter_values(), 1.0, local_tx=1)
    w.s.enqueue_transaction(stop(), 2.0, local_tx=1)
    w.s.enqueue_transaction(start(connector=2), 3.0, local_tx=2)
    w.s.enqueue_transaction(stop(meter=3000), 4.0, local_tx=2)
    [first] = w.take()
    w.error(first.unique_id, 5.0)
    w.s.tick(65.0)
    [second] = w.take()
    w.error(second.unique_id, 66.0)
    [next_start] = w.take()
    assert next_start.action == "StartTransaction" and payload_of(next_start)["connectorId"] == 2
    dropped = w.events_of(MessageDropped)
    assert [d.action for d in dropped] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert "transactionId" in dropped[1].reason
    w.result(next_start.unique_id, start_result(8), 70.0)
    [st] = w.take()
    assert payload_of(st)["transactionId"] == 8
    sent_ids = [payload_of(s).get("transactionId") for s in w.sent]
    assert all(tx is None or tx > 0 for tx in sent_ids), "never -1 or 0"


def test_an_invalid_start_result_is_a_failure() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    [first] = w.take()
    w.result(first.unique_id, {"idTagInfo": {"status": "Accepted"}}, 1.0)  # no transactionId
    [failed] = w.outcomes_now()
    assert isinstance(failed, CallFailed) and not failed.final
    [frame_in] = [e for e in w.events_of(FrameIn) if e.unique_id == first.unique_id]
    assert frame_in.violations and frame_in.latency == 1.0


# --- bad frames from the central system -----------------------------------------------------------

RESERVE = {"connectorId": 1, "expiryDate": T0_WIRE, "idTag": "T", "reservationId": 1}
BAD_CALLS = [
    # raw frame, CALLERROR code expected (None: no reply at all)
    ('[2,"c1","FooBar",{}]', "NotImplemented"),
    ('[2,"c1","reset",{"type":"Hard"}]', "NotImplemented"),  # action names are case-sensitive
    ('[2,"c1","",{}]', "NotImplemented"),
    (json.dumps([2, "c1", "ReserveNow", RESERVE]), "NotSupported"),  # profile not supported
    ('[2,"c1","CancelReservation",{"reservationId":1}]', "NotSupported"),
    ('[2,"c1","GetInstalledCertificateIds",{"certificateType":"CentralSystemRootCertificate"}]',
     "NotSupported"),
    ('[2,"c1","Authorize",{"idTag":"X"}]', "NotSupported"),  # only ever sent by a CP
    ('[2,"c1","Heartbeat",{}]', "NotSupported"),
    ('[2,"c1","StartTransaction",{}]', "NotSupported"),
    ('[2,"c1","Reset",{}]', "OccurenceConstraintViolation"),
    ('[2,"c1","Reset",{"type":"Medium"}]', "PropertyConstraintViolation"),
    ('[2,"c1","Reset",{"type":1}]', "TypeConstraintViolation"),
    ('[2,"c1","Reset",{"type":"Hard","extra":1}]', "FormationViolation"),
    (json.dumps([2, "c1", "ChangeConfiguration", {"key": "k" * 51, "value": "1"}]),
     "TypeConstraintViolation"),
    ('[2,"c1","UnlockConnector",{"connectorId":"1"}]', "TypeConstraintViolation"),
    ('[2,"c1","GetConfiguration",{"key":"HeartbeatInterval"}]', "TypeConstraintViolation"),
    ('[2,"c1","Reset",[]]', "FormationViolation"),
    ('[2,"c1","Reset",null]', "FormationViolation"),
    ('[2,"c1","Reset"]', "FormationViolation"),
    ('[2,"c1","Reset",{"type":"Hard"},{}]', "FormationViolation"),
    ('[2,"c1",42,{}]', "TypeConstraintViolation"),
    # no id to answer, or not a CALL: recorded, never answered
    ("not json", None),
    ('[2,"c1","Reset",{"type":"Hard"}', None),
    ('{"type":"Hard"}', None),
    ('"text"', None),
    ("[]", None),
    ('[true,"c1","Reset",{}]', None),
    ('[7,"c1","Reset",{}]', None),
    ('[2,5,"Reset",{"type":"Hard"}]', None),
    ("[2]", None),
    ('[3,"c1"]', None),
    ('[3,"c1",[]]', None),
    ('[4,"c1","GenericError",""]', None),
    ('[4,"c1",5,"",{}]', None),
    ('[4,"c1","GenericError","",null]', None),
]


@pytest.mark.parametrize(("raw", "code"), BAD_CALLS)
def test_bad_frames_from_the_central_system(raw: str, code: str | None) -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 0.0)
    w.take()
    w.cs_calls["c1"] = "Reset"
    w.s.receive(raw, 1.0)
    w.s.receive(raw.encode(), 1.0)  # bytes are taken as well
    replies = w.take()
    assert not [o for o in w.outcomes_now() if isinstance(o, IncomingCall)]
    frames_in = w.events_of(FrameIn)
    assert len(frames_in) == 2 and all(f.violations for f in frames_in)
    assert frames_in[0].raw == raw
    if code is None:
        assert replies == []
    else:
        assert len(replies) == 2
        for reply in replies:
            frame = frame_of(reply)
            assert frame[:3] == [4, "c1", code] and frame[4] == {}
            assert isinstance(frame[3], str) and len(frame[3]) <= 255
    # Our own CALL is untouched.
    assert w.s.pending is not None and w.s.pending.unique_id == "1"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff\xfe[2]", None),
        (b"\xc3", None),  # truncated UTF-8
        (b'[2,"c1","Reset",{"type":"\xff"}]', "FormationViolation"),
        (b'[2,"c1","Re\xffset",{"type":"Hard"}]', "FormationViolation"),
        ('[2,"c1","Reset",{"type":"\ud800"}]', "FormationViolation"),  # a lone surrogate
        (b'[3,"1",{"currentTime":"\xff"}]', None),
        (b'[2,"c1","Reset",{"type":"Hard"}, \xff]', None),
    ],
)
def test_broken_text_never_raises(data: bytes | str, code: str | None) -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 0.0)
    w.take()
    w.cs_calls["c1"] = "Reset"
    w.s.receive(data, 1.0)
    replies = w.take()
    [frame_in] = w.events_of(FrameIn)
    assert any("UTF-8" in v for v in frame_in.violations)
    assert not [o for o in w.outcomes_now() if isinstance(o, IncomingCall | CallAnswered)]
    assert [frame_of(r)[:3] for r in replies] == ([] if code is None else [[4, "c1", code]])
    assert w.s.pending is not None  # a broken result does not answer our CALL


@pytest.mark.parametrize(
    "data",
    [b'[2,"c1","Reset",{"type":"Hard"}]',  # a valid CALL, but in a binary frame
     b'[3,"1",{}]',  # the result our Heartbeat waits for, in a binary frame
     b"\x00\xff" * 500_000],  # a megabyte of anything
    ids=["call", "result", "megabyte"],
)
def test_a_binary_frame_is_recorded_as_a_violation_and_ignored(data: bytes) -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 0.0)
    w.take()
    w.cs_calls["c1"] = "Reset"
    w.s.receive_binary(data, 1.0)
    assert w.take() == []  # never answered
    assert w.outcomes_now() == []  # never reaches the charger
    [frame_in] = w.events_of(FrameIn)
    assert frame_in.violations == [BINARY_FRAME]
    assert (frame_in.message_type, frame_in.unique_id, frame_in.action) == (None, None, None)
    assert frame_in.raw.startswith(f"(binary, {len(data)} bytes) ")
    assert frame_in.raw.isprintable() and len(frame_in.raw) <= 4 * BINARY_PREVIEW + 40
    assert w.s.pending is not None and w.s.pending.unique_id == "1"  # our CALL still waits
    w.result("1", {"currentTime": T0_WIRE}, 2.0)  # and its text answer is taken
    assert w.s.pending is None


def test_over_long_message_id_is_answered_with_that_id() -> None:
    w = online()
    long_id = "x" * 37
    w.s.receive(json.dumps([2, long_id, "Reset", {"type": "Hard"}]), 1.0)
    [reply] = w.s.take_effects()[-1:]
    assert isinstance(reply, Send)
    assert json.loads(reply.data)[:3] == [4, long_id, "TypeConstraintViolation"]
    # The only thing the oracle objects to is the CS's own id, which we must echo.
    problems = ORACLE.check_frame_out(reply.data, {})
    assert len(problems) == 1 and "message id" in problems[0]


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("Reset", {"type": "Hard"}),
        ("DataTransfer", {"vendorId": "acme", "messageId": "m", "data": "x"}),  # both ways
        ("GetLocalListVersion", {}),
        ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
        ("ClearChargingProfile", {}),
        ("UpdateFirmware", {"location": "ftp://example.com/fw", "retrieveDate": T0_WIRE}),
    ],
)
def test_valid_calls_of_supported_profiles_reach_the_charger(
    action: str, payload: dict[str, Any]
) -> None:
    w = online()
    w.cs_call("c1", action, payload, 1.0)
    [incoming] = w.outcomes_now()
    assert isinstance(incoming, IncomingCall) and incoming.action == action
    assert w.sent == []
    [frame_in] = w.events_of(FrameIn)
    assert frame_in.violations == [] and frame_in.action == action


def test_reply_error_is_a_valid_call_error() -> None:
    w = online()
    w.cs_call("c1", "Reset", {"type": "Hard"}, 0.0)
    w.s.reply_error("c1", "Reset", "NotSupported", "d" * 300, 0.0)  # type: ignore[arg-type]
    [reply] = w.take()
    frame = frame_of(reply)
    assert frame[:3] == [4, "c1", "NotSupported"] and len(frame[3]) == 255


# --- unmatched results ----------------------------------------------------------------------------


UNMATCHED = [
    ('[3,"nope",{}]', 3),
    ('[3,"nope",{"currentTime":"2026-03-01T12:00:00Z"}]', 3),
    ('[4,"nope","NotImplemented","",{}]', 4),
    ('[4,"nope","WhateverCode","x",{"a":1}]', 4),
]


@pytest.mark.parametrize(("raw", "message_type"), UNMATCHED)
@pytest.mark.parametrize("waiting", [True, False])
def test_result_with_an_unknown_id_is_recorded(raw: str, message_type: int, waiting: bool) -> None:
    w = online()
    if waiting:
        w.s.call(HeartbeatRequest(), 0.0)
        w.take()
    w.s.receive(raw, 1.0)
    assert w.take() == []
    assert w.outcomes_now() == []
    [unmatched] = w.events_of(UnmatchedResult)
    assert (unmatched.unique_id, unmatched.message_type, unmatched.t) == ("nope", message_type, 1.0)
    assert (w.s.pending is not None) is waiting
    if waiting:
        w.result("1", HEARTBEAT_RESULT, 2.0)
        [answered] = w.outcomes_now()
        assert isinstance(answered, CallAnswered)


def test_a_second_result_for_an_answered_call_is_unmatched() -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 0.0)
    w.take()
    w.result("1", HEARTBEAT_RESULT, 1.0)
    w.result("1", HEARTBEAT_RESULT, 2.0)
    w.take()
    assert len([o for o in w.outcomes if isinstance(o, CallAnswered)]) == 1
    [unmatched] = w.events_of(UnmatchedResult)
    assert unmatched.unique_id == "1"


def test_result_latency_is_recorded() -> None:
    w = online()
    w.s.call(HeartbeatRequest(), 10.0)
    w.take()
    w.result("1", HEARTBEAT_RESULT, 12.5)
    w.take()
    [frame_in] = w.events_of(FrameIn)
    assert (frame_in.latency, frame_in.action, frame_in.message_type) == (2.5, "Heartbeat", 3)


# --- export and restore ---------------------------------------------------------------------------


def test_export_outbox_and_restore_round_trip() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    w.result(w.take()[0].unique_id, start_result(42), 1.0)
    w.s.disconnected(2.0)
    w.s.enqueue_transaction(meter_values(wh=1500), 3.0, local_tx=1)
    w.s.enqueue_transaction(stop(meter=2000), 4.0, local_tx=1)
    w.s.enqueue_transaction(start(meter=2000), 5.0, local_tx=2)
    w.s.enqueue_transaction(stop(meter=2500), 6.0, local_tx=2)
    w.take()
    exported = w.s.export_outbox()
    assert [(e.action, e.local_tx, e.transaction_id) for e in exported] == [
        ("MeterValues", 1, 42), ("StopTransaction", 1, 42),
        ("StartTransaction", 2, None), ("StopTransaction", 2, None),
    ]
    seqs = [e.seq for e in exported]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4

    # Through the ledger's JSON and back, into a fresh session (a restarted simulator).
    stored = msgspec.json.encode(exported)
    restored = msgspec.json.decode(stored, type=tuple[OutboxEntry, ...])
    again = Wire(new_id=counter("r"), supported_profiles=PROFILES, outbox=restored)
    assert again.s.export_outbox() == exported
    assert again.s.transaction_id(1) == 42
    later = again.s.enqueue_transaction(meter_values(connector=2, wh=2100), 7.0, local_tx=2)
    assert later.seq > max(seqs)
    again.s.transactions_enabled = True
    again.s.connected(10.0)
    delivered = []
    tx_for_2 = 43
    while True:
        sends = again.take()
        if not sends:
            break
        [send] = sends
        delivered.append((send.action, payload_of(send).get("transactionId")))
        answer = start_result(tx_for_2) if send.action == "StartTransaction" else {}
        again.result(send.unique_id, answer, 11.0)
    assert delivered == [
        ("MeterValues", 42), ("StopTransaction", 42), ("StartTransaction", None),
        ("StopTransaction", 43), ("MeterValues", 43),
    ]
    assert again.s.export_outbox() == ()
    assert again.persisted[-1] == ()
    assert all(s.unique_id.startswith("r") for s in again.sent)


def test_restored_head_keeps_its_attempts_and_gets_a_new_id() -> None:
    w = online()
    w.s.enqueue_transaction(start(), 0.0, local_tx=1)
    [first] = w.take()
    w.error(first.unique_id, 1.0)
    w.take()
    [head] = w.s.export_outbox()
    assert (head.attempts, head.unique_id) == (1, first.unique_id)
    again = online(new_id=counter("new-"), outbox=[head])
    [resend] = again.sent
    assert resend.unique_id == "new-1" and payload_of(resend) == payload_of(first)
    again.error(resend.unique_id, 2.0)
    again.s.tick(2.0 + 120)
    again.error(again.take()[0].unique_id, 130.0)
    again.take()
    [dropped] = again.events_of(MessageDropped)
    assert dropped.attempts == 3  # 1 before the restart + 2 after


def test_restored_message_without_a_known_transaction_is_dropped() -> None:
    orphan = OutboxEntry(seq=4, action="StopTransaction", local_tx=9,
                         payload=json.dumps({"meterStop": 5, "timestamp": T0_WIRE}))
    w = online(outbox=[orphan])
    assert w.sent == []
    [dropped] = w.events_of(MessageDropped)
    assert dropped.action == "StopTransaction"
    assert w.s.export_outbox() == ()


def test_a_secret_in_change_configuration_never_reaches_the_events() -> None:
    wire = Wire()
    wire.s.connected(0.0)
    wire.cs_call("cs-1", "ChangeConfiguration",
                 {"key": "AuthorizationKey", "value": "0123456789abcdef"}, 1.0)
    outcomes = wire.outcomes_now()
    frames = wire.events_of(FrameIn)
    assert frames and all("0123456789abcdef" not in f.raw for f in frames)
    assert "AuthorizationKey" in frames[-1].raw
    (incoming,) = [o for o in outcomes if isinstance(o, IncomingCall)]
    assert incoming.request.value == "0123456789abcdef"  # the charger still gets the real value


# --- the protocol plugin --------------------------------------------------------------------------


def test_the_action_table_and_codec_come_from_the_plugin() -> None:
    """A version whose table lacks Reset, and whose codec records what it decodes: the session
    answers Reset NotImplemented (unknown to that version) and decodes the rest with it."""
    decoded: list[str] = []

    def decode_request(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
        decoded.append(action)
        return PLUGIN.decode_request(action, raw)

    actions = {name: spec for name, spec in PLUGIN.actions.items() if name != "Reset"}
    plugin = dataclasses.replace(PLUGIN, subprotocol="ocpp-test1.0", actions=actions,
                                 decode_request=decode_request)
    w = Wire(plugin=plugin)
    w.s.connected(0.0)
    w.cs_call("c1", "Reset", {"type": "Hard"}, 1.0)
    [reply] = w.take()
    assert frame_of(reply)[:3] == [4, "c1", "NotImplemented"]
    w.cs_call("c2", "ClearCache", {}, 2.0)
    [incoming] = w.outcomes_now()
    assert isinstance(incoming, IncomingCall) and incoming.action == "ClearCache"
    assert decoded == ["ClearCache"]
