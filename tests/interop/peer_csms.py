"""A peer central system built on the PyPI ``ocpp`` package, run as a process in interop tests.

Nobody on this team wrote ``ocpp`` (mobilityhouse/ocpp): its ``ChargePoint`` validates every frame
it receives and every answer it sends against the official OCPP 1.6 JSON schemas. This script
serves it over ``websockets`` (asyncio) on ``/ocpp/<identity>`` with the ``ocpp1.6`` subprotocol
required, answers every CP→CS action (Core, FirmwareManagement and the Security extension's),
and appends one JSON line per observation to the
``--record`` file, flushed at once so a SIGKILLed peer leaves a readable record:

- ``started`` / ``stopped`` (the peer itself), ``connected`` (with ``basic_user``, the HTTP
  Basic user the charger presented, if any: never its password) / ``disconnected`` /
  ``rejected`` (connections), ``message`` (every frame received, with ``action`` and ``payload``),
- ``validation_error`` (the package refused a frame: unparsable, schema violation, an answer of
  ours that failed validation), ``call_error`` (the package answered NotImplemented/NotSupported),
  ``unhandled_exception`` (a bug anywhere, ours or the package's),
- ``transaction_started`` / ``transaction_stopped`` (the ids this peer assigned and saw),
  ``transaction_start_repeated`` (a StartTransaction identical to one already answered),
- ``command_result`` / ``commands_done`` (the ``--commands`` script of CS-initiated Core calls).

The ``--commands`` script (once per connection, after the boot answer is on the wire; only for
identities starting with ``--commands-for`` when given): GetConfiguration (all keys, then two
known ones and an unknown one), ChangeConfiguration of MeterValueSampleInterval and its
read-back, of a read-only key and of an unknown key, TriggerMessage (StatusNotification,
Heartbeat, MeterValues), RemoteStartTransaction and, once the StartTransaction it caused arrives,
RemoteStopTransaction of that transaction, ChangeAvailability (Inoperative, Operative),
UnlockConnector, DataTransfer.
With ``--remote-start-on finishing`` the remote start targets a connector whose last status was
Finishing (an EV still plugged in, no transaction), waiting up to ``--start-wait`` for one; the
default targets connector 1 whatever its state.

Usage::

    python tests/interop/peer_csms.py --host 127.0.0.1 --port 0 --record rec.jsonl --ready port.txt

The bound port is written to the ``--ready`` file (atomically) once the server listens. SIGTERM or
SIGINT stops the server cleanly. Transaction ids keep increasing across restarts that share a
record file (the highest id already recorded is the floor), so a restarted peer never reuses one.

A StartTransaction identical to one already answered (same charger, connectorId, idTag, meterStart
and timestamp: a charger resending it because the answer was lost) gets the transactionId it got
the first time, as a central system that deduplicates by content does; the answers recorded by an
earlier incarnation sharing the record file count too. It is recorded as
``transaction_start_repeated``, never as a second ``transaction_started``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar, cast
from urllib.parse import unquote

from ocpp.exceptions import OCPPError  # type: ignore[import-untyped]
from ocpp.routing import after, on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint, call, call_result, datatypes  # type: ignore[import-untyped]
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    Action,
    AuthorizationStatus,
    AvailabilityType,
    DataTransferStatus,
    GenericStatus,
    MessageTrigger,
    RegistrationStatus,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

PATH_PREFIX: Final = "/ocpp/"
SUBPROTOCOL: Final = "ocpp1.6"
DEFAULT_HEARTBEAT_S: Final = 60
DEFAULT_RESPONSE_TIMEOUT_S: Final = 10.0
DEFAULT_START_WAIT_S: Final = 10.0
"""How long the ``--commands`` script waits for the StartTransaction its RemoteStart caused (and,
with ``--remote-start-on finishing``, for a connector to report Finishing first)."""
SCRIPT_CLOSE_GRACE_S: Final = 2.0
"""How long a command script may go on after its connection closed (to record the last result
it got) before it is cancelled: generous, since on a loaded CI machine the script's task may
wait a while for its turn (it ends at once when it has nothing left to do)."""
SAMPLE_INTERVAL_SET: Final = "3"
"""The MeterValueSampleInterval the command script writes (and reads back)."""

# Codes the package raises when a frame or payload breaks the schema or the framing rules.
_VALIDATION_CODES: Final = frozenset({
    "FormatViolation", "FormationViolation", "ProtocolError", "PropertyConstraintViolation",
    "OccurenceConstraintViolation", "OccurrenceConstraintViolation", "TypeConstraintViolation",
})

_F = TypeVar("_F", bound=Callable[..., Any])


def handles(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.on(action)`` with a type: marks a method as the handler of ``action``."""
    return cast(Callable[[_F], _F], on(action))


def after_handling(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after(action)`` with a type: the method runs once the answer to ``action``
    has been sent."""
    return cast(Callable[[_F], _F], after(action))


def utc_now() -> str:
    """The current UTC time as an RFC 3339 string ending in ``Z`` (what the schemas accept)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Recorder:
    """Appends JSON lines to the record file, one ``write`` + ``flush`` per line.

    Every line gets ``t`` (Unix seconds, float) first. Values that are not JSON (the package's
    message objects inside error details) are written as their ``repr``. Owns the file; ``close``
    it once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        """Record one observation of ``kind``; never raises on odd values."""
        line = json.dumps({"t": time.time(), "kind": kind, **fields}, default=repr)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of ``path``, skipping a torn last line (a peer killed mid-write)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as file:
        for line in file:
            if not line.endswith("\n"):
                return
            with contextlib.suppress(json.JSONDecodeError):
                yield json.loads(line)


class RecordingHandler(logging.Handler):
    """Turns the package's ``logger.exception`` calls into ``validation_error`` / ``call_error`` /
    ``unhandled_exception`` records.

    The package reports every refused frame through its logger: ``route_message`` logs "Unable to
    parse message" (no reply is sent) or "Error while handling request" (a CALLERROR is sent), with
    the exception attached. The charger identity comes from the ``LoggerAdapter`` extra.
    """

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(level=logging.ERROR)
        self._recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        charger = getattr(record, "charger", None)
        message = record.args[0] if isinstance(record.args, tuple) and record.args else None
        where = {
            "charger": charger,
            "action": getattr(message, "action", None),
            "unique_id": getattr(message, "unique_id", None),
            "log": record.getMessage()[:500],
        }
        if isinstance(exc, OCPPError):
            kind = "validation_error" if exc.code in _VALIDATION_CODES else "call_error"
            self._recorder.write(
                kind, code=exc.code, description=exc.description, details=exc.details, **where
            )
        else:
            self._recorder.write(
                "unhandled_exception", error=f"{type(exc).__name__}: {exc}", **where
            )


StartKey = tuple[str, int, str, int, str]
"""(charger, connectorId, idTag, meterStart, timestamp): what makes two StartTransactions the
same transaction."""


def start_key(charger: str, connector_id: int, id_tag: str, meter_start: int,
              timestamp: str) -> StartKey:
    """The deduplication key of a StartTransaction (see :data:`StartKey`)."""
    return (charger, connector_id, id_tag, meter_start, timestamp)


@dataclasses.dataclass
class PeerState:
    """What all connections share: options, the recorder, the transaction id counter."""

    recorder: Recorder
    heartbeat: int
    boot_status: str
    commands: bool
    commands_for: str
    remote_start_on: str
    remote_tag: str
    response_timeout: float
    start_wait: float
    next_transaction_id: Iterator[int]
    answered_starts: dict[StartKey, int]
    """The transactionId given to each distinct StartTransaction (see :func:`start_key`)."""
    logger: logging.Logger


class PeerChargePoint(ChargePoint):  # type: ignore[misc]  # the package ships no type hints
    """The central system's side of one connection: the package's ``ChargePoint`` with handlers
    for every Core CP→CS action, recording every frame it receives."""

    def __init__(self, identity: str, connection: ServerConnection, state: PeerState) -> None:
        adapter = logging.LoggerAdapter(state.logger, {"charger": identity})
        super().__init__(identity, connection, state.response_timeout, logger=adapter)
        self.identity = identity
        self.state = state
        self.booted = asyncio.Event()
        self.started_transactions: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue()
        """(connectorId, transactionId, idTag) of each StartTransaction, for the command script."""
        self.statuses: dict[int, str] = {}
        """The last StatusNotification status per connectorId."""
        self.status_changed = asyncio.Event()
        """Set (and replaced by a fresh event) whenever ``statuses`` changes."""
        self._pending_actions: dict[str, str] = {}  # our CALL id -> action
        self._call_errors: dict[str, dict[str, Any]] = {}  # our CALL id -> CALLERROR received
        self._results: dict[str, Any] = {}  # our CALL id -> raw CALLRESULT payload

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Record the frame, then let the package route (and validate) it."""
        self._record_received(raw_msg)
        try:
            await super().route_message(raw_msg)
        except ConnectionClosed:
            raise
        except Exception as exc:  # the package failed outside its own error handling
            self.state.recorder.write(
                "unhandled_exception", charger=self.identity, error=f"{type(exc).__name__}: {exc}"
            )

    def _record_received(self, raw_msg: str | bytes) -> None:
        text = raw_msg.decode("utf-8", "replace") if isinstance(raw_msg, bytes) else raw_msg
        try:
            frame = json.loads(text)
        except json.JSONDecodeError:
            frame = None
        if not (isinstance(frame, list) and len(frame) >= 3 and isinstance(frame[1], str)):
            self.state.recorder.write(
                "message", charger=self.identity, action=None, payload=None, raw=text[:2000]
            )
            return
        message_type, unique_id = frame[0], frame[1]
        fields: dict[str, Any] = {"message_type": message_type, "unique_id": unique_id}
        if message_type == 2 and len(frame) >= 4:
            fields |= {"action": frame[2], "payload": frame[3]}
        elif message_type == 3:
            fields |= {"action": self._pending_actions.get(unique_id), "payload": frame[2]}
            self._results[unique_id] = frame[2]
        elif message_type == 4:
            error = {
                "code": frame[2],
                "description": frame[3] if len(frame) > 3 else None,
                "details": frame[4] if len(frame) > 4 else None,
            }
            fields |= {"action": self._pending_actions.get(unique_id), "payload": error}
            self._call_errors[unique_id] = error
        else:
            fields |= {"action": None, "payload": None, "raw": text[:2000]}
        self.state.recorder.write("message", charger=self.identity, **fields)

    # ---- CP -> CS Core handlers -----------------------------------------------------------

    @handles(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return call_result.BootNotification(
            current_time=utc_now(), interval=self.state.heartbeat, status=self.state.boot_status
        )

    @after_handling(Action.boot_notification)
    def after_boot_notification(self, **_: Any) -> None:
        # Only once the answer is on the wire: setting it in the handler let the command script
        # (validation runs in an executor) send its first CALL before the boot answer.
        if self.state.boot_status == RegistrationStatus.accepted:
            self.booted.set()

    @handles(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return call_result.Authorize(id_tag_info=_id_tag_info(id_tag))

    @handles(Action.start_transaction)
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        key = start_key(self.identity, connector_id, id_tag, meter_start, timestamp)
        transaction_id = self.state.answered_starts.get(key)
        kind = "transaction_start_repeated"
        if transaction_id is None:
            transaction_id = next(self.state.next_transaction_id)
            self.state.answered_starts[key] = transaction_id
            kind = "transaction_started"
        self.state.recorder.write(
            kind, charger=self.identity, connector_id=connector_id,
            transaction_id=transaction_id, id_tag=id_tag, meter_start=meter_start,
            timestamp=timestamp,
        )
        self.started_transactions.put_nowait((connector_id, transaction_id, id_tag))
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=_id_tag_info(id_tag)
        )

    @handles(Action.stop_transaction)
    def on_stop_transaction(
        self, transaction_id: int, meter_stop: int, id_tag: str | None = None, **_: Any
    ) -> Any:
        self.state.recorder.write(
            "transaction_stopped", charger=self.identity, transaction_id=transaction_id,
            meter_stop=meter_stop,
        )
        info = _id_tag_info(id_tag) if id_tag is not None else None
        return call_result.StopTransaction(id_tag_info=info)

    @handles(Action.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()

    @handles(Action.status_notification)
    def on_status_notification(self, connector_id: int, status: str, **_: Any) -> Any:
        self.statuses[connector_id] = status
        changed, self.status_changed = self.status_changed, asyncio.Event()
        changed.set()
        return call_result.StatusNotification()

    @handles(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=utc_now())

    @handles(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status=DataTransferStatus.accepted)

    @handles(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return call_result.FirmwareStatusNotification()

    @handles(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_: Any) -> Any:
        return call_result.DiagnosticsStatusNotification()

    # ---- CP -> CS Security extension handlers ------------------------------------------------

    @handles(Action.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> Any:
        return call_result.SecurityEventNotification()

    @handles(Action.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> Any:
        return call_result.SignCertificate(status=GenericStatus.accepted)

    @handles(Action.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> Any:
        return call_result.LogStatusNotification()

    @handles(Action.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(self, **_: Any) -> Any:
        return call_result.SignedFirmwareStatusNotification()

    # ---- CS -> CP script ----------------------------------------------------------------

    async def command(self, request: Any) -> Any:
        """Send one CS-initiated CALL through the package (which validates request and answer)
        and record a ``command_result``. Returns the raw answer payload, or ``None`` on a
        CALLERROR, a timeout or an answer that failed validation."""
        action = type(request).__name__
        unique_id = str(uuid.uuid4())
        self._pending_actions[unique_id] = action
        fields: dict[str, Any] = {
            "charger": self.identity, "action": action, "unique_id": unique_id,
            "request": dataclasses.asdict(request),
        }
        try:
            await self.call(request, suppress=False, unique_id=unique_id)
        except TimeoutError:
            self.state.recorder.write(
                "command_result", response=None, error={"code": "Timeout"}, **fields
            )
            return None
        except OCPPError as exc:
            received = self._call_errors.pop(unique_id, None)
            if received is None:  # the package refused the answer itself
                error = {"code": exc.code, "description": exc.description, "source": "validation"}
                self.state.recorder.write(
                    "validation_error", charger=self.identity, action=action,
                    unique_id=unique_id, code=exc.code, description=exc.description,
                    details=exc.details, log="answer to our CALL failed validation",
                )
            else:
                error = {**received, "source": "call_error"}
            self.state.recorder.write("command_result", response=None, error=error, **fields)
            return None
        finally:
            self._pending_actions.pop(unique_id, None)
        response = self._results.pop(unique_id, None)
        self.state.recorder.write("command_result", response=response, error=None, **fields)
        return response

    async def run_commands(self) -> None:
        """After an accepted boot, run the Core command script once (see module docstring)."""
        await self.booted.wait()
        await self.command(call.GetConfiguration())
        await self.command(
            call.GetConfiguration(key=["HeartbeatInterval", "MeterValueSampleInterval", "NoSuch"])
        )
        await self.command(call.ChangeConfiguration(key="MeterValueSampleInterval",
                                                    value=SAMPLE_INTERVAL_SET))
        await self.command(call.GetConfiguration(key=["MeterValueSampleInterval"]))
        await self.command(call.ChangeConfiguration(key="NumberOfConnectors", value="9"))
        await self.command(call.ChangeConfiguration(key="NoSuchKey", value="1"))
        await self.command(
            call.TriggerMessage(requested_message=MessageTrigger.status_notification,
                                connector_id=1)
        )
        await self.command(call.TriggerMessage(requested_message=MessageTrigger.heartbeat))
        await self.command(
            call.TriggerMessage(requested_message=MessageTrigger.meter_values, connector_id=1)
        )
        await self._remote_start_then_stop(self.state.remote_tag)
        await self.command(call.ChangeAvailability(connector_id=2,
                                                   type=AvailabilityType.inoperative))
        await self.command(call.ChangeAvailability(connector_id=2,
                                                   type=AvailabilityType.operative))
        await self.command(call.UnlockConnector(connector_id=1))
        await self.command(
            call.DataTransfer(vendor_id="peer-csms", message_id="ping", data="hello")
        )
        self.state.recorder.write("commands_done", charger=self.identity)

    async def _remote_start_then_stop(self, id_tag: str) -> None:
        connector_id = await self._remote_start_target()
        if connector_id is None:
            self._script_gave_up("RemoteStartTransaction", "NoFinishingConnector",
                                 f"no connector reported Finishing within {self.state.start_wait}s")
            return
        while not self.started_transactions.empty():  # forget starts that came before
            self.started_transactions.get_nowait()
        response = await self.command(
            call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id)
        )
        if response is None or response.get("status") != "Accepted":
            return
        try:
            async with asyncio.timeout(self.state.start_wait):
                while True:
                    started_on, transaction_id, tag = await self.started_transactions.get()
                    if started_on == connector_id and tag == id_tag:
                        break
        except TimeoutError:
            self._script_gave_up("RemoteStopTransaction", "NoStartTransaction",
                                 f"no StartTransaction within {self.state.start_wait}s")
            return
        await self.command(call.RemoteStopTransaction(transaction_id=transaction_id))

    async def _remote_start_target(self) -> int | None:
        """Connector 1, or (``--remote-start-on finishing``) the first connector seen Finishing
        within the start wait (``None`` when none is)."""
        if self.state.remote_start_on != "finishing":
            return 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.start_wait):
                while True:
                    finishing = sorted(c for c, status in self.statuses.items()
                                       if c > 0 and status == "Finishing")
                    if finishing:
                        return finishing[0]
                    await self.status_changed.wait()
        return None

    def _script_gave_up(self, action: str, code: str, description: str) -> None:
        self.state.recorder.write(
            "command_result", charger=self.identity, action=action, request=None, response=None,
            error={"code": code, "description": description},
        )


def _id_tag_info(id_tag: str) -> Any:
    status = (
        AuthorizationStatus.blocked if id_tag.startswith("BLOCKED")
        else AuthorizationStatus.accepted
    )
    return datatypes.IdTagInfo(status=status)


def _reject(connection: ServerConnection, status: int, reason: str, state: PeerState,
            request: Request) -> Response:
    state.recorder.write("rejected", path=request.path, status=status, reason=reason)
    return connection.respond(status, reason + "\n")


def _process_request(state: PeerState) -> Callable[[ServerConnection, Request], Response | None]:
    """Refuse bad paths (404) and handshakes without ``ocpp1.6`` (400), recording why."""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if not path.startswith(PATH_PREFIX) or not path[len(PATH_PREFIX):]:
            return _reject(connection, 404, f"path must be {PATH_PREFIX}<identity>", state,
                           request)
        if SUBPROTOCOL not in _offered_subprotocols(request.headers):
            return _reject(connection, 400, f"subprotocol {SUBPROTOCOL} required", state, request)
        return None

    return process_request


def basic_user(headers: Headers) -> str | None:
    """The user of the handshake's HTTP Basic ``Authorization`` (never its password, which is
    not recorded), or ``None`` without one (or one that does not parse)."""
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, _ = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user if colon else None


def _offered_subprotocols(headers: Headers) -> set[str]:
    values = headers.get_all("Sec-WebSocket-Protocol")
    return {item.strip() for value in values for item in value.split(",")}


ChargePointFactory = Callable[[str, ServerConnection, PeerState], PeerChargePoint]
"""Makes the central system's side of one connection: (identity, connection, shared state)."""


async def handle_connection(connection: ServerConnection, state: PeerState,
                            make: ChargePointFactory = PeerChargePoint) -> None:
    """Serve one charger until its socket closes; run the command script (``run_commands`` of
    what ``make`` returns) when asked to."""
    identity = unquote(connection.request.path.split("?", 1)[0][len(PATH_PREFIX):]
                       if connection.request else "")
    charge_point = make(identity, connection, state)
    state.recorder.write("connected", charger=identity, subprotocol=connection.subprotocol,
                         basic_user=basic_user(connection.request.headers
                                               if connection.request else Headers()))
    scripted = state.commands and identity.startswith(state.commands_for)
    script = asyncio.create_task(charge_point.run_commands()) if scripted else None
    try:
        await charge_point.start()
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        state.recorder.write("disconnected", charger=identity, code=code)
    except Exception as exc:
        state.recorder.write(
            "unhandled_exception", charger=identity, error=f"{type(exc).__name__}: {exc}"
        )
    finally:
        if script is not None:
            # A CALLRESULT read just before the close (a Reset's) wakes the script only now:
            # let it record the result before it is cancelled.
            await asyncio.wait({script}, timeout=SCRIPT_CLOSE_GRACE_S)
            script.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await script
            if script.done() and not script.cancelled() and script.exception() is not None:
                state.recorder.write(
                    "unhandled_exception", charger=identity, error=repr(script.exception())
                )


def highest_transaction_id(path: Path) -> int:
    """The highest transaction id already assigned in the record file (0 if none)."""
    ids = (r.get("transaction_id", 0) for r in read_records(path)
           if r.get("kind") == "transaction_started")
    return max(ids, default=0)


def answered_starts(path: Path) -> dict[StartKey, int]:
    """The transactionId of each distinct StartTransaction already answered in the record file."""
    return {
        start_key(r["charger"], r["connector_id"], r["id_tag"], r["meter_start"], r["timestamp"]):
            r["transaction_id"]
        for r in read_records(path) if r.get("kind") == "transaction_started"
    }


def write_ready(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically, so a reader never sees a partial file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


async def run_peer(args: argparse.Namespace, make: ChargePointFactory = PeerChargePoint) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection and return; ``make`` builds
    each connection's charge point (another peer script passes its subclass)."""
    recorder = Recorder(Path(args.record))
    logger = logging.getLogger("peer_csms.ocpp")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(RecordingHandler(recorder))
    state = PeerState(
        recorder=recorder, heartbeat=args.heartbeat, boot_status=args.boot_status,
        commands=args.commands, commands_for=args.commands_for,
        remote_start_on=args.remote_start_on, remote_tag=args.remote_tag,
        response_timeout=args.response_timeout,
        start_wait=args.start_wait,
        next_transaction_id=itertools.count(highest_transaction_id(Path(args.record)) + 1),
        answered_starts=answered_starts(Path(args.record)),
        logger=logger,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def handler(connection: ServerConnection) -> None:
        await handle_connection(connection, state, make)

    try:
        async with serve(
            handler, args.host, args.port, subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=_process_request(state), reuse_address=True,
            close_timeout=2,
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            recorder.write("started", port=port, pid=os.getpid(), commands=args.commands)
            write_ready(Path(args.ready), port)
            await stop.wait()
        recorder.write("stopped")
    finally:
        recorder.close()


def parse_args(argv: list[str],
               extend: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    """The command line (see the module docstring); ``extend`` adds another script's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument("--record", required=True, help="JSON-lines file to append to")
    parser.add_argument("--ready", required=True, help="file that receives the bound port")
    parser.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT_S,
                        help="interval in the BootNotification answer (s)")
    parser.add_argument("--boot-status", default=str(RegistrationStatus.accepted),
                        choices=[str(s) for s in RegistrationStatus])
    parser.add_argument("--commands", action="store_true",
                        help="run the Core command script against each charger after boot")
    parser.add_argument("--commands-for", default="",
                        help="run the script only for identities starting with this")
    parser.add_argument("--remote-start-on", choices=["1", "finishing"], default="1",
                        help="RemoteStart on connector 1, or on a connector seen Finishing")
    parser.add_argument("--remote-tag", default="TAG-1", help="idTag of the RemoteStart")
    parser.add_argument("--response-timeout", type=float, default=DEFAULT_RESPONSE_TIMEOUT_S,
                        help="seconds to wait for the answer to a CS-initiated CALL")
    parser.add_argument("--start-wait", type=float, default=DEFAULT_START_WAIT_S,
                        help="seconds to wait for the StartTransaction after RemoteStart")
    if extend is not None:
        extend(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *,
         extend: Callable[[argparse.ArgumentParser], None] | None = None,
         make_for: Callable[[argparse.Namespace], ChargePointFactory] | None = None) -> None:
    """Entry point: parse ``argv`` and serve until signalled. Another peer script passes its
    options (``extend``) and what makes its charge points from the parsed options
    (``make_for``)."""
    args = parse_args(sys.argv[1:] if argv is None else argv, extend)
    make = PeerChargePoint if make_for is None else make_for(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_peer(args, make))


if __name__ == "__main__":
    main()
