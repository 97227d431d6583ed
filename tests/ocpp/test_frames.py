"""The OCPP-J envelope: round trips of the three frame kinds, and every broken frame diagnosed.

A broken frame raises ``FrameError`` with the 1.6 error code OCPP-J §4.2.3 names (structure →
FormationViolation, wrong data type or over-long string → TypeConstraintViolation), the message
id whenever it could be read, and ``should_reply`` only for a CALL whose id is known (a frame of
unknown type is ignored, a broken result or error is never answered).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgspec
import pytest

from simulator.ocpp.frames import (
    EMPTY_OBJECT,
    MAX_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    ErrorCode,
    Frame,
    FrameError,
    MessageType,
    decode_frame,
    encode_frame,
)
from tests.oracle import ORACLE

FE = ErrorCode.FORMATION_VIOLATION
TE = ErrorCode.TYPE_CONSTRAINT_VIOLATION
UUID = "7b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # 36 characters, the longest id allowed


# --- round trips ---------------------------------------------------------------------------------

ROUND_TRIPS: list[tuple[str, Frame]] = [
    (
        '[2,"19223201","BootNotification",{"chargePointVendor":"Acme","chargePointModel":"AC22"}]',
        Call(
            "19223201",
            "BootNotification",
            msgspec.Raw(b'{"chargePointVendor":"Acme","chargePointModel":"AC22"}'),
        ),
    ),
    ('[2,"1","Heartbeat",{}]', Call("1", "Heartbeat", EMPTY_OBJECT)),
    (
        f'[3,"{UUID}",{{"currentTime":"2026-01-01T00:00:00Z"}}]',
        CallResult(UUID, msgspec.Raw(b'{"currentTime":"2026-01-01T00:00:00Z"}')),
    ),
    ('[3,"",{}]', CallResult("", EMPTY_OBJECT)),
    (
        '[4,"162376037","NotSupported","SetDisplayMessage is not supported",{"x":[1,{"y":null}]}]',
        CallError(
            "162376037",
            "NotSupported",
            "SetDisplayMessage is not supported",
            msgspec.Raw(b'{"x":[1,{"y":null}]}'),
        ),
    ),
    ('[4,"9","GenericError","",{}]', CallError("9", "GenericError", "", EMPTY_OBJECT)),
    # a 2.x spelling is kept as received; ErrorCode.parse interprets it
    ('[4,"9","FormatViolation","x",{}]', CallError("9", "FormatViolation", "x", EMPTY_OBJECT)),
]


def _as_json(frame: Frame) -> Any:
    return json.loads(encode_frame(frame))


@pytest.mark.parametrize(("text", "frame"), ROUND_TRIPS, ids=[t[:20] for t, _ in ROUND_TRIPS])
def test_decode_encode_round_trip(text: str, frame: Frame) -> None:
    for data in (text, text.encode(), " \n" + text.replace(",", ", ") + "\t"):
        decoded = decode_frame(data)
        assert type(decoded) is type(frame)
        assert _as_json(decoded) == json.loads(text)
        assert decoded.unique_id == frame.unique_id
    assert encode_frame(frame) == text.encode()
    assert decode_frame(encode_frame(frame)).message_type == frame.message_type


def test_round_trip_keeps_payload_bytes_for_the_second_stage() -> None:
    payload = b'{"idTag":"T\\u00e9ST","n":1.10}'
    frame = decode_frame(b'[2,"a","Authorize",' + payload + b"]")
    assert isinstance(frame, Call)
    assert bytes(frame.payload) == payload
    assert frame.message_type is MessageType.CALL


def test_frames_we_encode_pass_the_oracle() -> None:
    call = Call("42", "Heartbeat", EMPTY_OBJECT)
    result = CallResult("42", msgspec.Raw(b'{"currentTime":"2026-01-01T00:00:00Z"}'))
    error = CallError("43", ErrorCode.NOT_IMPLEMENTED, "unknown action", EMPTY_OBJECT)
    assert ORACLE.check_frame_out(encode_frame(call), {}) == []
    assert ORACLE.check_frame_out(encode_frame(result), {"42": "Heartbeat"}) == []
    assert ORACLE.check_frame_out(encode_frame(error), {}) == []
    assert encode_frame(error) == b'[4,"43","NotImplemented","unknown action",{}]'


# --- broken frames -------------------------------------------------------------------------------

LONG_ID = "x" * (MAX_ID_LENGTH + 1)

# (case, text, code, unique_id, message_type, should_reply)
BROKEN: list[tuple[str, str, ErrorCode, str | None, int | None, bool]] = [
    ("not-json", '[2,"a","Heartbeat",{}', FE, None, None, False),
    ("not-json-garbage", "Heartbeat please", FE, None, None, False),
    ("not-json-empty", "", FE, None, None, False),
    ("not-array-object", '{"messageType":2}', FE, None, None, False),
    ("not-array-string", '"[2,\\"a\\",\\"Heartbeat\\",{}]"', FE, None, None, False),
    ("not-array-null", "null", FE, None, None, False),
    ("empty-array", "[]", FE, None, None, False),
    ("type-not-int", '["2","a","Heartbeat",{}]', FE, None, None, False),
    ("type-bool", '[true,"a",{}]', FE, None, None, False),
    ("unknown-type-5", '[5,"a","Heartbeat",{}]', FE, None, 5, False),
    ("unknown-type-0", '[0,"a"]', FE, None, 0, False),
    ("no-id", "[2]", FE, None, 2, False),
    ("call-too-short", '[2,"a","Heartbeat"]', FE, "a", 2, True),
    ("call-too-long", '[2,"a","Heartbeat",{},{}]', FE, "a", 2, True),
    ("result-too-short", '[3,"b"]', FE, "b", 3, False),
    ("result-too-long", '[3,"b",{},{}]', FE, "b", 3, False),
    ("error-too-short", '[4,"c","GenericError",{}]', FE, "c", 4, False),
    ("error-too-long", '[4,"c","GenericError","",{},{}]', FE, "c", 4, False),
    ("id-int", '[2,17,"Heartbeat",{}]', TE, None, 2, False),
    ("id-null", "[3,null,{}]", TE, None, 3, False),
    ("id-object", '[4,{},"GenericError","",{}]', TE, None, 4, False),
    ("id-too-long", f'[2,"{LONG_ID}","Heartbeat",{{}}]', TE, LONG_ID, 2, True),
    ("result-id-too-long", f'[3,"{LONG_ID}",{{}}]', TE, LONG_ID, 3, False),
    ("action-not-string", '[2,"a",7,{}]', TE, "a", 2, True),
    ("error-code-not-string", '[4,"c",1,"",{}]', TE, "c", 4, False),
    ("error-description-not-string", '[4,"c","GenericError",null,{}]', TE, "c", 4, False),
    ("call-payload-array", '[2,"a","Heartbeat",[]]', FE, "a", 2, True),
    ("call-payload-null", '[2,"a","Heartbeat",null]', FE, "a", 2, True),
    ("call-payload-string", '[2,"a","Heartbeat","{}"]', FE, "a", 2, True),
    ("result-payload-number", '[3,"b",0]', FE, "b", 3, False),
    ("error-details-array", '[4,"c","GenericError","",[]]', FE, "c", 4, False),
    ("error-details-null", '[4,"c","GenericError","",null]', FE, "c", 4, False),
]


@pytest.mark.parametrize(
    ("text", "code", "unique_id", "message_type", "should_reply"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_frame_is_diagnosed(
    text: str, code: ErrorCode, unique_id: str | None, message_type: int | None, should_reply: bool
) -> None:
    for data in (text, text.encode()):
        with pytest.raises(FrameError) as caught:
            decode_frame(data)
        error = caught.value
        assert error.code is code
        assert error.unique_id == unique_id
        assert error.message_type == message_type
        assert error.should_reply is should_reply
        assert error.reason and "\n" not in error.reason
        assert str(error).startswith(f"{code}: ")


def test_the_longest_id_is_accepted() -> None:
    assert decode_frame(f'[2,"{"y" * MAX_ID_LENGTH}","Heartbeat",{{}}]').unique_id == "y" * 36


def test_id_length_counts_characters_not_bytes() -> None:
    unique_id = "é" * MAX_ID_LENGTH  # 72 bytes in UTF-8, 36 characters
    assert decode_frame(f'[3,"{unique_id}",{{}}]'.encode()).unique_id == unique_id


def test_a_broken_call_is_answered_with_its_id_and_code() -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame('[2,"id-7","Heartbeat",[]]')
    reply = caught.value.to_call_error()
    assert reply == CallError("id-7", FE, caught.value.reason, EMPTY_OBJECT)
    assert ORACLE.check_frame_out(encode_frame(reply), {}) == []


def test_an_unanswerable_frame_error_refuses_to_build_a_reply() -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame("not json")
    assert not caught.value.should_reply
    with pytest.raises(ValueError, match="needs the id"):
        caught.value.to_call_error()


def nested(depth: int) -> str:
    """A JSON object ``depth`` levels deep."""
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("text", "unique_id", "message_type"),
    [
        (f'[2,"id-deep","Reset",{nested(10_000)}]', "id-deep", 2),
        (f' [ 2 , "\\u0041b" , "Reset", {nested(10_000)}]', "\\u0041b", 2),
        (f'[3,"r-1",{nested(10_000)}]', "r-1", 3),
        (f'[7,{nested(10_000)}]', None, None),
        ("[" * 100_000, None, None),
        (f'[2,"id-2",7,{nested(10_000)}]', "id-2", 2),
    ],
)
def test_a_frame_nested_too_deep_is_a_formation_violation(
    text: str, unique_id: str | None, message_type: int | None
) -> None:
    # msgspec follows nesting by recursion: ten thousand levels raised RecursionError, which
    # escaped decode_frame and crashed the charger that received it.
    for data in (text, text.encode()):
        with pytest.raises(FrameError) as caught:
            decode_frame(data)
        assert caught.value.code is FE
        assert (caught.value.unique_id, caught.value.message_type) == (
            None if unique_id is None else json.loads(f'"{unique_id}"'), message_type)


def test_reply_description_is_capped() -> None:
    reply = FrameError(FE, "r" * 1000, unique_id="a", message_type=2).to_call_error()
    assert len(reply.error_description) == 255


@pytest.mark.parametrize(
    ("received", "parsed"),
    [
        ("NotImplemented", ErrorCode.NOT_IMPLEMENTED),
        ("OccurenceConstraintViolation", ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION),
        ("OccurrenceConstraintViolation", ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION),
        ("FormatViolation", ErrorCode.FORMATION_VIOLATION),
        ("RpcFrameworkError", ErrorCode.FORMATION_VIOLATION),
        ("MessageTypeNotSupported", ErrorCode.NOT_IMPLEMENTED),
        ("SomethingElse", ErrorCode.GENERIC_ERROR),
        ("", ErrorCode.GENERIC_ERROR),
        ("notimplemented", ErrorCode.GENERIC_ERROR),
    ],
)
def test_error_code_parse_accepts_any_string(received: str, parsed: ErrorCode) -> None:
    assert ErrorCode.parse(received) is parsed


def test_error_codes_are_the_ten_of_ocpp16() -> None:
    from tests.oracle import ERROR_CODES_16

    assert {code.value for code in ErrorCode} == ERROR_CODES_16


# --- layering ------------------------------------------------------------------------------------


def test_importing_simulator_ocpp_does_not_load_trio() -> None:
    code = (
        "import json, sys\n"
        "import simulator.ocpp, simulator.ocpp.frames, simulator.ocpp.plugin, simulator.ocpp.v16\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'trio', 'trio_websocket', 'asyncio', 'sqlite3'})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
