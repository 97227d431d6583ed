"""Protocol faults: what actually goes on the wire for each frame a charger's machine sends.

A :class:`ProtocolChaos` belongs to one charger (its actor). It holds the protocol injections in
force (each with the frames it may still affect and its end, ``until``), and turns every
:class:`~simulator.machines.effects.Send` of the machine into the frames that go on the wire
(:meth:`ProtocolChaos.outgoing`): the frame as it was, a changed frame, the frame followed by one
the fault adds, or nothing (a result held back). Held frames fall due later
(:meth:`ProtocolChaos.next_deadline`, :meth:`ProtocolChaos.due`). Each frame a fault made or
changed names the fault and the injection (:class:`Wire`), for the ``frame_out`` event. Pure: no
trio, no I/O; ``now`` is passed in and every random choice comes from the seeded stream it is
given (``seeds.derive(seed, identity, "chaos", "protocol")``).

Which frames a fault acts on, and what it does (``count`` of them, those of ``action`` when set;
an injection ends when its count is spent or at ``until``, whichever comes first; a frame is
affected by one injection at most, the oldest that can act on it; frames a fault made are never
affected again):

| fault               | acts on             | does                                                |
|---------------------|---------------------|-----------------------------------------------------|
| malformed_json      | CALL ¹              | text that is not JSON, its ``[type, "id"`` kept      |
| bad_message_type    | CALL ¹              | message type ``message_type`` (default 7)           |
| duplicate_id        | CALL                | the previous CALL's id (no previous CALL: waits)    |
| overlong_id         | CALL ¹              | an id of ``length`` characters (over 36)            |
| schema_violation    | CALL ¹              | payload broken one way (:mod:`.payloads`; a frame   |
|                     |                     | that cannot be broken that way is left alone)       |
| oversize_payload    | CALL ¹              | payload padded with JSON whitespace to ``bytes``    |
|                     |                     | bytes (still valid JSON and valid for its schema)   |
| concurrent_call     | CALL                | adds a CALL of ``action_name`` (a minimal valid     |
|                     |                     | payload) right after it, while it is outstanding    |
| unknown_action      | CALL                | adds a CALL of ``action_name`` with ``{}`` after it |
| unsolicited_result  | CALL                | adds a CALLRESULT ``{}`` with a new id after it     |
| late_result         | CALLRESULT          | held ``delay`` seconds, then sent                   |
| wrong_id_result     | CALLRESULT          | sent with an id the central system never used       |
| error_code_spelling | CALLERROR           | sent with the error code ``code`` (misspelt)        |

¹ With ``action`` naming an action the central system calls, the CALLRESULT the charger answers it
with instead (a charger sends no CALL of such an action).

What the charger's session believes: nothing here changes it. A CALL whose frame a fault changed
is still outstanding in the session, under the id the session gave it; the central system
answers it with a CALLERROR (under that id: its answer settles the CALL and the session's failure
path applies: an ordinary message is dropped, a transaction message retried), under another id
(duplicate_id, overlong_id: recorded as an unmatched or a broken result), or not at all
(malformed_json, bad_message_type: the CALL times out). A CALL a fault adds (concurrent_call,
unknown_action) is not the session's: its answer arrives as an unmatched result, which the
session records and ignores. A held result (late_result) goes out on the connection that is up
when it falls due, as the machine's own frames would; none up: it is lost, like any frame of a
connection that ended. The injections live as long as the charger's actor (a crash restart
starts without them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Final

import msgspec

from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection
from simulator.chaos.payloads import ViolationKind, break_payload, minimal_payload
from simulator.machines.effects import Send
from simulator.ocpp.frames import (
    EMPTY_OBJECT,
    MAX_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    Frame,
    FrameError,
    MessageType,
    decode_frame,
    encode_frame,
)
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.seeds import Rng, uuid_ids

__all__ = ["MALFORMATIONS", "ProtocolChaos", "Wire"]


class Wire(msgspec.Struct, frozen=True):
    """One frame to put on the wire: ``send``, and the protocol ``fault`` and ``injection`` id
    that made or changed it (both ``None`` for a frame as the machine made it)."""

    send: Send
    fault: str | None = None
    injection: str | None = None


def _truncated(data: bytes, head: int) -> bytes:
    del head
    return data[:-1]


def _trailing_comma(data: bytes, head: int) -> bytes:
    del head
    return data[:-1] + b",]"


def _colon_after_id(data: bytes, head: int) -> bytes:
    return data[:head] + b":" + data[head + 1:]


MALFORMATIONS: Final[dict[str, Callable[[bytes, int], bytes]]] = {
    "truncated": _truncated,
    "trailing_comma": _trailing_comma,
    "colon_after_id": _colon_after_id,
}
"""The ways ``malformed_json`` breaks a frame (one chosen per frame from the seeded stream):
each leaves the opening ``[type, "id"`` readable, so a lenient receiver can still answer, and
none parses as JSON. The second argument is the offset of the ``,`` after the id."""

_CALL_FAULTS: Final = frozenset({
    "malformed_json", "bad_message_type", "duplicate_id", "overlong_id", "schema_violation",
    "oversize_payload", "concurrent_call", "unknown_action", "unsolicited_result",
})  # fmt: skip
_ALSO_RESULTS: Final = frozenset({
    "malformed_json", "bad_message_type", "overlong_id", "schema_violation", "oversize_payload",
})  # fmt: skip
"""CALL faults that act on the CALLRESULTs of ``action`` when it is set (see the table)."""
_ACTS_ON: Final = {
    **{fault: MessageType.CALL for fault in _CALL_FAULTS},
    "late_result": MessageType.CALL_RESULT,
    "wrong_id_result": MessageType.CALL_RESULT,
    "error_code_spelling": MessageType.CALL_ERROR,
}
_CALL: Final = int(MessageType.CALL)
_HEX: Final = "0123456789abcdef"
_json: Final = msgspec.json.Encoder()


@dataclasses.dataclass(slots=True)
class _Active:
    injection: Injection
    left: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    due: float
    wire: Wire


class ProtocolChaos:
    """The protocol faults in force for one charger (see the module docstring).

    Args:
        rng: the charger's protocol chaos stream (message ids of added frames, the padding of
            over-long ids and strings, which member a schema violation breaks, which way JSON is
            malformed).
        plugin: the protocol version (payload Structs for schema violations and added CALLs).
        wall_epoch: Unix seconds at ``now == 0``, for the timestamps of added CALLs.
    """

    def __init__(
        self, rng: Rng, *, plugin: ProtocolPlugin = PLUGIN, wall_epoch: float = 0.0
    ) -> None:
        self._rng = rng
        self._new_id = uuid_ids(rng)
        self._plugin = plugin
        self._wall_epoch = wall_epoch
        self._active: list[_Active] = []
        self._held: list[_Held] = []
        self._last_call_id: str | None = None

    @property
    def active(self) -> tuple[Injection, ...]:
        """The injections in force (as of the last call that was given ``now``)."""
        return tuple(a.injection for a in self._active)

    def inject(self, injection: Injection, now: float) -> None:
        """Put a protocol fault in force from now on. Raises ``ValueError`` for a fault of
        another family (the director never sends one here). An injection already over
        (``until <= now``) or with ``count`` below 1 does nothing."""
        if injection.family != Family.PROTOCOL or injection.fault not in _ACTS_ON:
            raise ValueError(f"{injection.fault!r} is not a protocol fault")
        left = int(injection.params.get("count", 1))
        if left >= 1 and (injection.until is None or injection.until > now):
            self._active.append(_Active(injection, left))
        self._expire(now)

    def outgoing(self, send: Send, now: float) -> tuple[Wire, ...]:
        """What goes on the wire for ``send`` at ``now``, in order (empty: it is held)."""
        previous = self._last_call_id
        if send.message_type == _CALL:
            self._last_call_id = send.unique_id
        if not self._active:
            return (Wire(send),)
        self._expire(now)
        for active in self._active:
            if not self._matches(active.injection, send):
                continue
            wires = self._apply(active.injection, send, now, previous)
            if wires is None:
                continue
            active.left -= 1
            if active.left <= 0:
                self._active.remove(active)
            return wires
        return (Wire(send),)

    def next_deadline(self) -> float | None:
        """When the next held frame falls due (``None``: nothing held)."""
        if not self._held:
            return None
        return min(h.due for h in self._held)

    def due(self, now: float) -> tuple[Wire, ...]:
        """The held frames due by ``now``, in the order they fall due (and forgets them)."""
        if not self._held:
            return ()
        ready = sorted((h for h in self._held if h.due <= now), key=lambda h: h.due)
        self._held = [h for h in self._held if h.due > now]
        return tuple(h.wire for h in ready)

    # --- deciding -----------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        self._active = [a for a in self._active
                        if a.injection.until is None or a.injection.until > now]

    def _matches(self, injection: Injection, send: Send) -> bool:
        action = injection.params.get("action")
        if action is not None and send.action != action:
            return False
        kind = _ACTS_ON[injection.fault]
        if send.message_type == kind:
            return True
        return (action is not None and injection.fault in _ALSO_RESULTS
                and send.message_type == MessageType.CALL_RESULT)

    def _apply(
        self, injection: Injection, send: Send, now: float, previous: str | None
    ) -> tuple[Wire, ...] | None:
        """The frames for ``send`` under ``injection``; ``None`` when it cannot act on it."""
        params = injection.params
        fault = injection.fault

        def made(data: bytes, *, unique_id: str = send.unique_id,
                 message_type: int = send.message_type, action: str = send.action) -> Wire:
            return Wire(Send(data, message_type, unique_id, action), fault, injection.id)

        try:
            frame = decode_frame(send.data)
        except FrameError:
            return None  # not a frame of the machine's: nothing to work on
        match fault:
            case "malformed_json":
                head = len(b"[2,") + len(_json.encode(send.unique_id))
                how = self._rng.choice(sorted(MALFORMATIONS))
                return (made(MALFORMATIONS[how](send.data, head)),)
            case "bad_message_type":
                message_type = int(params.get("message_type", 7))
                data = b"[%d" % message_type + send.data[send.data.index(b","):]
                return (made(data, message_type=message_type),)
            case "duplicate_id":
                if previous is None or previous == send.unique_id:
                    return None
                return (made(_with_id(frame, previous), unique_id=previous),)
            case "overlong_id":
                length = max(int(params.get("length", 64)), MAX_ID_LENGTH + 1)
                long_id = self._longer(send.unique_id, length)
                return (made(_with_id(frame, long_id), unique_id=long_id),)
            case "schema_violation":
                return self._violate(injection, frame, send.action, made)
            case "oversize_payload":
                return (made(_padded(frame, int(params.get("bytes", 1_048_576)))),)
            case "concurrent_call" | "unknown_action":
                action = str(params.get("action_name", _DEFAULT_ACTION_NAME[fault]))
                payload = self._request(action, now) if fault == "concurrent_call" else b"{}"
                unique_id = self._new_id()
                extra = encode_frame(Call(unique_id, action, msgspec.Raw(payload)))
                return (Wire(send), made(extra, unique_id=unique_id,
                                         message_type=MessageType.CALL, action=action))
            case "unsolicited_result":
                unique_id = self._new_id()
                extra = encode_frame(CallResult(unique_id, EMPTY_OBJECT))
                return (Wire(send), made(extra, unique_id=unique_id,
                                         message_type=MessageType.CALL_RESULT, action=""))
            case "late_result":
                delay = float(params.get("delay", 30.0))
                self._held.append(_Held(now + delay, made(send.data)))
                return ()
            case "wrong_id_result":
                unique_id = self._new_id()
                return (made(_with_id(frame, unique_id), unique_id=unique_id),)
            case "error_code_spelling":
                if not isinstance(frame, CallError):
                    return None
                code = str(params.get("code", "FormatViolation"))
                return (made(encode_frame(msgspec.structs.replace(frame, error_code=code))),)
        return None

    def _violate(
        self, injection: Injection, frame: Frame, action: str, made: Callable[[bytes], Wire]
    ) -> tuple[Wire, ...] | None:
        """``frame`` (of ``action``) with its payload broken as the injection's ``kind`` says;
        ``None`` when its payload has nothing to break that way."""
        kind = ViolationKind(str(injection.params.get("kind", ViolationKind.MISSING_FIELD)))
        spec = self._plugin.actions.get(action)
        if spec is None or isinstance(frame, CallError):
            return None
        struct = spec.request if isinstance(frame, Call) else spec.response
        broken = break_payload(struct, bytes(frame.payload), kind, self._rng)
        if broken is None:
            return None
        return (made(encode_frame(_with_payload(frame, broken))),)

    def _longer(self, unique_id: str, length: int) -> str:
        """``unique_id`` (shorter than ``length``) with a ``-`` and seeded hex digits after it,
        ``length`` characters in all."""
        tail = "".join(self._rng.choice(_HEX) for _ in range(length - len(unique_id) - 1))
        return (unique_id + "-" + tail)[:length]

    def _request(self, action: str, now: float) -> bytes:
        """A minimal valid request of ``action`` (``{}`` for an action the version lacks)."""
        spec = self._plugin.actions.get(action)
        if spec is None:
            return b"{}"
        wall = dt.datetime.fromtimestamp(round(self._wall_epoch + now), dt.UTC)
        return minimal_payload(spec.request, wall)


_DEFAULT_ACTION_NAME: Final = {"concurrent_call": "Heartbeat", "unknown_action": "UnknownAction"}


def _with_id(frame: Frame, unique_id: str) -> bytes:
    return encode_frame(msgspec.structs.replace(frame, unique_id=unique_id))


def _with_payload(frame: Call | CallResult, payload: bytes) -> Call | CallResult:
    return msgspec.structs.replace(frame, payload=msgspec.Raw(payload))


def _padded(frame: Frame, size: int) -> bytes:
    """``frame`` with its payload (a CALLERROR: its details) padded after the opening brace
    with spaces to at least ``size`` bytes: the same JSON value, ``size`` bytes long."""
    raw = frame.error_details if isinstance(frame, CallError) else frame.payload
    body = bytes(raw)
    padded = b"{" + b" " * max(0, size - len(body)) + body[1:]
    if isinstance(frame, CallError):
        return encode_frame(msgspec.structs.replace(frame, error_details=msgspec.Raw(padded)))
    return encode_frame(_with_payload(frame, padded))
