"""Decode and encode OCPP 1.6 payloads, with schema failures mapped to OCPP error codes.

The second stage of the two-stage decode: ``simulator.ocpp.frames`` hands over a payload as
``msgspec.Raw``, and the action says which Struct it must become. The decoders are built once, at
import, from :data:`~simulator.ocpp.v16.registry.ACTIONS`. msgspec's validation does all of the
schema's work in one pass; when it fails, :func:`classify` reads its message (a small table of
patterns, first match wins) and picks the error code the receiver answers with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.plugin import PayloadError
from simulator.ocpp.v16.base import NOT_A_TENTH, NOT_ALLOWED, TOO_FEW_ITEMS
from simulator.ocpp.v16.registry import ACTIONS

__all__ = ["PayloadError", "classify", "decode_request", "decode_response", "encode_payload"]

_Decoders = Mapping[str, msgspec.json.Decoder[msgspec.Struct]]

_REQUEST_DECODERS: Final[_Decoders] = MappingProxyType(
    {name: msgspec.json.Decoder(spec.request) for name, spec in ACTIONS.items()}
)
_RESPONSE_DECODERS: Final[_Decoders] = MappingProxyType(
    {name: msgspec.json.Decoder(spec.response) for name, spec in ACTIONS.items()}
)
_ENCODER: Final = msgspec.json.Encoder()

_OCCURENCE: Final = ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
_TYPE: Final = ErrorCode.TYPE_CONSTRAINT_VIOLATION
_PROPERTY: Final = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
_FORMATION: Final = ErrorCode.FORMATION_VIOLATION

_RULES: Final[tuple[tuple[re.Pattern[str], ErrorCode], ...]] = tuple(
    (re.compile(pattern), code)
    for pattern, code in (
        # cardinality: a required field or array items missing
        (r"^Object missing required field ", _OCCURENCE),
        (r"^Expected `array` of length [<>]=", _OCCURENCE),
        (re.escape(TOO_FEW_ITEMS), _OCCURENCE),
        # structure: unexpected property; the payload itself not an object (no `$` path)
        (r"^Object contains unknown field ", _FORMATION),
        (r"^Expected `object`, got `\w+`$", _FORMATION),
        # data type: wrong JSON type, over-long string, malformed date-time
        (r"^Expected `str` of length [<>]=", _TYPE),
        (r"^Expected `[\w |]+`, got `\w+`", _TYPE),
        (r"^Invalid RFC3339 encoded datetime", _TYPE),
        # value: outside the enum (or the subset a message allows), range, multipleOf 0.1
        (r"^Invalid enum value ", _PROPERTY),
        (re.escape(NOT_ALLOWED), _PROPERTY),
        (re.escape(NOT_A_TENTH), _PROPERTY),
        (r"^Expected `(int|float)` (>|<|>=|<=|that is a multiple of) ", _PROPERTY),
        (r"^Number out of range", _PROPERTY),
    )
)


def classify(message: str) -> ErrorCode:
    """The OCPP error code for a msgspec ``ValidationError`` message.

    Anything the table does not know is a ``FormationViolation`` (the payload does not have the
    structure the action needs).
    """
    for pattern, code in _RULES:
        if pattern.search(message):
            return code
    return _FORMATION


def decode_request(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
    """Decode and validate a CALL payload for ``action``.

    Raises :class:`PayloadError`: ``NotImplemented`` for an action 1.6 does not have, else the
    code :func:`classify` gives (``FormationViolation`` for text that is not JSON).
    """
    decoder = _REQUEST_DECODERS.get(action)
    if decoder is None:
        raise PayloadError(ErrorCode.NOT_IMPLEMENTED, f"unknown action {action!r}")
    return _decode(decoder, raw, action)


def decode_response(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
    """Decode and validate a CALLRESULT payload answering a CALL of ``action``.

    Raises :class:`PayloadError` as :func:`decode_request` does.
    """
    decoder = _RESPONSE_DECODERS.get(action)
    if decoder is None:
        raise PayloadError(ErrorCode.NOT_IMPLEMENTED, f"unknown action {action!r}")
    return _decode(decoder, raw, f"{action} response")


def encode_payload(payload: msgspec.Struct) -> bytes:
    """Encode a payload Struct as compact UTF-8 JSON (``None`` fields left out)."""
    return _ENCODER.encode(payload)


def _decode(
    decoder: msgspec.json.Decoder[msgspec.Struct], raw: bytes | msgspec.Raw, what: str
) -> msgspec.Struct:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise PayloadError(classify(message), f"{what}: {message}") from None
    except msgspec.DecodeError as exc:
        raise PayloadError(_FORMATION, f"{what}: not valid JSON ({exc})") from None
    except UnicodeError:
        raise PayloadError(_FORMATION, f"{what}: the text is not valid UTF-8") from None
