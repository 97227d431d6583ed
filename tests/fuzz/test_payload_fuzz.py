"""hypothesis-generated CALLs of every central-system action, valid and invalid, at chargers in
every state.

Valid payloads come from the official 1.6 request schema (hypothesis-jsonschema); invalid ones
are a valid payload broken in one place, at any depth: a required field dropped, a value of the
wrong JSON type, a string past its ``maxLength``, a value outside its enum, a property the schema
does not have. Each CALL goes to a fresh charger in each state of :data:`tests.fuzz.bench.STATES`
(time then runs on, so what the CALL set off, a reset or a triggered message, is checked too).
The answer OCPP-J names (:func:`tests.fuzz.hostile.call_expectation`):

| the CALL                                        | the answer                                  |
|-------------------------------------------------|---------------------------------------------|
| valid, of an action the charger implements      | CALLRESULT valid for the response schema    |
| of an action of a profile it does not implement | CALLERROR NotSupported                      |
| a required field missing                        | CALLERROR OccurenceConstraintViolation      |
| wrong type, or a string too long                | CALLERROR TypeConstraintViolation           |
| outside the enum                                | CALLERROR PropertyConstraintViolation       |
| an unknown property                             | CALLERROR FormationViolation                |

A charger whose boot was Rejected answers none of the CALLs it would carry out.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from simulator.ocpp.frames import ErrorCode
from tests.fuzz.bench import STATES, build
from tests.fuzz.hostile import (
    CS_ACTIONS,
    IMPLEMENTED,
    Expect,
    Hostile,
    HostileFrames,
    call_expectation,
)
from tests.ocpp.test_schemas_invalid import WRONG_TYPE
from tests.ocpp.test_schemas_valid import _float_schema
from tests.oracle import ORACLE

EXAMPLES: Final = 12
"""Examples per implemented action and kind (valid, invalid); other actions, all answered
NotSupported before their payload is read, get :data:`FEW`."""
FEW: Final = 4
SETTINGS: Final = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)
AFTER: Final = 40.0
"""Seconds the charger runs on after the CALL (past a reset's reboot and a CALL timeout)."""

Path = tuple[str | int, ...]
Breakage = tuple[str, Any, str]
"""(what was broken and where, the broken payload, the code the answer must carry)."""


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def _nodes(value: Any, node: Mapping[str, Any], root: Mapping[str, Any],
           path: Path) -> Iterator[tuple[Path, Any, Mapping[str, Any]]]:
    """Every (path, value, schema) inside a valid ``value``."""
    node = _resolve(node, root)
    yield path, value, node
    if isinstance(value, dict):
        for name, sub in value.items():
            yield from _nodes(sub, node["properties"][name], root, (*path, name))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _nodes(sub, node["items"], root, (*path, index))


def _replaced(payload: Any, path: Path, value: Any, *, drop: bool = False) -> Any:
    broken = json.loads(json.dumps(payload))
    target = broken
    for step in path[:-1]:
        target = target[step]
    if drop:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


def breakages(action: str, payload: dict[str, Any]) -> list[Breakage]:
    """Every one-place breakage of a valid request ``payload`` of ``action``."""
    root = ORACLE.schema(action, "request")
    found: list[Breakage] = []
    occurence = ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION.value
    type_ = ErrorCode.TYPE_CONSTRAINT_VIOLATION.value
    prop = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION.value
    form = ErrorCode.FORMATION_VIOLATION.value
    for path, value, node in _nodes(payload, root, root, ()):
        if isinstance(value, dict):
            for name in node.get("required", ()):
                found.append((f"{path} without {name}", _replaced(payload, (*path, name), None,
                                                                   drop=True), occurence))
            found.append((f"{path} with an extra property",
                          _replaced(payload, (*path, "unexpected"), 1), form))
        if not path:
            continue
        kind = str(node.get("type"))
        found.append((f"{path} of the wrong type", _replaced(payload, path, WRONG_TYPE[kind]),
                      type_))
        if "enum" in node:
            found.append((f"{path} outside the enum",
                          _replaced(payload, path, "NotInTheEnum"), prop))
        if "maxLength" in node:
            too_long = "s" * (int(node["maxLength"]) + 1)
            found.append((f"{path} too long", _replaced(payload, path, too_long), type_))
    return found


def strategy(action: str) -> st.SearchStrategy[Any]:
    """Payloads valid for the request schema of ``action`` (JSON objects)."""
    return from_schema(_float_schema(action, "request"), codec="utf-8")


def at_every_state(action: str, payload: Any, expect: Expect, seed: int) -> None:
    """The CALL goes to a fresh charger in each state; the bench checks the answer."""
    for state in STATES:
        hostile = HostileFrames(random.Random(seed))
        bench = build(state, seed, hostile)
        uid = hostile.new_id()
        text = json.dumps([2, uid, action, payload], ensure_ascii=False)
        bench.receive(Hostile("hypothesis", text, uid, action, expect))
        bench.advance(AFTER)


@pytest.mark.parametrize("action", CS_ACTIONS)
def test_a_valid_call_is_answered_with_a_valid_result(action: str) -> None:
    @settings(SETTINGS, max_examples=EXAMPLES if action in IMPLEMENTED else FEW)
    @given(payload=strategy(action), seed=st.integers(0, 2**16))
    def check(payload: dict[str, Any], seed: int) -> None:
        # (hypothesis-jsonschema makes multiples of 0.1 by float arithmetic: 9674.300000000001
        # is no multiple of 0.1 to the oracle, rightly. Those are not valid payloads.)
        assume(not ORACLE.errors(action, "request", payload))
        at_every_state(action, payload, call_expectation(action, True), seed)

    check()


@pytest.mark.parametrize("action", CS_ACTIONS)
def test_an_invalid_call_is_answered_with_the_error_ocpp_names(action: str) -> None:
    @settings(SETTINGS, max_examples=EXAMPLES if action in IMPLEMENTED else FEW)
    @given(payload=strategy(action), pick=st.integers(0, 2**16), seed=st.integers(0, 2**16))
    def check(payload: dict[str, Any], pick: int, seed: int) -> None:
        assume(not ORACLE.errors(action, "request", payload))
        found = breakages(action, payload)
        what, broken, code = found[pick % len(found)]
        assert ORACLE.errors(action, "request", broken), f"{what} is valid: {broken}"
        at_every_state(action, broken, call_expectation(action, False, code), seed)

    check()
