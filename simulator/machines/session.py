"""The OCPP-J session of one charge point: the RPC layer between the charger logic and the wire.

Rules (OCPP-J 1.6 specification §4 and the 1.6 core specification §4):

- One outstanding CALL of ours at a time, answered within ``call_timeout`` seconds or failed.
  Incoming CALLs are decoded and handed to the charger at once, whatever we wait for.
- Two queues feed the wire. *Ordinary* messages (BootNotification, Heartbeat, Authorize,
  StatusNotification, triggered or clock-aligned MeterValues without a transaction, DataTransfer)
  go first and are dropped after one failure (CALLERROR, timeout, invalid result, lost
  connection). *Transaction* messages (StartTransaction, StopTransaction, a transaction's
  MeterValues) wait in one FIFO, the outbox: only the head is ever in flight, it survives
  disconnects (a disconnect is not a failure) and crashes (the outbox is exported and restored),
  and a failure is retried up to ``attempts`` sends in total, waiting ``retry_interval`` * (sends
  so far) before each resend, each with a new message id. The outbox moves only while
  ``transactions_enabled`` (the charger opens it once the boot is Accepted). A security event
  waits in the outbox too (it must survive offline), but one the CS answers NotImplemented or
  NotSupported is dropped at once: a CS without the Security extension never holds the
  transaction messages behind it.
- Write-ahead (with ``stored_through``): a transaction message goes on the wire only once a
  snapshot holding it was reported stored (:meth:`Session.stored`), and it leaves the outbox only
  when its CALLRESULT arrives; so after a kill the CS may get a message twice (resent with a new
  id), never zero times.
- A transaction's StopTransaction and MeterValues carry the CS's ``transactionId``, which is only
  known once StartTransaction is answered: until then it is left out of the stored payload and
  filled in when the message is sent. A message whose StartTransaction was given up on is
  dropped, never sent with a made-up id.
- Bad input never raises: a broken CALL gets the CALLERROR its decoder names (unknown action →
  NotImplemented; an action we only send, or one of a profile we do not support → NotSupported;
  payload errors → the PayloadError's code); a broken or unmatched result is recorded.

The session speaks to the charger through *outcomes* (:mod:`simulator.machines.outcomes`:
:class:`IncomingCall`, :class:`CallAnswered`, :class:`CallFailed`) collected until
:meth:`Session.take_outcomes`, and to the actor through effects collected until
:meth:`Session.take_effects`. Actions, their directions and profiles, and the payload codec come
from the version's :class:`~simulator.ocpp.plugin.ProtocolPlugin`.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from simulator.events import (
    CallTimedOut,
    FrameIn,
    MessageDropped,
    Note,
    UnmatchedResult,
)
from simulator.machines.configuration import redact
from simulator.machines.effects import Effect, OutboxEntry, PersistOutbox, Publish, Send
from simulator.machines.outcomes import (
    CallAnswered,
    CallFailed,
    IncomingCall,
    Outcome,
    OutgoingCall,
)
from simulator.ocpp.frames import (
    BINARY_FRAME,
    EMPTY_OBJECT,
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameError,
    MessageType,
    binary_preview,
    decode_frame,
    encode_frame,
)
from simulator.ocpp.plugin import Direction, PayloadError, ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN, ChangeConfigurationRequest

DEFAULT_CALL_TIMEOUT: Final = 30.0
"""Seconds we wait for the result of one of our CALLs."""

TRANSACTION_ID_ACTIONS: Final = frozenset({"StopTransaction", "MeterValues"})
"""Queued actions whose payload carries the CS's ``transactionId``."""
_TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", *TRANSACTION_ID_ACTIONS})
_UNIMPLEMENTED: Final = frozenset({ErrorCode.NOT_IMPLEMENTED, ErrorCode.NOT_SUPPORTED})
"""CALLERROR codes that say the CS does not implement the action at all."""

_NOT_UTF8: Final = "the frame is not valid UTF-8"
_members_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
"""A payload's top-level members, each value kept as its encoded text (nothing nested is
decoded, and encoding them again gives the same bytes)."""
_json_encoder: Final = msgspec.json.Encoder()
_SECRET_KEY: Final = re.compile(r"authorizationkey", re.IGNORECASE)
"""A frame that names the write-only key may carry its value."""
_VALUE: Final = re.compile(r'("value"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)', re.IGNORECASE)
"""A JSON string under a ``value`` member (or what is left of one in a cut frame)."""


def redact_frame(raw: str) -> str:
    """``raw`` as it may be recorded: a frame that names ``AuthorizationKey`` (in any case,
    decodable or not: a CALL with an extra member or an over-long value is refused, but its
    value may still be a real key), or a ChangeConfiguration that escapes characters (it may
    spell the key with JSON's unicode escapes), has every ``value`` string replaced by ``"***"``."""
    if _SECRET_KEY.search(raw) is None and not (
            "\\u" in raw and "changeconfiguration" in raw.lower()):
        return raw
    return _VALUE.sub(r'\1"***"', raw)


def _utf8(data: bytes | str) -> tuple[str, bytes | str | None]:
    """A received frame as text (broken UTF-8 replaced by U+FFFD) and as it may be decoded:
    ``data`` itself when it is valid UTF-8, else ``None``."""
    if isinstance(data, str):
        if data.isascii():
            return data, data
        try:
            data.encode()
        except UnicodeEncodeError:  # lone surrogates
            return data.encode(errors="replace").decode(), None
        return data, data
    try:
        return data.decode(), data
    except UnicodeDecodeError:
        return data.decode(errors="replace"), None


def _without_transaction_id(payload: bytes) -> bytes:
    """An encoded payload with its ``transactionId`` member left out (``payload`` itself when
    it has none, e.g. a MeterValues built without one)."""
    if b'"transactionId"' not in payload:
        return payload
    members = _members_decoder.decode(payload)
    members.pop("transactionId", None)
    return _json_encoder.encode(members)


def _with_transaction_id(payload: str, tx_id: int) -> bytes:
    """An encoded payload with ``"transactionId": tx_id`` set (added as its last member)."""
    members = _members_decoder.decode(payload)
    members["transactionId"] = msgspec.Raw(b"%d" % tx_id)
    return _json_encoder.encode(members)


@dataclasses.dataclass(frozen=True, slots=True)
class IdOverride:
    """A deliberate breach (a ``stale_transaction_id`` or ``missing_transaction_id`` fault of
    ``injection``): the next transaction message sent that carries a ``transactionId`` carries
    ``transaction_id`` instead. One frame: a resend of that message carries the true id."""

    transaction_id: int
    fault: str
    injection: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Queued:
    request: msgspec.Struct
    context: object


# --- the session -------------------------------------------------------------------------------


class Session:
    """The RPC state of one charge point (see the module docstring for the rules).

    Args:
        charger: the charge point identity (used in events).
        new_id: makes message ids (at most 36 characters, unique).
        supported_profiles: feature profiles whose CS→CP actions the charger implements; a CALL
            of another profile is answered NotSupported.
        call_timeout: seconds to wait for a result.
        outbox: transaction messages restored from a previous run (see :meth:`export_outbox`).
        effects: the list effects are appended to (share the owner's list to keep one order);
            a new one by default.
        plugin: the protocol version: its action table (direction and profile of each action),
            payload codec and action names. OCPP 1.6 by default.
        stored_through: write-ahead: the highest ``seq`` already stored (a restored outbox is);
            ``None`` sends messages without waiting for storage.
        next_seq: the lowest ``seq`` the next queued message may take (seqs never repeat).
        transaction_ids: the CS's ids of local transactions known from before (restarts).
    """

    def __init__(
        self,
        charger: str,
        *,
        new_id: Callable[[], str],
        supported_profiles: Iterable[enum.StrEnum],
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        outbox: Iterable[OutboxEntry] = (),
        effects: list[Effect] | None = None,
        plugin: ProtocolPlugin = PLUGIN,
        stored_through: int | None = None,
        next_seq: int = 1,
        transaction_ids: Mapping[int, int] | None = None,
    ) -> None:
        self.charger = charger
        self.call_timeout = call_timeout
        self.attempts = 3
        """TransactionMessageAttempts: sends in total before a transaction message is dropped."""
        self.retry_interval = 60.0
        """TransactionMessageRetryInterval, seconds."""
        self.transactions_enabled = False
        """Whether the outbox may move (the charger sets it once the boot is Accepted)."""
        self.online = False
        self.silent = False
        """While set (the charger's boot is Rejected) no CALL of the CS is answered, not even
        with a CALLERROR: what comes in is still recorded."""
        self.last_sent: float | None = None
        """When we last put a frame on the wire (liveness for the heartbeat)."""
        self.id_override: IdOverride | None = None
        """A transactionId the next transaction message carrying one is sent with instead of
        its own (a behaviour fault; used up by that message)."""
        self._plugin = plugin
        self._new_id = new_id
        self._profiles = frozenset(supported_profiles)
        self._pending: OutgoingCall | None = None
        # Lists: both queues are nearly always empty or short.
        self._calls: list[_Queued] = []
        self._outbox: list[OutboxEntry] = list(outbox)
        self._retry_at: float | None = None
        self._next_seq = max(max((e.seq for e in self._outbox), default=0) + 1, next_seq)
        self._stored_through = stored_through
        self._tx_ids: dict[int, int] = dict(transaction_ids or {})
        self._tx_ids |= {
            e.local_tx: e.transaction_id
            for e in self._outbox
            if e.local_tx is not None and e.transaction_id is not None
        }
        self._effects: list[Effect] = effects if effects is not None else []
        self._outcomes: list[Outcome] = []

    # --- inspection ---------------------------------------------------------------------------

    @property
    def pending(self) -> OutgoingCall | None:
        """Our outstanding CALL, if any."""
        return self._pending

    @property
    def idle(self) -> bool:
        """True when nothing of ours is in flight or waiting to go."""
        return self._pending is None and not self._calls and not self._outbox

    def export_outbox(self) -> tuple[OutboxEntry, ...]:
        """The transaction queue, head first: pass it back as ``outbox`` to resume."""
        return tuple(self._outbox)

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next queued transaction message takes."""
        return self._next_seq

    def transaction_id(self, local_tx: int) -> int | None:
        """The CS's id for a local transaction, once StartTransaction was answered."""
        return self._tx_ids.get(local_tx)

    def queued_actions(self) -> list[str]:
        """Actions waiting in the ordinary queue (for tests and statistics)."""
        return [self._plugin.action_of(q.request) for q in self._calls]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called: a result timeout or a retry time."""
        if self._pending is not None:
            return self._pending.sent_at + self.call_timeout
        if self.online and self.transactions_enabled and self._outbox and not self._calls:
            return self._retry_at
        return None

    def take_effects(self) -> list[Effect]:
        """Hand over (and forget) the effects collected so far."""
        effects = list(self._effects)
        self._effects.clear()
        return effects

    def take_outcomes(self) -> list[Outcome]:
        """Hand over (and forget) the outcomes collected so far."""
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    # --- connection ---------------------------------------------------------------------------

    def connected(self, now: float) -> None:
        """The transport is up: queued messages may go (subject to the gates)."""
        self.online = True
        self._pump(now)

    def disconnected(self, now: float) -> None:
        """The transport is down. An ordinary CALL in flight and the ordinary queue are dropped
        (CallFailed, final); a transaction message in flight stays at the head of the outbox
        with its attempts unchanged (it is resent with a new id after reconnecting). A retry
        wait in progress is kept: reconnecting does not shorten TransactionMessageRetryInterval."""
        self.online = False
        pending, self._pending = self._pending, None
        if pending is not None and pending.entry is None:
            self._drop_ordinary(pending, now, "connection lost", attempts=1)
        while self._calls:
            queued = self._calls.pop(0)
            action = self._plugin.action_of(queued.request)
            call = OutgoingCall("", action, now, queued.request, queued.context)
            self._drop_ordinary(call, now, "connection lost", attempts=0)

    # --- our CALLs ----------------------------------------------------------------------------

    def call(self, request: msgspec.Struct, now: float, *, context: object = None) -> None:
        """Send an ordinary message as soon as nothing is in flight. Offline, it fails at once
        (CallFailed, final), as it would have been lost anyway."""
        queued = _Queued(request, context)
        if not self.online:
            call = OutgoingCall("", self._plugin.action_of(request), now, request, context)
            self._drop_ordinary(call, now, "offline", attempts=0)
            return
        self._calls.append(queued)
        self._pump(now)

    def enqueue_transaction(
        self, request: msgspec.Struct, now: float, *, local_tx: int | None
    ) -> OutboxEntry:
        """Queue a transaction message behind the outbox; it keeps its own timestamps.

        For StopTransaction and MeterValues, ``local_tx`` names the transaction: its
        ``transactionId`` is replaced by the CS's id when known, else left out until sent (a
        placeholder in ``request`` is never sent).
        """
        action = self._plugin.action_of(request)
        tx_id = None
        if local_tx is not None and action in TRANSACTION_ID_ACTIONS:
            tx_id = self._tx_ids.get(local_tx)
            payload = _without_transaction_id(self._plugin.encode_payload(request))
        else:
            payload = self._plugin.encode_payload(request)
        entry = OutboxEntry(
            seq=self._next_seq,
            action=action,
            payload=payload.decode(),
            local_tx=local_tx,
            transaction_id=tx_id,
        )
        self._next_seq += 1
        self._outbox.append(entry)
        self._persist()
        self._pump(now)
        return entry

    def pump(self, now: float) -> None:
        """Send the next message if the gates allow it (after a gate changed)."""
        self._pump(now)

    def stored(self, through: int, now: float) -> None:
        """Write-ahead: a snapshot holding every message up to ``seq == through`` is stored, so
        they may go on the wire. Ignored without write-ahead."""
        if self._stored_through is not None and through > self._stored_through:
            self._stored_through = through
            self._pump(now)

    def _pump(self, now: float) -> None:
        if not self.online or self._pending is not None:
            return
        if self._calls:
            queued = self._calls.pop(0)
            action = self._plugin.action_of(queued.request)
            unique_id = self._new_id()
            self._pending = OutgoingCall(unique_id, action, now, queued.request, queued.context)
            self._send_call(unique_id, action, self._plugin.encode_payload(queued.request), now)
            return
        if not self.transactions_enabled:
            return
        while self._outbox and (self._retry_at is None or now >= self._retry_at):
            entry = self._outbox[0]
            if self._stored_through is not None and entry.seq > self._stored_through:
                return  # not stored yet: stored() sends it
            payload = self._payload_for(entry)
            if payload is None:
                self._outbox.pop(0)
                self._persist()
                reason = "its StartTransaction was never answered, so it has no transactionId"
                self._publish_dropped(now, entry.action, entry.attempts, reason)
                continue
            unique_id = self._new_id()
            override = self.id_override
            if override is not None and entry.local_tx is not None \
                    and entry.action in TRANSACTION_ID_ACTIONS:
                self.id_override = None
                payload = _with_transaction_id(entry.payload, override.transaction_id)
                self._publish(Note(t=now, charger=self.charger, what="fault_applied",
                                   data={"fault": override.fault,
                                         "injection": override.injection,
                                         "unique_id": unique_id, "action": entry.action,
                                         "transaction_id": override.transaction_id}))
            entry = msgspec.structs.replace(entry, unique_id=unique_id)
            self._outbox[0] = entry
            self._persist()
            self._pending = OutgoingCall(unique_id, entry.action, now, entry=entry)
            self._retry_at = None
            self._send_call(unique_id, entry.action, payload, now)
            return

    def _payload_for(self, entry: OutboxEntry) -> bytes | None:
        """The payload to send, with the transactionId filled in; None if it can never be."""
        if entry.local_tx is None or entry.action not in TRANSACTION_ID_ACTIONS:
            return entry.payload.encode()
        tx_id = entry.transaction_id
        if tx_id is None:
            tx_id = self._tx_ids.get(entry.local_tx)
        if tx_id is None:
            # FIFO order: the transaction's StartTransaction went ahead and was given up on.
            return None
        return _with_transaction_id(entry.payload, tx_id)

    def _send_call(self, unique_id: str, action: str, payload: bytes, now: float) -> None:
        frame = Call(unique_id, action, msgspec.Raw(payload))
        self._emit(encode_frame(frame), MessageType.CALL, unique_id, action, now)

    def _emit(
        self, data: bytes, message_type: int, unique_id: str, action: str, now: float
    ) -> None:
        self.last_sent = now
        self._effects.append(Send(data, message_type, unique_id, action))

    # --- their CALLs --------------------------------------------------------------------------

    def reply(self, incoming: IncomingCall, response: msgspec.Struct, now: float) -> None:
        """Answer an incoming CALL with a CALLRESULT. Offline the answer is not sent: the socket
        that carried the CALL is gone. Nothing while ``silent``."""
        if not self.online or self.silent:
            return
        frame = CallResult(incoming.unique_id, msgspec.Raw(self._plugin.encode_payload(response)))
        self._emit(encode_frame(frame), MessageType.CALL_RESULT, incoming.unique_id,
                   incoming.action, now)

    def reply_error(
        self, unique_id: str, action: str, code: ErrorCode, description: str, now: float
    ) -> None:
        """Answer an incoming CALL with a CALLERROR (not while ``silent``)."""
        if not self.online or self.silent:
            return
        frame = CallError(unique_id, code, description[:255], EMPTY_OBJECT)
        self._emit(encode_frame(frame), MessageType.CALL_ERROR, unique_id, action, now)

    # --- input --------------------------------------------------------------------------------

    def receive(self, data: bytes | str, now: float) -> None:
        """Take one frame from the CS. Never raises: every problem becomes a CALLERROR reply
        and/or a violation recorded on the ``FrameIn`` event."""
        raw, valid = _utf8(data)
        try:
            frame = decode_frame(raw.encode() if valid is None else valid)
        except FrameError as exc:
            violations = [exc.reason] if valid is not None else [exc.reason, _NOT_UTF8]
            self._frame_in(now, raw, exc.message_type, exc.unique_id, None, violations)
            if exc.should_reply and exc.unique_id is not None:
                self.reply_error(exc.unique_id, "", exc.code, exc.reason, now)
            return
        if valid is None:
            # Well-formed once repaired, but the text itself is broken: a syntax error, never
            # handed to the charger (and a broken result leaves our CALL to time out).
            self._frame_in(now, raw, frame.message_type, frame.unique_id, None, [_NOT_UTF8])
            if isinstance(frame, Call):
                self.reply_error(frame.unique_id, frame.action, ErrorCode.FORMATION_VIOLATION,
                                 _NOT_UTF8, now)
            return
        match frame:
            case Call():
                self._receive_call(frame, raw, now)
            case CallResult() | CallError():
                self._receive_answer(frame, raw, now)
        self._pump(now)

    def receive_binary(self, data: bytes, now: float) -> None:
        """Take one binary frame from the CS: OCPP-J is text only, so it is recorded (a
        ``FrameIn`` with a short preview of its bytes as ``raw`` and the :data:`BINARY_FRAME`
        violation) and ignored: never decoded, never answered, whatever it holds."""
        self._frame_in(now, binary_preview(data), None, None, None, [BINARY_FRAME])

    def _receive_call(self, frame: Call, raw: str, now: float) -> None:
        code, reason, request = self._decode_call(frame)
        if code is not None:
            self._frame_in(now, raw, MessageType.CALL, frame.unique_id, frame.action, [reason])
            self.reply_error(frame.unique_id, frame.action, code, reason, now)
            return
        if isinstance(request, ChangeConfigurationRequest) and \
                redact(request.key, request.value) != request.value:
            # A secret never reaches the ledger: record the CALL with its value redacted.
            redacted = msgspec.structs.replace(request, value=redact(request.key, request.value))
            raw = encode_frame(Call(frame.unique_id, frame.action,
                                    msgspec.Raw(self._plugin.encode_payload(redacted)))).decode()
        self._frame_in(now, raw, MessageType.CALL, frame.unique_id, frame.action, [])
        self._outcomes.append(IncomingCall(frame.unique_id, frame.action, request))

    def _decode_call(self, frame: Call) -> tuple[ErrorCode | None, str, Any]:
        spec = self._plugin.actions.get(frame.action)
        if spec is None:
            return ErrorCode.NOT_IMPLEMENTED, f"unknown action {frame.action!r}", None
        if spec.direction == Direction.CP_TO_CS:
            # Known to us, but only ever sent by a charge point: we do not support receiving it.
            return ErrorCode.NOT_SUPPORTED, f"{frame.action} is sent by charge points only", None
        if spec.profile not in self._profiles:
            return ErrorCode.NOT_SUPPORTED, f"profile {spec.profile} is not supported", None
        try:
            return None, "", self._plugin.decode_request(frame.action, frame.payload)
        except PayloadError as exc:
            return exc.code, exc.reason, None

    def _receive_answer(self, frame: CallResult | CallError, raw: str, now: float) -> None:
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id:
            self._frame_in(now, raw, frame.message_type, frame.unique_id, None, [])
            self._publish(UnmatchedResult(t=now, charger=self.charger,
                                          unique_id=frame.unique_id,
                                          message_type=frame.message_type))
            return
        latency = now - pending.sent_at
        self._pending = None
        if isinstance(frame, CallError):
            self._frame_in(now, raw, frame.message_type, frame.unique_id, pending.action, [],
                           latency=latency)
            code = ErrorCode.parse(frame.error_code)
            self._failed(pending, now, f"CALLERROR {code}: {frame.error_description}",
                         unimplemented=code in _UNIMPLEMENTED)
            return
        try:
            response = self._plugin.decode_response(pending.action, frame.payload)
        except PayloadError as exc:
            self._frame_in(now, raw, frame.message_type, frame.unique_id, pending.action,
                           [f"{exc.code}: {exc.reason}"], latency=latency)
            self._failed(pending, now, f"invalid result ({exc.code}: {exc.reason})")
            return
        self._frame_in(now, raw, frame.message_type, frame.unique_id, pending.action, [],
                       latency=latency)
        if pending.entry is not None:
            self._delivered(pending.entry, response)
        self._outcomes.append(CallAnswered(pending, response))

    def _delivered(self, entry: OutboxEntry, response: Any) -> None:
        """The head of the outbox was answered: remove it; learn the transaction id."""
        if self._outbox and self._outbox[0].seq == entry.seq:
            self._outbox.pop(0)
        if entry.action == "StartTransaction" and entry.local_tx is not None:
            tx_id = int(response.transaction_id)
            self._tx_ids[entry.local_tx] = tx_id
            self._outbox = list(
                msgspec.structs.replace(e, transaction_id=tx_id)
                if e.local_tx == entry.local_tx and e.action in TRANSACTION_ID_ACTIONS
                else e
                for e in self._outbox
            )
        if entry.action == "StopTransaction" and entry.local_tx is not None:
            self._tx_ids.pop(entry.local_tx, None)
        self._persist()

    def tick(self, now: float) -> None:
        """Time passed: time out our CALL, resend a transaction message when due."""
        pending = self._pending
        if pending is not None and now >= pending.sent_at + self.call_timeout:
            self._pending = None
            self._publish(CallTimedOut(t=now, charger=self.charger, unique_id=pending.unique_id,
                                       action=pending.action, timeout=self.call_timeout))
            self._failed(pending, now, "timeout")
        self._pump(now)

    # --- failures -----------------------------------------------------------------------------

    def _failed(
        self, call: OutgoingCall, now: float, reason: str, *, unimplemented: bool = False
    ) -> None:
        """``call`` failed: an ordinary message is dropped; a queued one is retried until its
        attempts are spent, except a queued message other than a transaction's (a security
        event) that the CS says it does not implement: retrying it cannot help, and it would
        hold the transaction messages behind it."""
        entry = call.entry
        if entry is None:
            self._drop_ordinary(call, now, reason, attempts=1)
            return
        attempts = entry.attempts + 1
        hopeless = unimplemented and entry.action not in _TRANSACTION_ACTIONS
        if hopeless or attempts >= max(1, self.attempts):
            if self._outbox and self._outbox[0].seq == entry.seq:
                self._outbox.pop(0)
            self._persist()
            self._publish_dropped(now, entry.action, attempts, reason)
            self._outcomes.append(CallFailed(call, reason, final=True))
            return
        self._outbox[0] = msgspec.structs.replace(self._outbox[0], attempts=attempts)
        self._retry_at = now + self.retry_interval * attempts
        self._persist()
        self._outcomes.append(CallFailed(call, reason, final=False))

    def _drop_ordinary(self, call: OutgoingCall, now: float, reason: str, attempts: int) -> None:
        self._publish_dropped(now, call.action, attempts, reason)
        self._outcomes.append(CallFailed(call, reason, final=True))

    # --- events -------------------------------------------------------------------------------

    def _persist(self) -> None:
        self._effects.append(PersistOutbox(charger=self.charger, entries=tuple(self._outbox),
                                           through=self._next_seq - 1))

    def _publish(self, event: Any) -> None:
        self._effects.append(Publish(event))

    def _publish_dropped(self, now: float, action: str, attempts: int, reason: str) -> None:
        self._publish(MessageDropped(t=now, charger=self.charger, action=action,
                                     attempts=attempts, reason=reason))

    def _frame_in(
        self,
        now: float,
        raw: str,
        message_type: int | None,
        unique_id: str | None,
        action: str | None,
        violations: list[str],
        *,
        latency: float | None = None,
    ) -> None:
        self._publish(FrameIn(t=now, charger=self.charger, raw=redact_frame(raw),
                              message_type=message_type,
                              unique_id=unique_id, action=action, latency=latency,
                              violations=violations))
