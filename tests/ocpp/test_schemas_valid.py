"""Every valid payload of every official 1.6 schema decodes into our Struct and re-encodes valid.

For each of the 78 schema files, hypothesis-jsonschema generates payloads from the official schema;
each must decode (``decode_request`` / ``decode_response``), and our re-encoding must validate
against the same schema (``Decimal`` numbers, ``FormatChecker``) and mean the same JSON: equal
values, date-times equal as instants (we re-emit aware date-times in UTC with ``Z``).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from simulator.ocpp.v16 import decode_request, decode_response, encode_payload
from tests.oracle import ORACLE, Kind, load_json

FILES = sorted(ORACLE.files)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _float_schema(action: str, kind: Kind) -> dict[str, Any]:
    """The schema with plain float numbers (hypothesis-jsonschema does not take ``Decimal``) and
    its ``#/definitions`` references inlined (it cannot resolve them under a ``urn:`` ``$id``)."""
    parsed: dict[str, Any] = json.loads(json.dumps(ORACLE.schema(action, kind), default=float))
    definitions = parsed.pop("definitions", {})
    parsed.pop("$id", None)

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].removeprefix("#/definitions/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(parsed)
    return inlined


def _instant(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def same_json(sent: Any, echoed: Any) -> bool:
    """JSON equality, with numbers compared by value and date-time strings as instants."""
    if isinstance(sent, dict) and isinstance(echoed, dict):
        return sent.keys() == echoed.keys() and all(same_json(sent[k], echoed[k]) for k in sent)
    if isinstance(sent, list) and isinstance(echoed, list):
        return len(sent) == len(echoed) and all(map(same_json, sent, echoed))
    if isinstance(sent, str) and isinstance(echoed, str):
        if sent == echoed:
            return True
        before, after = _instant(sent), _instant(echoed)
        return before is not None and before == after and after.utcoffset() == dt.timedelta(0)
    if isinstance(sent, bool) or isinstance(echoed, bool):
        return sent is echoed
    if isinstance(sent, int | Decimal) and isinstance(echoed, int | Decimal):
        return Decimal(sent) == Decimal(echoed)
    return bool(sent == echoed)


def _round_trip(action: str, kind: Kind, text: str) -> None:
    # hypothesis-jsonschema makes multiples of 0.1 by float arithmetic (9674.300000000001):
    # the oracle, parsing Decimals as the schema intends, rightly calls those invalid. Skip them.
    assume(not ORACLE.errors(action, kind, text))
    decode = decode_request if kind == "request" else decode_response
    payload = decode(action, text.encode())
    encoded = encode_payload(payload)
    assert ORACLE.errors(action, kind, encoded) == []
    assert same_json(load_json(text), load_json(encoded)), (text, encoded)


@pytest.mark.parametrize(("action", "kind"), FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_generated_valid_payloads_round_trip(action: str, kind: Kind) -> None:
    strategy = from_schema(_float_schema(action, kind), codec="utf-8").map(json.dumps)

    @SETTINGS
    @given(strategy)
    def check(text: str) -> None:
        _round_trip(action, kind, text)

    check()


@pytest.mark.parametrize(
    "limit", ["21.4", "0.1", "-0.3", "7", "1e1", "230.0", "11.1", "3.3", "1e22", "0.7"]
)
def test_decimal_limits_survive_float_round_trip(limit: str) -> None:
    text = (
        '{"status":"Accepted","chargingSchedule":{"chargingRateUnit":"A",'
        f'"chargingSchedulePeriod":[{{"startPeriod":0,"limit":{limit}}}]}}}}'
    )
    assert ORACLE.errors("GetCompositeSchedule", "response", text) == []
    _round_trip_plain("GetCompositeSchedule", text)


def _round_trip_plain(action: str, text: str) -> None:
    encoded = encode_payload(decode_response(action, text.encode()))
    assert ORACLE.errors(action, "response", encoded) == []
    assert same_json(load_json(text), load_json(encoded))


@given(st.datetimes(timezones=st.timezones()))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
def test_aware_datetimes_go_out_in_utc_with_z(moment: dt.datetime) -> None:
    from simulator.ocpp.v16 import HeartbeatResponse

    encoded = encode_payload(HeartbeatResponse(current_time=moment))
    text = json.loads(encoded)["currentTime"]
    parsed = _instant(text)
    assume(parsed is not None and moment.utcoffset() is not None)
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        return  # no UTC twin in Python (year 1/9999 with an offset): kept with its offset
    assert text.endswith("Z")
    # The same instant. Not ``parsed == moment``: Python deliberately makes a local time in a
    # DST gap or fold unequal to every time in another zone (PEP 495), even to its own UTC twin.
    assert parsed - moment == dt.timedelta(0)
    assert ORACLE.errors("Heartbeat", "response", encoded) == []
