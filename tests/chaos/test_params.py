"""Fault parameters: every catalog fault has a spec, defaults are filled in with the types the
implementers rely on, and each kind of mistake is one clear message at the right key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.chaos import FAULTS, CatalogError
from simulator.chaos.params import FAULT_SPECS, check_params, deliberate, lasting_of


def test_every_catalog_fault_has_a_spec() -> None:
    assert set(FAULT_SPECS) == FAULTS


@pytest.mark.parametrize(
    ("fault", "lasting", "expected"),
    [
        ("latency", None, {"ms": 200.0, "jitter_ms": 0.0, "direction": "both"}),
        ("bandwidth", None, {"bytes_per_second": 2000, "direction": "both"}),
        ("fragment", None, {"size": 8}),
        ("disconnect", None, {"code": 1000}),
        ("reset", None, {}),
        ("partition", 30.0, {}),
        ("slow_close", None, {"linger": 10.0}),
        ("malformed_json", None, {"count": 1}),
        ("bad_message_type", None, {"count": 1, "message_type": 7}),
        ("overlong_id", None, {"count": 1, "length": 64}),
        ("concurrent_call", None, {"count": 1, "action_name": "Heartbeat"}),
        ("schema_violation", None, {"count": 1, "kind": "missing_field"}),
        ("oversize_payload", None, {"count": 1, "bytes": 1048576}),
        ("late_result", None, {"count": 1, "delay": 30.0}),
        ("error_code_spelling", None, {"count": 1, "code": "FormatViolation"}),
        ("clock_skew", None, {"mode": "offset", "seconds": 3600.0}),
        ("missing_transaction_id", None, {"value": -1}),
        ("connector_fault", None, {"error_code": "OtherError"}),
        ("boot_loop", None, {"count": 3, "interval": 10.0}),
        ("power_loss", None, {"outage": 10.0}),
        ("firmware_failure", None, {"stage": "install"}),
        ("reject_commands", None, {"mode": "rejected"}),
        ("blackout", 60.0, {"power": True}),
    ],
)
def test_defaults_are_filled_in(fault: str, lasting: float | None,
                                expected: dict[str, object]) -> None:
    checked = check_params(fault, {}, lasting)
    assert checked == expected
    assert [type(v) for v in checked.values()] == [type(v) for v in expected.values()]


def test_written_values_are_converted() -> None:
    assert check_params("latency", {"ms": 50, "direction": "send"})["ms"] == 50.0
    assert check_params("power_loss", {"outage": "2m"}) == {"outage": 120.0}
    assert check_params("late_result", {"delay": 1.5, "action": "Heartbeat", "count": 3}) == {
        "count": 3, "action": "Heartbeat", "delay": 1.5}
    assert check_params("connector_fault", {"error_code": "GroundFailure", "info": "x"}) == {
        "error_code": "GroundFailure", "info": "x"}


def test_a_wave_checks_its_inner_fault() -> None:
    assert check_params("wave", {"fault": "power_loss", "over": "5m", "outage": "30s"}) == {
        "fault": "power_loss", "over": 300.0, "outage": 30.0}
    assert check_params("wave", {"fault": "partition"}, 20.0) == {"fault": "partition",
                                                                 "over": 60.0}


@pytest.mark.parametrize(
    ("fault", "params", "lasting", "path", "message"),
    [
        ("latency", {"ms": 99999}, None, ("params", "ms"), "must be within 0..60000, got 99999"),
        ("latency", {"ms": "fast"}, None, ("params", "ms"), 'must be a number, got "fast"'),
        ("latency", {"msec": 1}, None, ("params", "msec"),
         "unknown parameter; did you mean 'ms'? latency takes ms, jitter_ms, direction"),
        ("reset", {"code": 1000}, None, ("params", "code"), "unknown parameter; reset takes none"),
        ("latency", {"direction": "sideways"}, None, ("params", "direction"),
         'unknown value "sideways"; expected one of both, send, receive'),
        ("fragment", {"size": 2.5}, None, ("params", "size"), "must be an integer, got 2.5"),
        ("fragment", {"size": True}, None, ("params", "size"), "must be an integer, got true"),
        ("slow_close", {"linger": "11m"}, None, ("params", "linger"),
         "must be within 0s..10m, got 11m"),
        ("slow_close", {"linger": "soon"}, None, ("params", "linger"),
         '"soon" is not a duration; write e.g. 500ms, 30s, 2m, 1h30m or a number of seconds'),
        ("missing_transaction_id", {"value": 5}, None, ("params", "value"),
         "unknown value 5; expected one of -1, 0"),
        ("malformed_json", {"action": "Heartbeet"}, None, ("params", "action"),
         'unknown value "Heartbeet"'),
        ("reject_commands", {"action": "Heartbeat"}, None, ("params", "action"),
         'unknown value "Heartbeat"'),  # the charger sends Heartbeat: not a CSMS command
        ("connector_fault", {"error_code": "NoError"}, None, ("params", "error_code"),
         'unknown value "NoError"'),
        ("blackout", {"power": "yes"}, 10.0, ("params", "power"),
         'must be true or false, got "yes"'),
        ("partition", {}, None, ("for",), "is required: partition needs to know how long"),
        ("blackout", {}, None, ("for",), "is required: blackout needs to know how long"),
        ("wave", {}, None, ("params", "fault"), "is required: the transport or behaviour fault"),
        ("wave", {"fault": "malformed_json"}, None, ("params", "fault"),
         'unknown value "malformed_json"'),
        ("wave", {"fault": "blackout"}, 10.0, ("params", "fault"), 'unknown value "blackout"'),
        ("wave", {"fault": "partition"}, None, ("for",), "is required: partition"),
        ("wave", {"fault": "reset", "ms": 3}, None, ("params", "ms"),
         "unknown parameter; reset takes none"),
        ("wave", {"fault": "latency", "ms": -1}, None, ("params", "ms"),
         "must be within 0..60000, got -1"),
    ],
)
def test_mistakes_are_named(fault: str, params: dict[str, object], lasting: float | None,
                            path: tuple[str, ...], message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        check_params(fault, params, lasting)
    assert caught.value.path == path
    assert caught.value.message.startswith(message), caught.value.message


def test_deliberate_faults() -> None:
    assert {f for f in FAULTS if deliberate(f)} == {
        "meter_regress", "meter_spike", "duplicate_start", "stale_transaction_id",
        "missing_transaction_id", "clock_skew", "malformed_json", "bad_message_type",
        "duplicate_id", "overlong_id", "concurrent_call", "unknown_action", "schema_violation",
        "oversize_payload", "late_result", "unsolicited_result", "wrong_id_result",
        "error_code_spelling",
    }


def test_how_long_an_injection_lasts() -> None:
    assert lasting_of("partition", 30.0) == 30.0
    assert lasting_of("reconnect_storm", None) == 5.0
    assert lasting_of("identity_clash", None) == 10.0
    assert lasting_of("identity_clash", 2.0) == 2.0
    assert lasting_of("disconnect", None) is None


def test_the_architecture_page_lists_every_fault_with_its_parameters() -> None:
    """docs/architecture.md's table of faults is what users read: each fault has a row naming
    each of its parameters."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    rows = {line.split("|")[2].strip(" `"): line for line in page.splitlines()
            if line.startswith("| ") and line.count("|") == 5}
    for fault, spec in FAULT_SPECS.items():
        assert fault in rows, fault
        for name in spec.params:
            assert f"`{name}`" in rows[fault], (fault, name)
