"""The OCPP-J RPC envelope: CALL, CALLRESULT and CALLERROR as one msgspec tagged union.

A frame is a JSON array whose first element is the message type (2, 3 or 4), which is exactly a
msgspec ``array_like`` Struct with an integer tag. Payloads stay ``msgspec.Raw`` so that a second
stage decodes them by action (see ``simulator.ocpp.v16.codec``).

``decode_frame`` takes the fast typed path first; only when that fails does it look at the frame
again, slowly, to say precisely what is wrong: the :class:`FrameError` it raises carries the 1.6
error code a receiver answers with, the message id when it could be read, and whether a CALLERROR
reply is due at all (only a CALL is ever answered). A frame nested deeper than the decoder can
follow (about a thousand levels, Python's recursion limit) is a FormationViolation; its message
type and id are then read from its first bytes, so that a CALL is still answered.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Final

import msgspec

MAX_ID_LENGTH: Final = 36
"""OCPP-J message ids are strings of at most 36 characters (a uuid4 string is exactly 36)."""

EMPTY_OBJECT: Final = msgspec.Raw(b"{}")


class MessageType(enum.IntEnum):
    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4


class ErrorCode(enum.StrEnum):
    """The ten OCPP 1.6 CALLERROR codes, in their 1.6 spelling (errata keeps ``Occurence``)."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"

    @classmethod
    def parse(cls, text: str) -> ErrorCode:
        """Map any received code string to a 1.6 code: known spellings of 2.x map to their 1.6
        twin, anything unknown becomes ``GenericError`` (a CP must accept any string)."""
        try:
            return cls(text)
        except ValueError:
            return _FOREIGN_SPELLINGS.get(text, cls.GENERIC_ERROR)


_FOREIGN_SPELLINGS: Final = {
    "FormatViolation": ErrorCode.FORMATION_VIOLATION,
    "OccurrenceConstraintViolation": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "RpcFrameworkError": ErrorCode.FORMATION_VIOLATION,
    "MessageTypeNotSupported": ErrorCode.NOT_IMPLEMENTED,
}

MessageId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]


class Call(msgspec.Struct, array_like=True, tag=2, frozen=True, forbid_unknown_fields=True):
    """``[2, "<id>", "<Action>", {payload}]``."""

    unique_id: MessageId
    action: str
    payload: msgspec.Raw

    message_type = MessageType.CALL


class CallResult(msgspec.Struct, array_like=True, tag=3, frozen=True, forbid_unknown_fields=True):
    """``[3, "<id>", {payload}]``."""

    unique_id: MessageId
    payload: msgspec.Raw

    message_type = MessageType.CALL_RESULT


class CallError(msgspec.Struct, array_like=True, tag=4, frozen=True, forbid_unknown_fields=True):
    """``[4, "<id>", "<errorCode>", "<description>", {details}]``.

    ``error_code`` is kept as received (any string); :meth:`ErrorCode.parse` interprets it.
    Fields have no defaults on purpose: a frame with missing elements must not decode.
    """

    unique_id: MessageId
    error_code: str
    error_description: str
    error_details: msgspec.Raw

    message_type = MessageType.CALL_ERROR


Frame = Call | CallResult | CallError

_FRAME_LENGTHS: Final = {MessageType.CALL: 4, MessageType.CALL_RESULT: 3, MessageType.CALL_ERROR: 5}


class FrameError(Exception):
    """A frame that could not be decoded ("the peer broke it").

    Attributes:
        code: the 1.6 error code the receiver answers with.
        unique_id: the message id, when it could be read; else ``None``.
        message_type: the message type, when it could be read; else ``None``.
        reason: one line saying what is wrong, fit for a log or a CALLERROR description.
    """

    def __init__(
        self,
        code: ErrorCode,
        reason: str,
        *,
        unique_id: str | None = None,
        message_type: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.unique_id = unique_id
        self.message_type = message_type

    @property
    def should_reply(self) -> bool:
        """Only a CALL whose id could be read is answered with a CALLERROR; a broken result or
        error, or a frame of unknown type, is only recorded (OCPP-J: unknown types are ignored)."""
        return self.message_type == MessageType.CALL and self.unique_id is not None

    def to_call_error(self) -> CallError:
        """The CALLERROR that answers the broken CALL (requires :attr:`should_reply`)."""
        if self.unique_id is None:
            raise ValueError("a CALLERROR needs the id of the CALL it answers")
        return CallError(self.unique_id, self.code, self.reason[:255], EMPTY_OBJECT)


_frame_decoder: Final = msgspec.json.Decoder(Frame)
_any_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


BINARY_FRAME: Final = "binary frame: OCPP-J is text only; ignored"
"""The violation recorded on a binary WebSocket frame (never decoded, never answered)."""
BINARY_PREVIEW: Final = 64
"""Bytes of a binary frame shown where it is recorded (:func:`binary_preview`)."""


def binary_preview(data: bytes) -> str:
    """How a binary frame is recorded: its length and its first :data:`BINARY_PREVIEW` bytes,
    printable (a megabyte frame stays one short line)."""
    shown = repr(bytes(data[:BINARY_PREVIEW])) + ("…" if len(data) > BINARY_PREVIEW else "")
    return f"(binary, {len(data)} bytes) {shown}"


def decode_frame(data: bytes | str) -> Frame:
    """Decode one OCPP-J frame, or raise :class:`FrameError` saying what is wrong.

    The payload (and a CALLERROR's details) are returned undecoded as ``msgspec.Raw``; they are
    guaranteed to be JSON objects.
    """
    try:
        frame: Frame = _frame_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise _diagnose(data) from None
    except UnicodeError:  # a str with lone surrogates cannot be UTF-8 on any wire
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "the frame is not valid UTF-8") from None
    except RecursionError:
        raise _too_deep(data) from None
    # A decoded Raw holds one whole JSON value, no surrounding whitespace: its first byte says
    # whether it is an object (``{`` is 0x7B). Cheaper than any decode of the payload.
    raw = frame.error_details if isinstance(frame, CallError) else frame.payload
    if memoryview(raw)[0] != 0x7B:
        raise _diagnose(data)
    return frame


def encode_frame(frame: Frame) -> bytes:
    """Encode a frame as compact UTF-8 JSON text."""
    return _encoder.encode(frame)


def _diagnose(data: bytes | str) -> FrameError:
    """Slow path: say precisely why ``data`` is not a valid frame."""
    fe = ErrorCode.FORMATION_VIOLATION
    te = ErrorCode.TYPE_CONSTRAINT_VIOLATION
    try:
        value = _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        return FrameError(fe, f"not valid JSON ({exc})")
    except RecursionError:
        return _too_deep(data)
    if not isinstance(value, list):
        return FrameError(fe, f"a frame must be a JSON array, got {_json_type(value)}")
    if not value or not isinstance(value[0], int) or isinstance(value[0], bool):
        return FrameError(fe, "the first element must be an integer message type")
    message_type = value[0]
    if message_type not in _FRAME_LENGTHS:
        return FrameError(fe, f"unknown message type {message_type}", message_type=message_type)
    if len(value) < 2:
        return FrameError(fe, "the frame has no message id", message_type=message_type)
    raw_id = value[1]
    if not isinstance(raw_id, str):
        return FrameError(
            te,
            f"the message id must be a string, got {_json_type(raw_id)}",
            message_type=message_type,
        )
    if len(raw_id) > MAX_ID_LENGTH:
        return FrameError(
            te,
            f"the message id is {len(raw_id)} characters, at most {MAX_ID_LENGTH} allowed",
            unique_id=raw_id,
            message_type=message_type,
        )

    def error(code: ErrorCode, reason: str) -> FrameError:
        return FrameError(code, reason, unique_id=raw_id, message_type=message_type)

    expected = _FRAME_LENGTHS[MessageType(message_type)]
    if len(value) != expected:
        return error(
            fe, f"a message of type {message_type} has {expected} elements, got {len(value)}"
        )
    if message_type == MessageType.CALL and not isinstance(value[2], str):
        return error(te, "the action must be a string")
    if message_type == MessageType.CALL_ERROR:
        if not isinstance(value[2], str):
            return error(te, "the error code must be a string")
        if not isinstance(value[3], str):
            return error(te, "the error description must be a string")
    if not isinstance(value[-1], dict):
        what = "error details" if message_type == MessageType.CALL_ERROR else "payload"
        return error(fe, f"the {what} must be a JSON object, got {_json_type(value[-1])}")
    return error(fe, "the frame does not have the OCPP-J shape")


_HEAD: Final = re.compile(r'\A\s*\[\s*(0|[1-9]\d{0,2})\s*,\s*("(?:[^"\\\x00-\x1f]|\\.){0,100}")')
"""A frame's opening: ``[<message type>, "<message id>"``."""
_HEAD_BYTES: Final = 512
_string_decoder: Final = msgspec.json.Decoder(str)


def _too_deep(data: bytes | str) -> FrameError:
    """The error for a frame nested too deep to decode, with the message type and id read from
    its first bytes when they have the OCPP-J shape."""
    reason = "the frame nests too deep to decode"
    head = data[:_HEAD_BYTES]
    text = head.decode(errors="replace") if isinstance(head, bytes) else head
    match = _HEAD.match(text)
    if match is None:
        return FrameError(ErrorCode.FORMATION_VIOLATION, reason)
    try:
        unique_id = _string_decoder.decode(match[2])
    except msgspec.DecodeError:
        return FrameError(ErrorCode.FORMATION_VIOLATION, reason)
    return FrameError(ErrorCode.FORMATION_VIOLATION, reason, message_type=int(match[1]),
                      unique_id=unique_id)


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return type(value).__name__
