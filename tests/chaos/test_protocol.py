"""The protocol faults' pure decisions (``simulator.chaos.protocol``), judged by the official
OCPP 1.6 JSON schemas: a frame a fault breaks fails them for the reason the fault names, every
frame it leaves alone (or adds as valid) passes them, and the choices follow the seed."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any, Final

import msgspec
import pytest
from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft4Validator,
    FormatChecker,
)

from simulator import seeds
from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection, Scalar
from simulator.chaos.payloads import ViolationKind, break_payload, minimal_payload
from simulator.chaos.protocol import MALFORMATIONS, ProtocolChaos, Wire
from simulator.machines.effects import Send
from simulator.ocpp.frames import EMPTY_OBJECT, Call, CallError, CallResult, encode_frame
from simulator.ocpp.v16 import (
    PLUGIN,
    AuthorizeRequest,
    BootNotificationRequest,
    ChargePointErrorCode,
    ChargePointStatus,
    GetConfigurationResponse,
    HeartbeatRequest,
    KeyValue,
    StartTransactionRequest,
    StatusNotificationRequest,
)
from tests.oracle import ORACLE, Kind, load_json

WALL: Final = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
KEYWORD: Final = {
    ViolationKind.MISSING_FIELD: "required",
    ViolationKind.WRONG_TYPE: "type",
    ViolationKind.BAD_ENUM: "enum",
    ViolationKind.EXTRA_PROPERTY: "additionalProperties",
    ViolationKind.OVERLONG_STRING: "maxLength",
}
"""The JSON-schema keyword that must reject a payload broken each way (and no other)."""
_EXACT: Final = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_VALIDATORS: Final = {key: Draft4Validator(ORACLE.schema(*key), format_checker=FormatChecker())
                      for key in ORACLE.files}


def keywords(action: str, kind: Kind, payload: Any) -> list[str]:
    """The schema keywords the official ``action`` schema fails ``payload`` on (empty: valid)."""
    with decimal.localcontext(_EXACT):
        found = _VALIDATORS[(action, kind)].iter_errors(load_json(json.dumps(payload)))
        return sorted(error.validator for error in found)


def call(unique_id: str, request: msgspec.Struct) -> Send:
    action = PLUGIN.action_of(request)
    data = encode_frame(Call(unique_id, action, msgspec.Raw(PLUGIN.encode_payload(request))))
    return Send(data, 2, unique_id, action)


def result(unique_id: str, action: str, response: msgspec.Struct) -> Send:
    data = encode_frame(CallResult(unique_id, msgspec.Raw(PLUGIN.encode_payload(response))))
    return Send(data, 3, unique_id, action)


def error(unique_id: str, action: str, code: str = "NotSupported") -> Send:
    data = encode_frame(CallError(unique_id, code, "not here", EMPTY_OBJECT))
    return Send(data, 4, unique_id, action)


BOOT: Final = BootNotificationRequest(charge_point_vendor="Acme", charge_point_model="AC22",
                                      firmware_version="1.0.3")
STATUS: Final = StatusNotificationRequest(connector_id=1, error_code=ChargePointErrorCode.NO_ERROR,
                                          status=ChargePointStatus.AVAILABLE, timestamp=WALL)
START: Final = StartTransactionRequest(connector_id=1, id_tag="TAG-1", meter_start=0,
                                       timestamp=WALL)
AUTHORIZE: Final = AuthorizeRequest(id_tag="TAG-1")
HEARTBEAT: Final = HeartbeatRequest()
CONFIG: Final = GetConfigurationResponse(
    configuration_key=(KeyValue(key="HeartbeatInterval", readonly=False, value="60"),)
)
REQUESTS: Final = (BOOT, STATUS, START, AUTHORIZE, HEARTBEAT)


def fault(name: str, *, injection_id: str = "0.0", until: float | None = None,
          **params: Scalar) -> Injection:
    return Injection(id=injection_id, fault=name, family=Family.PROTOCOL, at=0.0, until=until,
                     params={"count": 1, **params}, deliberate=True)


def chaos(*injections: Injection, seed: int = 7) -> ProtocolChaos:
    protocol = ProtocolChaos(seeds.derive(seed, "CP-1", "chaos", "protocol"),
                             wall_epoch=WALL.timestamp())
    for injection in injections:
        protocol.inject(injection, 0.0)
    return protocol


def parsed(wire: Wire) -> list[Any]:
    frame: list[Any] = json.loads(wire.send.data)
    return frame


def only(wires: tuple[Wire, ...]) -> Wire:
    assert len(wires) == 1
    return wires[0]


def untouched(wires: tuple[Wire, ...], send: Send) -> None:
    assert wires == (Wire(send),)
    assert ORACLE.check_frame_out(send.data, {send.unique_id: send.action}) == []


# --- no fault, one fault, counts, filters, ends --------------------------------------------------


def test_without_injections_every_frame_goes_as_it_is() -> None:
    protocol = chaos()
    for n, request in enumerate(REQUESTS):
        send = call(f"m{n}", request)
        untouched(protocol.outgoing(send, float(n)), send)
    assert protocol.next_deadline() is None and protocol.due(100.0) == ()


def test_a_fault_affects_count_frames_of_its_action_then_ends() -> None:
    protocol = chaos(fault("bad_message_type", count=2, action="StatusNotification"))
    untouched(protocol.outgoing(call("m1", BOOT), 1.0), call("m1", BOOT))
    hit = [only(protocol.outgoing(call(f"s{n}", STATUS), 2.0 + n)) for n in range(3)]
    assert [w.fault for w in hit] == ["bad_message_type", "bad_message_type", None]
    assert [w.injection for w in hit] == ["0.0", "0.0", None]
    assert protocol.active == ()


def test_a_fault_ends_at_until_with_frames_left() -> None:
    protocol = chaos(fault("malformed_json", count=5, until=10.0))
    assert only(protocol.outgoing(call("m1", HEARTBEAT), 9.0)).fault == "malformed_json"
    untouched(protocol.outgoing(call("m2", HEARTBEAT), 10.0), call("m2", HEARTBEAT))
    assert protocol.active == ()


def test_one_injection_per_frame_the_oldest_first() -> None:
    protocol = chaos(fault("bad_message_type", injection_id="a"),
                     fault("overlong_id", injection_id="b"))
    first = only(protocol.outgoing(call("m1", HEARTBEAT), 1.0))
    second = only(protocol.outgoing(call("m2", HEARTBEAT), 2.0))
    assert (first.injection, second.injection) == ("a", "b")
    assert parsed(first)[1] == "m1" and parsed(second)[0] == 2


def test_a_fault_of_another_family_is_refused() -> None:
    protocol = chaos()
    wrong = Injection(id="x", fault="disconnect", family=Family.TRANSPORT, at=0.0)
    with pytest.raises(ValueError, match="not a protocol fault"):
        protocol.inject(wrong, 0.0)


def test_results_and_errors_are_left_to_the_faults_that_act_on_them() -> None:
    protocol = chaos(fault("schema_violation", kind="extra_property"))
    answer = result("cs-1", "GetConfiguration", CONFIG)
    untouched(protocol.outgoing(answer, 1.0), answer)
    assert only(protocol.outgoing(call("m1", BOOT), 2.0)).fault == "schema_violation"


# --- each fault ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(MALFORMATIONS))
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_malformed_json_never_parses_but_keeps_its_head(how: str, request_: Any) -> None:
    send = call("m-17", request_)
    broken = MALFORMATIONS[how](send.data, len(b'[2,"m-17"'))
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(broken)
    assert broken.startswith(b'[2,"m-17"')


def test_malformed_json_from_the_charger() -> None:
    seen = set()
    for seed in range(12):
        protocol = chaos(fault("malformed_json", count=3), seed=seed)
        for n in range(3):
            send = call(f"m{n}", REQUESTS[n])
            wire = only(protocol.outgoing(send, 1.0))
            assert wire.fault == "malformed_json" and wire.send.unique_id == send.unique_id
            assert ORACLE.check_frame_out(wire.send.data, {})[0].startswith("frame is not JSON")
            seen.add(wire.send.data[-2:])
    assert len(seen) >= 3  # the seeded choice does vary


def test_bad_message_type() -> None:
    send = call("m1", BOOT)
    wire = only(chaos(fault("bad_message_type", message_type=7)).outgoing(send, 1.0))
    assert parsed(wire) == [7, *json.loads(send.data)[1:]]
    assert wire.send.message_type == 7
    assert ORACLE.check_frame_out(wire.send.data, {}) == ["unknown message type 7"]


def test_duplicate_id_reuses_the_previous_calls_id_and_waits_for_one() -> None:
    protocol = chaos(fault("duplicate_id"))
    untouched(protocol.outgoing(call("m1", BOOT), 1.0), call("m1", BOOT))  # nothing before it
    untouched(protocol.outgoing(result("cs-1", "GetConfiguration", CONFIG), 1.5),
              result("cs-1", "GetConfiguration", CONFIG))
    wire = only(protocol.outgoing(call("m2", STATUS), 2.0))
    assert wire.fault == "duplicate_id" and wire.send.unique_id == "m1"
    assert parsed(wire) == [2, "m1", "StatusNotification", json.loads(call("m2", STATUS).data)[3]]
    assert ORACLE.check_frame_out(wire.send.data, {}) == []  # breaks no schema: only uniqueness


@pytest.mark.parametrize("length", [37, 64, 1000])
def test_overlong_id(length: int) -> None:
    send = call("0f8e1b1e-7c1d-4a4e-9d7e-5b7f5c1a2b3c", START)
    wire = only(chaos(fault("overlong_id", length=length)).outgoing(send, 1.0))
    frame = parsed(wire)
    assert len(frame[1]) == length and frame[1].startswith(send.unique_id)
    assert wire.send.unique_id == frame[1]
    assert frame[2:] == json.loads(send.data)[2:]
    assert ORACLE.check_frame_out(wire.send.data, {}) == [
        f"message id has {length} characters, at most 36 allowed"
    ]


CP_ACTIONS: Final = sorted(name for name, spec in PLUGIN.actions.items()
                           if spec.direction.charge_point_sends)


@pytest.mark.parametrize("action_name", CP_ACTIONS)
def test_concurrent_call_adds_a_valid_call_after_the_outstanding_one(action_name: str) -> None:
    send = call("m1", BOOT)
    protocol = chaos(fault("concurrent_call", action_name=action_name))
    first, added = protocol.outgoing(send, 1.0)
    assert first == Wire(send)
    frame = parsed(added)
    assert (added.fault, added.injection, added.send.action) == ("concurrent_call", "0.0",
                                                                 action_name)
    assert frame[0] == 2 and frame[2] == action_name and frame[1] != "m1"
    assert added.send.unique_id == frame[1] and len(frame[1]) == 36
    assert ORACLE.check_frame_out(added.send.data, {}) == []


def test_unknown_action_adds_a_call_of_an_action_no_version_has() -> None:
    send = call("m1", HEARTBEAT)
    first, added = chaos(fault("unknown_action")).outgoing(send, 1.0)
    assert first == Wire(send)
    assert parsed(added)[0::2] == [2, "UnknownAction"] and parsed(added)[3] == {}
    assert ORACLE.check_frame_out(added.send.data, {}) == ["CALL of unknown action 'UnknownAction'"]


def test_unsolicited_result_follows_a_call() -> None:
    send = call("m1", HEARTBEAT)
    first, added = chaos(fault("unsolicited_result")).outgoing(send, 1.0)
    assert first == Wire(send)
    frame = parsed(added)
    assert frame[0] == 3 and frame[1] not in {"m1"} and frame[2] == {}
    assert added.fault == "unsolicited_result" and added.send.message_type == 3


@pytest.mark.parametrize("request_", [BOOT, STATUS, START, AUTHORIZE],
                         ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("kind", list(ViolationKind))
def test_schema_violation_of_a_call(request_: Any, kind: ViolationKind) -> None:
    send = call("m1", request_)
    wires = chaos(fault("schema_violation", kind=kind.value)).outgoing(send, 1.0)
    before = json.loads(send.data)
    if kind == ViolationKind.BAD_ENUM and not isinstance(request_, StatusNotificationRequest):
        untouched(wires, send)  # no enumerated member to break: the fault waits
        return
    frame = parsed(only(wires))
    assert frame[:3] == before[:3]
    assert keywords(send.action, "request", before[3]) == []
    assert keywords(send.action, "request", frame[3]) == [KEYWORD[kind]]


def test_schema_violation_waits_for_a_frame_it_can_break() -> None:
    protocol = chaos(fault("schema_violation", kind="missing_field"))
    untouched(protocol.outgoing(call("m1", HEARTBEAT), 1.0), call("m1", HEARTBEAT))
    wire = only(protocol.outgoing(call("m2", AUTHORIZE), 2.0))
    assert parsed(wire)[3] == {} and wire.fault == "schema_violation"


def test_schema_violation_of_a_result_to_a_central_system_call() -> None:
    answer = result("cs-1", "GetConfiguration", CONFIG)
    protocol = chaos(fault("schema_violation", kind="wrong_type", action="GetConfiguration"))
    wire = only(protocol.outgoing(answer, 1.0))
    assert keywords("GetConfiguration", "response", parsed(wire)[2]) == ["type"]
    assert wire.send.unique_id == "cs-1"


def test_oversize_payload_is_the_same_valid_json_that_many_bytes_long() -> None:
    send = call("m1", BOOT)
    wire = only(chaos(fault("oversize_payload", bytes=100_000)).outgoing(send, 1.0))
    assert len(wire.send.data) > 100_000
    assert parsed(wire) == json.loads(send.data)
    assert ORACLE.check_frame_out(wire.send.data, {}) == []


def test_late_result_is_held_for_its_delay() -> None:
    answer = result("cs-1", "GetConfiguration", CONFIG)
    protocol = chaos(fault("late_result", delay=45.0))
    untouched(protocol.outgoing(call("m1", HEARTBEAT), 5.0), call("m1", HEARTBEAT))
    assert protocol.outgoing(answer, 10.0) == ()
    assert protocol.next_deadline() == 55.0
    assert protocol.due(54.9) == ()
    assert protocol.due(55.0) == (Wire(answer, "late_result", "0.0"),)
    assert protocol.next_deadline() is None and protocol.due(60.0) == ()


def test_wrong_id_result_answers_under_an_id_never_used() -> None:
    answer = result("cs-1", "GetConfiguration", CONFIG)
    wire = only(chaos(fault("wrong_id_result")).outgoing(answer, 1.0))
    frame = parsed(wire)
    assert frame[0] == 3 and frame[1] != "cs-1" and frame[2] == json.loads(answer.data)[2]
    assert wire.send.unique_id == frame[1]


def test_error_code_spelling_changes_only_the_code_of_a_callerror() -> None:
    protocol = chaos(fault("error_code_spelling", code="FormatViolation"))
    untouched(protocol.outgoing(call("m1", HEARTBEAT), 1.0), call("m1", HEARTBEAT))
    send = error("cs-1", "Reset", "FormationViolation")
    wire = only(protocol.outgoing(send, 2.0))
    assert parsed(wire) == [4, "cs-1", "FormatViolation", "not here", {}]
    assert ORACLE.check_frame_out(wire.send.data, {}) == [
        "CALLERROR code 'FormatViolation' is not a 1.6 error code"
    ]


# --- the payload surgery, over every official schema ---------------------------------------------


FILES: Final = sorted(ORACLE.files)


@pytest.mark.parametrize(("action", "kind"), FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_every_payload_breaks_for_exactly_the_reason_named(action: str, kind: Kind) -> None:
    spec = PLUGIN.actions[action]
    struct = spec.request if kind == "request" else spec.response
    valid = minimal_payload(struct, WALL)
    assert keywords(action, kind, json.loads(valid)) == []
    rng = seeds.derive(3, action, kind)
    schema = ORACLE.schema(action, kind)
    for violation in ViolationKind:
        broken = break_payload(struct, valid, violation, rng)
        if broken is None:
            assert _cannot_break(schema, violation), (action, kind, violation)
            continue
        assert keywords(action, kind, json.loads(broken)) == [KEYWORD[violation]]


def _cannot_break(schema: dict[str, Any], violation: ViolationKind) -> bool:
    """Whether the schema's top level really has no member to break that way."""
    members = schema.get("properties", {}).values()
    resolved = [schema.get("definitions", {}).get(m.get("$ref", "").rsplit("/", 1)[-1], m)
                for m in members]
    match violation:
        case ViolationKind.MISSING_FIELD:
            return not schema.get("required")
        case ViolationKind.WRONG_TYPE:
            return all("enum" in m for m in resolved)
        case ViolationKind.BAD_ENUM:
            return not any("enum" in m for m in resolved)
        case ViolationKind.OVERLONG_STRING:
            return not any("maxLength" in m for m in resolved)
        case ViolationKind.EXTRA_PROPERTY:
            return schema.get("additionalProperties") is not False


# --- seeds ---------------------------------------------------------------------------------------


def _decisions(seed: int) -> list[bytes]:
    protocol = chaos(fault("overlong_id", count=2), fault("concurrent_call", count=2),
                     fault("schema_violation", count=2, kind="overlong_string"), seed=seed)
    sends = [call(f"m{n}", request) for n, request in enumerate([START, BOOT] * 3)]
    return [wire.send.data for n, send in enumerate(sends)
            for wire in protocol.outgoing(send, float(n))]


def test_the_same_seed_makes_the_same_frames_and_another_seed_others() -> None:
    assert _decisions(1) == _decisions(1)
    assert _decisions(1) != _decisions(2)

