"""The official OCPP 1.6 JSON schemas as a test oracle: is what we send valid on the wire?

``SchemaOracle`` loads the 78 schema files shipped by the PyPI ``ocpp`` package once and checks
payloads the way a strict peer does: Draft 4 validation, ``date-time`` really checked (via
``rfc3339-validator``), numbers parsed as ``Decimal`` so that ``multipleOf: 0.1`` judges ``21.4``
correctly (in a decimal context wide enough that ``1e27 % 0.1`` is exact instead of raising
``DivisionImpossible``). The schemas say nothing about the OCPP-J envelope, so
:meth:`SchemaOracle.check_frame_out` checks that by hand. Use the shared instance :data:`ORACLE`
(or the ``oracle`` fixture).
"""

from __future__ import annotations

import decimal
import importlib.resources
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft4Validator,
    FormatChecker,
)

Kind = Literal["request", "response"]
JsonPayload = bytes | str | Mapping[str, Any]

MAX_ID_LENGTH: Final = 36
ERROR_CODES_16: Final = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)
"""The ten OCPP 1.6 CALLERROR codes, 1.6 spelling."""

_EXACT: Final = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
"""A decimal context in which ``%`` on parsed JSON numbers is exact (digits are allocated as the
operands need them, not up to ``prec``)."""


def load_json(data: bytes | str) -> Any:
    """Parse JSON text the way the oracle does (floats as ``Decimal``)."""
    return json.loads(data, parse_float=decimal.Decimal)


class SchemaOracle:
    """The 78 official 1.6 schemas, ready to validate. Build once; immutable afterwards."""

    def __init__(self) -> None:
        folder = importlib.resources.files("ocpp.v16") / "schemas"
        schemas: dict[tuple[str, Kind], dict[str, Any]] = {}
        for entry in folder.iterdir():
            if not entry.name.endswith(".json"):
                continue
            stem = entry.name.removesuffix(".json")
            kind: Kind = "response" if stem.endswith("Response") else "request"
            action = stem.removesuffix("Response") if kind == "response" else stem
            schemas[(action, kind)] = load_json(entry.read_text(encoding="utf-8-sig"))
        self._schemas: Final = schemas
        checker = FormatChecker()
        self._validators: Final = {
            key: Draft4Validator(schema, format_checker=checker) for key, schema in schemas.items()
        }

    @property
    def actions(self) -> frozenset[str]:
        """Every action that has a schema (of either kind)."""
        return frozenset(action for action, _ in self._schemas)

    @property
    def files(self) -> frozenset[tuple[str, Kind]]:
        """Every schema file as ``(action, kind)``."""
        return frozenset(self._schemas)

    def schema(self, action: str, kind: Kind) -> dict[str, Any]:
        """The parsed schema (numbers as ``Decimal``); raises ``KeyError`` for an unknown file.
        Callers must not mutate it."""
        return self._schemas[(action, kind)]

    def errors(self, action: str, kind: Kind, payload: JsonPayload) -> list[str]:
        """Every way ``payload`` breaks ``<Action>[Response].json``; empty when valid.

        ``payload`` is JSON text, or an already parsed object (re-parsed through JSON with
        ``Decimal`` numbers, so floats are judged as they would be written).
        """
        if isinstance(payload, bytes | str):
            try:
                instance = load_json(payload)
            except ValueError as exc:
                return [f"{action} {kind}: not JSON ({exc})"]
        else:
            instance = load_json(json.dumps(payload, default=str))
        return self._validate(action, kind, instance)

    def _validate(self, action: str, kind: Kind, instance: Any) -> list[str]:
        """:meth:`errors` of a payload parsed by :func:`load_json` (numbers as ``Decimal``: a
        second trip through ``json.dumps`` would turn them into strings)."""
        validator = self._validators.get((action, kind))
        if validator is None:
            return [f"no schema for the {kind} of action {action!r}"]
        # jsonschema checks ``multipleOf`` with ``instance % 0.1`` in the current decimal context;
        # at the default 28 digits a valid ``1e27`` raises DivisionImpossible. Exact arithmetic
        # needs as many digits as the quotient has, so lift the limits for the validation only.
        with decimal.localcontext(_EXACT):
            found = sorted(validator.iter_errors(instance), key=lambda e: e.json_path)
        return [f"{action} {kind}: {error.message} at {error.json_path}" for error in found]

    def check_frame_out(self, data: bytes | str, pending: Mapping[str, str]) -> list[str]:
        """Every way a frame we send is wrong; empty when valid.

        A CALL's payload is checked against ``<Action>.json``; a CALLRESULT's against
        ``<Action>Response.json``, where the action is ``pending[unique_id]`` (the CALL it
        answers); a CALLERROR's envelope by hand (5 elements, a 1.6 error code, a string
        description, an object of details). Every frame: a JSON array, a known message type,
        the right length, an id that is a string of at most 36 characters.
        """
        try:
            frame = load_json(data)
        except ValueError as exc:
            return [f"frame is not JSON ({exc})"]
        if not isinstance(frame, list) or not frame:
            return [f"frame is not a non-empty JSON array: {frame!r:.80}"]
        message_type = frame[0]
        lengths = {2: 4, 3: 3, 4: 5}
        if isinstance(message_type, bool) or message_type not in lengths:
            return [f"unknown message type {message_type!r}"]
        if len(frame) != lengths[message_type]:
            return [
                f"message type {message_type} needs {lengths[message_type]} elements, "
                f"got {len(frame)}"
            ]
        problems = _check_id(frame[1])
        if problems:
            return problems
        unique_id: str = frame[1]
        if message_type == 2:
            return self._check_call(frame)
        if message_type == 3:
            action = pending.get(unique_id)
            if action is None:
                return [f"CALLRESULT {unique_id!r} answers no pending CALL"]
            if not isinstance(frame[2], dict):
                return [f"CALLRESULT payload is not an object: {frame[2]!r:.80}"]
            return self._validate(action, "response", frame[2])
        return _check_call_error(frame)

    def _check_call(self, frame: list[Any]) -> list[str]:
        action, payload = frame[2], frame[3]
        if not isinstance(action, str):
            return [f"CALL action is not a string: {action!r:.80}"]
        if action not in self.actions:
            return [f"CALL of unknown action {action!r}"]
        if not isinstance(payload, dict):
            return [f"CALL payload is not an object: {payload!r:.80}"]
        return self._validate(action, "request", payload)


def _check_id(unique_id: object) -> list[str]:
    if not isinstance(unique_id, str):
        return [f"message id is not a string: {unique_id!r:.80}"]
    if len(unique_id) > MAX_ID_LENGTH:
        return [f"message id has {len(unique_id)} characters, at most {MAX_ID_LENGTH} allowed"]
    return []


def _check_call_error(frame: list[Any]) -> list[str]:
    _, _, code, description, details = frame
    problems = []
    if not isinstance(code, str) or code not in ERROR_CODES_16:
        problems.append(f"CALLERROR code {code!r} is not a 1.6 error code")
    if not isinstance(description, str):
        problems.append(f"CALLERROR description is not a string: {description!r:.80}")
    if not isinstance(details, dict):
        problems.append(f"CALLERROR details are not an object: {details!r:.80}")
    return problems


ORACLE: Final = SchemaOracle()
"""The shared oracle (loading the schemas takes a few milliseconds; do it once)."""
