"""What ``sim check`` says about ``[[expect]]`` tables: an unknown check, a parameter a check does
not take, a value of the wrong kind, each one error naming the table and the key; and what each
built-in check takes."""

from __future__ import annotations

import pytest

from simulator.config import Expect
from simulator.verdicts import (
    BUILT_INS,
    ExpectationError,
    check_expectations,
    find_check,
)


def first_error(*tables: dict[str, str | int | float | bool]) -> tuple[int, str | None, str]:
    expectations = [Expect(check=str(t["check"]), params={k: v for k, v in t.items()
                                                          if k != "check"}) for t in tables]
    with pytest.raises(ExpectationError) as caught:
        check_expectations(expectations)
    return caught.value.index, caught.value.error.key, caught.value.error.message


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"check": "no_lost_transaction"}, "check",
         ["unknown check 'no_lost_transaction'", "did you mean 'no_lost_transactions'?"]),
        ({"check": "no_lost_transactions", "within": "2s"}, "within",
         ["does not take 'within'", "takes: no parameters"]),
        ({"check": "latency", "action": "BootNotification", "p96": "2s"}, "p96",
         ["does not take 'p96'", "did you mean", "p95"]),
        ({"check": "latency", "p95": "2s"}, "action", ["is required by check 'latency'"]),
        ({"check": "latency", "action": "BootNotification"}, None, ["needs a bound"]),
        ({"check": "latency", "action": "BootNotificaton", "p95": "2s"}, "action",
         ["unknown OCPP 1.6 action", "BootNotification"]),
        ({"check": "latency", "action": "Heartbeat", "p95": "soon"}, "p95", ["soon"]),
        ({"check": "latency", "action": "Heartbeat", "p95": True}, "p95", ["a duration"]),
        ({"check": "reconnect", "share": 1.5}, "share", ["a number from 0 to 1", "1.5"]),
        ({"check": "reconnect", "fault": "disconect"}, "fault",
         ["unknown fault 'disconect'", "did you mean 'disconnect'?"]),
        ({"check": "boot_accepted", "min": "all"}, "min", ["a number from 0 to 1"]),
        ({"check": "max_errors", "max": 1.5}, "max", ["an integer"]),
        ({"check": "max_errors", "max": -1}, "max", [">= 0"]),
        ({"check": "max_errors", "code": 3}, "code", ["a string"]),
    ],
)
def test_a_table_a_check_cannot_take_is_one_error_at_its_key(
    table: dict[str, str | int | float | bool], key: str | None, words: list[str]
) -> None:
    index, found_key, message = first_error({"check": "schema_clean"}, table)
    assert (index, found_key) == (1, key)
    for word in words:
        assert word in message


def test_every_built_in_check_takes_what_the_issue_names() -> None:
    takes = {name: {p.name: (p.kind.name, p.required) for p in check.params.values()}
             for name, check in BUILT_INS.items()}
    assert takes == {
        "no_lost_transactions": {},
        "latency": {"action": ("TEXT", True), "p50": ("DURATION", False),
                    "p95": ("DURATION", False), "p99": ("DURATION", False)},
        "schema_clean": {},
        "error_codes": {"within": ("DURATION", False)},
        "reconnect": {"share": ("SHARE", False), "within": ("DURATION", False),
                      "fault": ("TEXT", False)},
        "boot_accepted": {"min": ("SHARE", False)},
        "max_errors": {"max": ("INTEGER", False), "code": ("TEXT", False)},
    }


def test_parameters_are_bound_with_their_defaults_and_units() -> None:
    [(latency, bound)] = check_expectations(
        [Expect(check="latency", params={"action": "Heartbeat", "p95": "500ms", "p99": 2})])
    assert latency is find_check("latency")
    assert bound == {"action": "Heartbeat", "p50": None, "p95": 0.5, "p99": 2.0}
    [(_, defaults)] = check_expectations([Expect(check="boot_accepted", params={})])
    assert defaults == {"min": 1.0}
