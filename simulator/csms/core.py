"""The reference central system as a sans-IO state machine: frames in, frames and events out.

:class:`CentralSystem` holds what an OCPP 1.6 CSMS knows about each charge point (keyed by its
identity): boot state, connector statuses, transactions with their meter readings, the anomalies
it noticed, and the one CS→CP CALL that may be outstanding per connection. It reads no clock and
does no I/O: every method takes ``now`` (monotonic seconds) and wall time is ``wall_epoch + now``.
The server (:mod:`simulator.csms.server`) only moves bytes between sockets and this class. The
protocol version's :class:`~simulator.ocpp.plugin.ProtocolPlugin` gives the action table and the
payload codec; what is answered (:mod:`simulator.csms.answers`) follows OCPP 1.6.

Rules of the house for what comes in (one CALLRESULT or CALLERROR per CALL, answered at once):

- A frame that does not decode is answered with the :class:`~simulator.ocpp.frames.FrameError`'s
  CALLERROR when it is a CALL whose id could be read; otherwise it is only recorded.
- An action unknown to the protocol version → ``NotImplemented``. A known action that only the
  central system sends (``Reset``, ``RemoteStartTransaction``...) → ``NotSupported``: the action
  exists but this receiver does not support it in that direction (OCPP-J's definition).
- A payload that breaks the schema → the CALLERROR code of its
  :class:`~simulator.ocpp.v16.PayloadError` (``validate=True``), or, with ``validate=False``, a
  fallback answer (see :meth:`CentralSystem.receive`) and a ``schema_violation`` anomaly.
- A handler that raises → ``InternalError`` and an ``internal_error`` note: no input can make
  ``receive`` raise.
- Business refusals are answers, never CALLERRORs: a StopTransaction is always accepted, even
  for an unknown transaction id (recorded as an anomaly).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Final

import msgspec

from simulator.csms.answers import Answers, ChargerRecord, Outstanding, Turn
from simulator.csms.options import BootStatus, CsmsOptions
from simulator.csms.records import (
    Anomaly,
    AnomalyKind,
    CallOutcome,
    ChargerState,
    CsmsStatistics,
    Opened,
    Outgoing,
    Reply,
    TransactionRecord,
)
from simulator.csms.transaction_book import TransactionBook
from simulator.events import CsmsFrameIn, CsmsNote, Event
from simulator.ocpp.frames import (
    EMPTY_OBJECT,
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameError,
    decode_frame,
    encode_frame,
)
from simulator.ocpp.plugin import Direction, PayloadError, ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN

TIMEOUT: Final = "Timeout"
CONNECTION_LOST: Final = "ConnectionLost"
"""``CallOutcome.error_code`` of a CS→CP CALL that was abandoned or whose connection closed."""


class CallRefused(Exception):
    """A CS→CP CALL cannot be sent now: the charge point is not connected, a CALL to it is still
    outstanding, or the request is not a CS→CP action."""


class CentralSystem:
    """An OCPP central system without I/O (see the module docstring for its rules).

    Args:
        options: the behaviour (boot answer, tag rules, validation...).
        wall_epoch: Unix seconds at ``now == 0``; ``currentTime`` answers and timestamp checks use
            ``wall_epoch + now`` (UTC).
        new_id: message ids for CS→CP CALLs (uuid4 strings in production, counters in tests).
        plugin: the protocol version: its action table and payload codec (OCPP 1.6 by default;
            the answers themselves follow 1.6's rules).

    Drive it with :meth:`connect`, :meth:`receive` and :meth:`disconnect` for each WebSocket
    session, and :meth:`call` to send a CALL to a charge point. Query with :meth:`transactions`,
    :meth:`charger_state` and :meth:`statistics`. Not thread-safe; one event loop owns it.
    """

    def __init__(
        self,
        options: CsmsOptions,
        *,
        wall_epoch: float,
        new_id: Callable[[], str],
        plugin: ProtocolPlugin = PLUGIN,
    ) -> None:
        self.options = options
        self.plugin = plugin
        self._wall_epoch = wall_epoch
        self._new_id = new_id
        self._chargers: dict[str, ChargerRecord] = {}
        self._book = TransactionBook(options.first_transaction_id)
        self._answers = Answers(options, self._book, self._wall, plugin)
        self._sessions = 0
        self._frames_in = 0
        self._frames_out = 0
        self._frame_errors = 0
        self._replaced = 0
        self._calls_in: collections.Counter[str] = collections.Counter()
        self._errors_out: collections.Counter[str] = collections.Counter()
        self._anomalies: collections.Counter[str] = collections.Counter()

    # --- sessions -------------------------------------------------------------------------------

    def connect(self, identity: str, now: float) -> Opened:
        """A WebSocket session for ``identity`` was accepted. A still-open older session of the same
        identity is replaced: the caller must close it; a CALL in flight on it ends with a
        ``ConnectionLost`` outcome (``Opened.abandoned``). Charger state (boot, transactions)
        survives sessions."""
        charger = self._charger(identity)
        replaced = charger.connected
        events: list[Event] = []
        if replaced:
            charger.replaced += 1
            self._replaced += 1
            events.append(
                CsmsNote(t=now, charger=identity, what="replaced", data={"old": charger.session})
            )
        self._sessions += 1
        charger.session = self._sessions
        charger.connected = True
        charger.connections += 1
        charger.last_seen = now
        charger.last_call_id = None
        abandoned = self._abandon(charger, CONNECTION_LOST, "replaced by a newer connection")
        events.append(
            CsmsNote(t=now, charger=identity, what="connected", data={"session": charger.session})
        )
        return Opened(charger.session, replaced, tuple(events), abandoned)

    def disconnect(self, identity: str, session: int, now: float) -> Reply:
        """Session ``session`` of ``identity`` ended. When it is still the current session the
        charger becomes disconnected and a CALL in flight ends with a ``ConnectionLost`` outcome
        (``Reply.outcome``); a session that was already replaced only leaves a note."""
        charger = self._charger(identity)
        current = charger.session == session and charger.connected
        note = CsmsNote(
            t=now, charger=identity, what="disconnected",
            data={"session": session, "current": current},
        )
        if not current:
            return Reply((), (note,))
        charger.connected = False
        outcome = self._abandon(charger, CONNECTION_LOST, "the connection closed")
        return Reply((), (note,), outcome)

    def is_current(self, identity: str, session: int) -> bool:
        """True while ``session`` is the live session of ``identity``."""
        charger = self._chargers.get(identity)
        return charger is not None and charger.connected and charger.session == session

    # --- frames in ------------------------------------------------------------------------------

    def receive(self, identity: str, data: bytes | str, now: float) -> Reply:
        """Handle one frame from ``identity``; never raises.

        Returns the frames to send back (at most one: the answer to a CALL) and the events to
        publish, the :class:`~simulator.events.CsmsFrameIn` first. With ``validate=False`` a CALL
        whose payload breaks the schema is answered as if it carried nothing usable: Authorize and
        StopTransaction's idTagInfo say Invalid, a StartTransaction gets a fresh transaction id
        with status Invalid (no transaction is recorded), a BootNotification counts as a boot with
        no vendor, a DataTransfer is Rejected, a SignCertificate Rejected, and the rest get their
        empty answer.
        """
        charger = self._charger(identity)
        charger.last_seen = now
        self._frames_in += 1
        raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            self._frame_errors += 1
            event = CsmsFrameIn(t=now, charger=identity, raw=raw, violations=[exc.reason])
            if not exc.should_reply:
                return Reply((), (event,))
            return Reply((self._error(exc.to_call_error(), None),), (event,))
        turn = Turn(charger, now, self._anomalies)
        out: Outgoing | None
        match frame:
            case Call():
                out = self._on_call(turn, frame)
                action: str | None = frame.action
                outcome = None
            case CallResult() | CallError():
                out = None
                action = charger.outstanding.action if charger.outstanding else None
                outcome = self._on_answer(turn, frame)
        event = CsmsFrameIn(
            t=now, charger=identity, raw=raw, action=action, violations=turn.violations
        )
        return Reply(() if out is None else (out,), (event, *turn.events), outcome)

    def _on_call(self, turn: Turn, frame: Call) -> Outgoing:
        charger, action = turn.charger, frame.action
        self._calls_in[action] += 1
        if frame.unique_id == charger.last_call_id:
            turn.report(AnomalyKind.DUPLICATE_MESSAGE_ID, unique_id=frame.unique_id)
        charger.last_call_id = frame.unique_id
        spec = self.plugin.actions.get(action)
        if spec is None:
            return self._refuse(turn, frame, ErrorCode.NOT_IMPLEMENTED, f"unknown action {action}")
        if spec.direction == Direction.CS_TO_CP:
            return self._refuse(
                turn, frame, ErrorCode.NOT_SUPPORTED, f"{action} is sent by a central system only"
            )
        if action != "BootNotification" and charger.boot_status != BootStatus.ACCEPTED:
            turn.report(AnomalyKind.CALL_BEFORE_BOOT, action=action,
                          boot_status=charger.boot_status)
            if self.options.refuse_before_boot:
                return self._refuse(
                    turn, frame, ErrorCode.SECURITY_ERROR, "BootNotification not accepted yet"
                )
        try:
            request = self.plugin.decode_request(action, frame.payload)
        except PayloadError as exc:
            turn.violations.append(exc.reason)
            if self.options.validate:
                return self._refuse(turn, frame, exc.code, exc.reason)
            turn.report(AnomalyKind.SCHEMA_VIOLATION, action=action, reason=exc.reason)
            response = self._answers.fallback(turn, action)
        else:
            try:
                response = self._answers.answer(turn, request)
            except Exception as exc:  # a bug of ours must not kill the connection
                turn.events.append(CsmsNote(
                    t=turn.now, charger=charger.identity, what="internal_error",
                    data={"action": action, "error": repr(exc)},
                ))
                return self._refuse(turn, frame, ErrorCode.INTERNAL_ERROR, "internal error")
        payload = msgspec.Raw(self.plugin.encode_payload(response))
        self._frames_out += 1
        return Outgoing(encode_frame(CallResult(frame.unique_id, payload)), action)

    def _refuse(self, turn: Turn, frame: Call, code: ErrorCode, reason: str) -> Outgoing:
        """Answer ``frame`` with a CALLERROR; the reason is also the frame's violation (unless
        the fault is ours: InternalError)."""
        if code != ErrorCode.INTERNAL_ERROR and reason not in turn.violations:
            turn.violations.append(reason)
        return self._error(CallError(frame.unique_id, code, reason[:255], EMPTY_OBJECT),
                           frame.action)

    def _error(self, error: CallError, action: str | None) -> Outgoing:
        self._frames_out += 1
        self._errors_out[str(error.error_code)] += 1
        return Outgoing(encode_frame(error), action)

    # --- helpers --------------------------------------------------------------------------------

    def _wall(self, now: float) -> datetime:
        """The CSMS's wall clock at ``now``, UTC, to the millisecond."""
        millis = round((self._wall_epoch + now) * 1000)
        return datetime.fromtimestamp(millis / 1000, UTC)

    def _charger(self, identity: str) -> ChargerRecord:
        charger = self._chargers.get(identity)
        if charger is None:
            charger = ChargerRecord(
                identity, collections.deque(maxlen=self.options.max_anomalies_per_charger)
            )
            self._chargers[identity] = charger
        return charger

    # --- CS → CP calls --------------------------------------------------------------------------

    def call(self, identity: str, request: msgspec.Struct, now: float) -> bytes:
        """Start a CS→CP CALL: the frame to send to ``identity``.

        Raises :class:`CallRefused` when the charger is not connected, a CALL to it is still
        outstanding (one at a time per connection), or ``request`` is not a CS→CP action. The
        answer comes back through :meth:`receive` as ``Reply.outcome``; give up on it with
        :meth:`abandon_call`.
        """
        charger = self._chargers.get(identity)
        if charger is None or not charger.connected:
            raise CallRefused(f"{identity} is not connected")
        if charger.outstanding is not None:
            raise CallRefused(
                f"{identity} has a CALL outstanding ({charger.outstanding.action} "
                f"{charger.outstanding.unique_id})"
            )
        action = self.plugin.action_of(request)
        if self.plugin.actions[action].direction == Direction.CP_TO_CS:
            raise CallRefused(f"{action} is sent by a charge point only")
        unique_id = self._new_id()
        payload = msgspec.Raw(self.plugin.encode_payload(request))
        data = encode_frame(Call(unique_id, action, payload))
        charger.outstanding = Outstanding(unique_id, action, now)
        self._frames_out += 1
        return data

    def abandon_call(self, identity: str, now: float) -> CallOutcome | None:
        """Give up on the outstanding CALL to ``identity`` (a response timeout): its outcome with
        ``error_code="Timeout"``, or ``None`` when nothing was outstanding. A late answer is then
        recorded as an ``unsolicited_result`` anomaly."""
        del now
        charger = self._chargers.get(identity)
        if charger is None:
            return None
        return self._abandon(charger, TIMEOUT, "no answer in time")

    def _abandon(self, charger: ChargerRecord, code: str, description: str) -> CallOutcome | None:
        out = charger.outstanding
        if out is None:
            return None
        charger.outstanding = None
        return CallOutcome(charger=charger.identity, unique_id=out.unique_id, action=out.action,
                           error_code=code, error_description=description)

    def _on_answer(self, turn: Turn, frame: CallResult | CallError) -> CallOutcome | None:
        charger = turn.charger
        out = charger.outstanding
        if out is None or out.unique_id != frame.unique_id:
            turn.report(AnomalyKind.UNSOLICITED_RESULT, unique_id=frame.unique_id,
                          message_type=int(frame.message_type))
            return None
        charger.outstanding = None
        outcome = functools.partial(
            CallOutcome, charger=charger.identity, unique_id=out.unique_id, action=out.action,
            latency=turn.now - out.sent_at,
        )
        if isinstance(frame, CallError):
            return outcome(error_code=frame.error_code, error_description=frame.error_description)
        try:
            response = self.plugin.decode_response(out.action, frame.payload)
        except PayloadError as exc:
            turn.violations.append(exc.reason)
            return outcome(error_code=str(exc.code), error_description=exc.reason)
        return outcome(response=response)

    # --- queries --------------------------------------------------------------------------------

    def transactions(self, charger: str | None = None) -> tuple[TransactionRecord, ...]:
        """Every transaction (of ``charger`` when given), in the order they were started."""
        return self._book.records(charger)

    def transaction(self, transaction_id: int) -> TransactionRecord | None:
        """One transaction by id, or ``None`` when this CSMS never handed that id out."""
        return self._book.get(transaction_id)

    def chargers(self) -> Iterator[str]:
        """The identities seen so far, in order of first contact."""
        return iter(tuple(self._chargers))

    def charger_state(self, identity: str) -> ChargerState | None:
        """A snapshot of one charge point, or ``None`` if it never connected."""
        c = self._chargers.get(identity)
        if c is None:
            return None
        return ChargerState(
            identity=c.identity, connected=c.connected, connections=c.connections,
            replaced=c.replaced, boots=c.boots, boot_status=c.boot_status, vendor=c.vendor,
            model=c.model, firmware_version=c.firmware_version, last_seen=c.last_seen,
            connectors=dict(c.connectors), open_transactions=self._book.open_for(c.identity),
            anomalies=tuple(c.anomalies), anomaly_counts=dict(c.anomaly_counts),
            firmware_status=c.firmware_status, diagnostics_status=c.diagnostics_status,
        )

    def anomalies(self, charger: str | None = None) -> tuple[Anomaly, ...]:
        """The kept anomaly records (of ``charger`` when given), per charger in time order."""
        chargers = self._chargers.values() if charger is None else (
            [self._chargers[charger]] if charger in self._chargers else []
        )
        return tuple(a for c in chargers for a in c.anomalies)

    def statistics(self) -> CsmsStatistics:
        """A frozen snapshot of the counters."""
        return CsmsStatistics(
            chargers=len(self._chargers),
            connected=sum(1 for c in self._chargers.values() if c.connected),
            connections=self._sessions, replaced_connections=self._replaced,
            frames_in=self._frames_in, frames_out=self._frames_out,
            calls_in=dict(self._calls_in), call_errors_out=dict(self._errors_out),
            frame_errors=self._frame_errors, boots=sum(c.boots for c in self._chargers.values()),
            transactions_started=len(self._book), transactions_stopped=self._book.stopped,
            transactions_running=len(self._book) - self._book.stopped,
            anomalies=dict(self._anomalies),
        )

