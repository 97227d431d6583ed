"""Every way the official 1.6 schemas can be broken is refused, with the code OCPP-J §4.2.3 names.

For each of the 78 schema files shipped by the PyPI ``ocpp`` package, a full valid payload is built
from the schema itself (every optional field present, arrays with one item), and then broken in one
place at a time, at every depth the schema has:

| breakage                                   | 1.6 error code               |
|--------------------------------------------|------------------------------|
| a required field missing                   | OccurenceConstraintViolation |
| a required array (``minItems: 1``) empty   | OccurenceConstraintViolation |
| a field of the wrong JSON type             | TypeConstraintViolation      |
| an integer with a fraction                 | TypeConstraintViolation      |
| a string longer than its ``maxLength``     | TypeConstraintViolation      |
| a malformed ``date-time``                  | TypeConstraintViolation      |
| a value outside the enum                   | PropertyConstraintViolation  |
| a limit that is no multiple of 0.1         | PropertyConstraintViolation  |
| a property the schema does not have        | FormationViolation           |
| a payload that is not a JSON object        | FormationViolation           |

Each broken payload is first shown to be invalid by the oracle (so the case really breaks the
official schema), then fed to ``decode_request`` / ``decode_response``, which must raise
``PayloadError`` with the expected code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, Final

import pytest

from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.v16 import ACTIONS, PayloadError, decode_request, decode_response
from tests.oracle import ORACLE, Kind

OCC: Final = ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
TYPE: Final = ErrorCode.TYPE_CONSTRAINT_VIOLATION
PROP: Final = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
FORM: Final = ErrorCode.FORMATION_VIOLATION

FILES: Final = sorted(ORACLE.files)
Path = tuple[str | int, ...]
Case = tuple[str, Any, ErrorCode]
"""(what was broken, where; the broken payload; the code the decoder must give)."""

VALID_DATE_TIME: Final = "2026-01-02T03:04:05Z"
VALID_URI: Final = "ftp://files.example.com/upload/cp-1"
NOT_A_MEMBER: Final = "NotInTheEnum"
EXTRA: Final = "unexpectedProperty"


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        resolved: dict[str, Any] = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
        node = resolved
    return node


def full_example(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid instance of ``node`` with every optional property present."""
    node = _resolve(node, root)
    if "enum" in node:
        return node["enum"][-1]
    match node.get("type"):
        case "object":
            properties = node.get("properties", {})
            return {name: full_example(sub, root) for name, sub in properties.items()}
        case "array":
            return [full_example(node["items"], root)]
        case "string":
            return {"date-time": VALID_DATE_TIME, "uri": VALID_URI}.get(node.get("format"), "s")
        case "integer" | "number":
            return 3
        case "boolean":
            return True
    raise AssertionError(f"schema node the generator does not know: {node}")


def _walk(
    node: dict[str, Any], root: dict[str, Any], path: Path
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every (path, resolved schema) of the full example, the payload itself included."""
    node = _resolve(node, root)
    yield path, node
    if node.get("type") == "object":
        for name, sub in node.get("properties", {}).items():
            yield from _walk(sub, root, (*path, name))
    elif node.get("type") == "array":
        yield from _walk(node["items"], root, (*path, 0))


def _replaced(payload: Any, path: Path, value: Any) -> Any:
    broken = copy.deepcopy(payload)
    *parents, last = path
    target = broken
    for step in parents:
        target = target[step]
    target[last] = value
    return broken


def _removed(payload: Any, path: Path) -> Any:
    broken = copy.deepcopy(payload)
    *parents, last = path
    target = broken
    for step in parents:
        target = target[step]
    del target[last]
    return broken


WRONG_TYPE: Final[dict[str, Any]] = {
    "string": 42,
    "integer": "3",
    "number": "3.0",
    "boolean": "true",
    "object": "{}",
    "array": {"0": "s"},
}


def cases(action: str, kind: Kind) -> dict[str, list[Case]]:
    """The broken payloads of one schema file, by breakage."""
    root = ORACLE.schema(action, kind)
    payload = full_example(root, root)
    found: dict[str, list[Case]] = {
        "missing-required": [],
        "empty-array": [],
        "wrong-type": [],
        "fractional-integer": [],
        "over-long-string": [],
        "bad-date-time": [],
        "outside-enum": [],
        "not-a-tenth": [],
        "extra-property": [],
        "not-an-object": [("payload", value, FORM) for value in ([], "{}", 7, None, True)],
    }
    for path, node in _walk(root, root, ()):
        where = "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)
        kind_of = node.get("type")
        if kind_of == "object":
            found["extra-property"].append(
                (
                    where,
                    _replaced(payload, (*path, EXTRA), 1) if path else {**payload, EXTRA: 1},
                    FORM,
                )
            )
            for name in node.get("required", []):
                found["missing-required"].append(
                    (f"{where}.{name}", _removed(payload, (*path, name)), OCC)
                )
        if not path:
            continue
        found["wrong-type"].append((where, _replaced(payload, path, WRONG_TYPE[kind_of]), TYPE))
        if "enum" in node:
            found["outside-enum"].append((where, _replaced(payload, path, NOT_A_MEMBER), PROP))
        if kind_of == "string" and "maxLength" in node:
            too_long = "s" * (int(node["maxLength"]) + 1)
            found["over-long-string"].append((where, _replaced(payload, path, too_long), TYPE))
        if node.get("format") == "date-time":
            for text in ("2026-13-02T03:04:05Z", "yesterday", "2026-01-02"):
                found["bad-date-time"].append((where, _replaced(payload, path, text), TYPE))
        if kind_of == "integer":
            found["fractional-integer"].append((where, _replaced(payload, path, 2.5), TYPE))
        if "multipleOf" in node:
            for number in (0.05, 21.45, 1e-7):
                found["not-a-tenth"].append((where, _replaced(payload, path, number), PROP))
        if kind_of == "array" and node.get("minItems", 0) >= 1:
            found["empty-array"].append((where, _replaced(payload, path, []), OCC))
    return {breakage: found_cases for breakage, found_cases in found.items() if found_cases}


CASES: Final = {(action, kind): cases(action, kind) for action, kind in FILES}
PARAMS: Final = [
    pytest.param(action, kind, breakage, id=f"{action}-{kind}-{breakage}")
    for (action, kind), by_breakage in sorted(CASES.items())
    for breakage in by_breakage
]


def _decode(action: str, kind: Kind, text: str) -> object:
    decode = decode_request if kind == "request" else decode_response
    return decode(action, text.encode())


@pytest.mark.parametrize(("action", "kind"), FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_the_full_example_is_valid_and_decodes(action: str, kind: Kind) -> None:
    schema = ORACLE.schema(action, kind)
    text = json.dumps(full_example(schema, schema))
    assert ORACLE.errors(action, kind, text) == []
    _decode(action, kind, text)


@pytest.mark.parametrize(("action", "kind", "breakage"), PARAMS)
def test_broken_payload_is_rejected_with_the_right_code(
    action: str, kind: Kind, breakage: str
) -> None:
    wrong: list[str] = []
    for where, payload, code in CASES[(action, kind)][breakage]:
        text = json.dumps(payload)
        assert ORACLE.errors(action, kind, text), f"{where}: the case is valid: {text}"
        try:
            decoded = _decode(action, kind, text)
        except PayloadError as exc:
            if exc.code is not code:
                wrong.append(f"{where}: {exc.code}, expected {code} ({exc.reason})")
        else:
            wrong.append(f"{where}: accepted {text} as {decoded!r}")
    assert wrong == []


def test_every_file_gets_the_breakages_its_schema_allows() -> None:
    assert len(FILES) == 78
    for key, by_breakage in CASES.items():
        assert {"extra-property", "not-an-object"} <= by_breakage.keys(), key
    everything = {breakage for by_breakage in CASES.values() for breakage in by_breakage}
    assert everything == {
        "missing-required",
        "empty-array",
        "wrong-type",
        "fractional-integer",
        "over-long-string",
        "bad-date-time",
        "outside-enum",
        "not-a-tenth",
        "extra-property",
        "not-an-object",
    }


@pytest.mark.parametrize("text", ["{", "{'status':'Accepted'}", "", "}{", '{"a":1,}'])
def test_text_that_is_not_json_is_a_formation_violation(text: str) -> None:
    for decode in (decode_request, decode_response):
        with pytest.raises(PayloadError) as caught:
            decode("Heartbeat", text.encode())
        assert caught.value.code is FORM


@pytest.mark.parametrize("action", ["SetDisplayMessage", "heartbeat", "", "Heartbeat "])
def test_an_unknown_action_is_not_implemented(action: str) -> None:
    for decode in (decode_request, decode_response):
        with pytest.raises(PayloadError) as caught:
            decode(action, b"{}")
        assert caught.value.code is ErrorCode.NOT_IMPLEMENTED


def test_every_schema_action_is_registered_with_request_and_response() -> None:
    kinds = {action: {k for a, k in ORACLE.files if a == action} for action in ORACLE.actions}
    assert all(found == {"request", "response"} for found in kinds.values()), kinds
    assert len(ORACLE.actions) == 39
    assert sorted(ACTIONS) == sorted(ORACLE.actions)
    for action, spec in ACTIONS.items():
        assert spec.action == action
        assert spec.request.__name__ == f"{action}Request"
        assert spec.response.__name__ == f"{action}Response"
