"""The reference central system on the network: a thin trio-websocket layer over the sans-IO core.

:func:`run_csms` serves ``ws://<host>:<port><path>/<identity>``. Each WebSocket handshake is
checked (path prefix and percent-decoded identity → 404 when missing or not allowed; HTTP Basic
credentials when passwords are configured → 401; the subprotocol of the core's
:class:`~simulator.ocpp.plugin.ProtocolPlugin` → 400 when the client does not offer it), then one
task per connection reads frames, hands them to :class:`~simulator.csms.core.CentralSystem` and
sends back what it returns. Nothing is spawned per message.

A second connection with an identity already connected replaces the first: the old one is closed
(code 1000, reason "replaced") and recorded. No input crashes the server: the core answers broken
frames itself, and an exception escaping it becomes an ``internal_error`` note.

Events go to ``publish`` (an async callable, typically ``EventBus.publish``) in the order they
happen: :class:`~simulator.events.CsmsFrameIn` for every frame received,
:class:`~simulator.events.CsmsFrameOut` after a frame was sent, :class:`~simulator.events.CsmsNote`
for connections, refusals and anomalies. ``publish`` may apply backpressure: a slow ledger slows
the connection whose events it is writing, never drops them.
"""

from __future__ import annotations

import functools
import itertools
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    serve_websocket,
    wrap_server_stream,
)

from simulator.csms.core import CONNECTION_LOST, CallRefused, CentralSystem
from simulator.csms.options import CsmsOptions
from simulator.csms.records import CallOutcome, Reply
from simulator.csms.rules import admission_status
from simulator.events import CsmsFrameIn, CsmsFrameOut, CsmsNote, Event
from simulator.ocpp.frames import BINARY_FRAME, binary_preview
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import (
    PLUGIN,
    ChangeConfigurationRequest,
    GetConfigurationRequest,
    MessageTrigger,
    TriggerMessageRequest,
)

DEFAULT_PATH: Final = "/ocpp"
HTTP_BAD_REQUEST: Final = 400
HTTP_NOT_FOUND: Final = 404
MAX_IDENTITY_LENGTH: Final = 255
DRAIN_TIMEOUT: Final = 1.0
"""Seconds a charger's new connection waits for its closed last one to be served to the end."""
CLOSE_TIMEOUT: Final = 5.0
"""Seconds to wait for the peer's half of the closing handshake (and for a shielded publish of
the last events of a connection during shutdown)."""
DEFAULT_CALL_TIMEOUT: Final = 30.0

Publish = Callable[[Event], Awaitable[None]]


def identity_from_path(path: str, prefix: str) -> str | None:
    """The charge point identity in a request path: the percent-decoded segment right after
    ``prefix`` (``/ocpp/RDAM%20123?x=1`` with prefix ``/ocpp`` → ``RDAM 123``). ``None`` when the
    path is not under ``prefix``, has more than one segment after it, or the identity is empty,
    not valid UTF-8 once decoded, or longer than 255 characters."""
    target = path.partition("?")[0]
    base = prefix.rstrip("/") + "/"
    if not target.startswith(base):
        return None
    segment = target[len(base):]
    if not segment or "/" in segment:
        return None
    try:
        identity = urllib.parse.unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None
    if not identity or len(identity) > MAX_IDENTITY_LENGTH:
        return None
    return identity


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class _Live:
    """One accepted connection: its socket, its core session, and the scope that ends it."""

    __slots__ = ("finished", "replaced", "scope", "session", "ws")

    def __init__(self, ws: WebSocketConnection, session: int) -> None:
        self.ws = ws
        self.session = session
        self.scope = trio.CancelScope()
        self.replaced = False
        self.finished = trio.Event()
        """Set once the connection is served to its end (its last frames handled)."""


class _Waiter:
    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.outcome: CallOutcome | None = None


class CsmsServer:
    """The connection layer around one :class:`CentralSystem` (its ``core``).

    The subprotocol it accepts is ``core.plugin.subprotocol``. ``handle_request`` is the
    trio-websocket handler; ``serve_stream`` serves one already-open
    byte stream (an in-memory one under virtual time); ``call`` sends a CS→CP CALL and waits for
    its outcome. Not thread-safe: everything runs in one trio run.
    """

    def __init__(
        self, core: CentralSystem, *, path: str = DEFAULT_PATH, publish: Publish | None = None
    ) -> None:
        self.core = core
        self.path = path
        self._publish_to = publish
        self._live: dict[str, _Live] = {}
        self._waiters: dict[str, _Waiter] = {}
        self._passwords = dict(core.options.passwords)
        """The key each charger must present (``passwords``), as this CSMS last set it: an
        AuthorizationKey a charger accepted over OCPP is its password from then on."""

    @property
    def options(self) -> CsmsOptions:
        """The core's options."""
        return self.core.options

    def connected(self) -> tuple[str, ...]:
        """Identities with a live connection right now."""
        return tuple(self._live)

    async def handle_request(self, request: WebSocketRequest) -> None:
        """Check a handshake, accept or reject it, then serve the connection until it closes or the
        caller is cancelled. Returns normally on any peer behaviour; closes the socket it accepted
        (the caller's transport closes the stream)."""
        identity = identity_from_path(request.path, self.path)
        status = (
            HTTP_NOT_FOUND if identity is None
            else admission_status(
                self.options, identity, _header(request.headers, b"authorization"),
                passwords=self._passwords,
            )
        )
        reason = "unknown path or identity" if status == HTTP_NOT_FOUND else "bad credentials"
        subprotocol = self.core.plugin.subprotocol
        if status is None and subprotocol not in request.proposed_subprotocols:
            status, reason = HTTP_BAD_REQUEST, f"subprotocol {subprotocol} not offered"
        if status is not None or identity is None:
            await self._publish(CsmsNote(
                t=trio.current_time(), charger=identity, what="rejected",
                data={"status": status, "reason": reason, "path": request.path[:300],
                      "subprotocols": list(request.proposed_subprotocols)},
            ))
            await request.reject(status or HTTP_NOT_FOUND)
            return
        ws = await request.accept(subprotocol=subprotocol)
        await self._serve(identity, ws)

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one WebSocket connection over an open byte ``stream`` (e.g. one end of
        ``trio.testing.memory_stream_pair()``): handshake, frames, close. Closes ``stream``."""
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(self.options.handshake_timeout) as handshake:
                request = await wrap_server_stream(
                    nursery, stream, max_message_size=self.options.max_message_size
                )
            if handshake.cancelled_caught:
                nursery.cancel_scope.cancel()
                await trio.aclose_forcefully(stream)
                return
            await self.handle_request(request)
            nursery.cancel_scope.cancel()
        await trio.aclose_forcefully(stream)

    async def _serve(self, identity: str, ws: WebSocketConnection) -> None:
        old = self._live.get(identity)
        if old is not None and old.ws.closed is not None:
            # The charger closed its last connection and is back already: the frames it sent
            # before closing (an answer, then a reconnect with new credentials) are handled
            # first, as they would be on a slower network.
            with trio.move_on_after(DRAIN_TIMEOUT):
                await old.finished.wait()
        now = trio.current_time()
        opened = self.core.connect(identity, now)
        live = _Live(ws, opened.session)
        old = self._live.get(identity)
        self._live[identity] = live
        if old is not None:
            old.replaced = True
            old.scope.cancel()
        self._resolve(identity, opened.abandoned)
        try:
            for event in opened.events:
                await self._publish(event)
            with live.scope:
                await self._read_loop(identity, ws)
        finally:
            if self._live.get(identity) is live:
                del self._live[identity]
            reply = self.core.disconnect(identity, live.session, trio.current_time())
            self._resolve(identity, reply.outcome)
            with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                scope.shield = True
                await ws.aclose(1000, "replaced" if live.replaced else None)
                for event in reply.events:
                    await self._publish(event)
            live.finished.set()

    async def _read_loop(self, identity: str, ws: WebSocketConnection) -> None:
        core = self.core
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                return
            if isinstance(message, bytes):  # OCPP-J is text only: recorded, never answered
                await self._publish(CsmsFrameIn(
                    t=trio.current_time(), charger=identity, raw=binary_preview(message),
                    violations=[BINARY_FRAME],
                ))
                continue
            try:
                reply = core.receive(identity, message, trio.current_time())
            except Exception as exc:  # the core promises not to raise; never trust a promise
                await self._publish(CsmsNote(
                    t=trio.current_time(), charger=identity, what="internal_error",
                    data={"error": repr(exc)},
                ))
                continue
            if not await self._deliver(identity, ws, reply):
                return

    async def _deliver(self, identity: str, ws: WebSocketConnection, reply: Reply) -> bool:
        """Publish ``reply``'s events, send its frames; False once the connection is closed."""
        for event in reply.events:
            await self._publish(event)
        self._resolve(identity, reply.outcome)
        for out in reply.frames:
            text = out.data.decode()
            try:
                await ws.send_message(text)
            except ConnectionClosed:
                return False
            await self._publish(CsmsFrameOut(
                t=trio.current_time(), charger=identity, raw=text, action=out.action
            ))
        return True

    async def call(
        self, identity: str, request: msgspec.Struct, *, wait: float = DEFAULT_CALL_TIMEOUT
    ) -> CallOutcome:
        """Send a CS→CP CALL to ``identity`` and wait for its outcome (at most ``wait`` seconds,
        the response timeout; then the outcome's ``error_code`` is ``"Timeout"``).

        Raises :class:`~simulator.csms.core.CallRefused` when the charger is not connected or a
        CALL to it is outstanding. A timeout, a lost connection or a CALLERROR are outcomes, not
        exceptions. On cancellation the CALL is abandoned (a late answer is then an anomaly).
        """
        live = self._live.get(identity)
        if live is None:
            raise CallRefused(f"{identity} is not connected")
        data = self.core.call(identity, request, trio.current_time())
        waiter = _Waiter()
        self._waiters[identity] = waiter
        try:
            text = data.decode()
            try:
                await live.ws.send_message(text)
            except ConnectionClosed:
                self.core.abandon_call(identity, trio.current_time())
                action = self.core.plugin.action_of(request)
                return CallOutcome(charger=identity, unique_id="", action=action,
                                   error_code=CONNECTION_LOST, error_description="send failed")
            frame = msgspec.json.decode(data)
            await self._publish(CsmsFrameOut(
                t=trio.current_time(), charger=identity, raw=text, action=frame[2]
            ))
            with trio.move_on_after(wait):
                await waiter.done.wait()
        finally:
            if self._waiters.get(identity) is waiter:
                del self._waiters[identity]
            if waiter.outcome is None:
                waiter.outcome = self.core.abandon_call(identity, trio.current_time())
        if waiter.outcome is None:  # the connection was replaced and the core already let go
            raise CallRefused(f"the CALL to {identity} was lost")
        self._learn_key(identity, request, waiter.outcome)
        return waiter.outcome

    def _learn_key(self, identity: str, request: msgspec.Struct, outcome: CallOutcome) -> None:
        """A charger that accepted a new AuthorizationKey presents it from its next connection
        on: with passwords configured, that key is the one it is let in with."""
        if (self._passwords and isinstance(request, ChangeConfigurationRequest)
                and request.key.lower() == "authorizationkey" and outcome.ok
                and getattr(outcome.response, "status", None) == "Accepted"):
            self._passwords[identity] = request.value

    async def poll(self) -> None:
        """Call every connected charge point each ``options.poll_interval`` seconds, in turn
        GetConfiguration and TriggerMessage (Heartbeat), each CALL in a task of its own (a slow
        charger holds up nobody); a charger with a CALL outstanding is skipped that time. Returns
        at once when the option is not set; otherwise runs until cancelled."""
        interval = self.options.poll_interval
        if interval is None:
            return
        requests = itertools.cycle((
            GetConfigurationRequest(),
            TriggerMessageRequest(requested_message=MessageTrigger.HEARTBEAT),
        ))
        async with trio.open_nursery() as nursery:
            while True:
                await trio.sleep(interval)
                request = next(requests)
                for identity in self.connected():
                    if identity not in self._waiters:
                        nursery.start_soon(self._poll_one, identity, request)

    async def _poll_one(self, identity: str, request: msgspec.Struct) -> None:
        try:
            await self.call(identity, request)
        except CallRefused:
            return  # gone or busy since: the next round tries again

    def _resolve(self, identity: str, outcome: CallOutcome | None) -> None:
        if outcome is None:
            return
        waiter = self._waiters.get(identity)
        if waiter is not None and waiter.outcome is None:
            waiter.outcome = outcome
            waiter.done.set()

    async def _publish(self, event: Event) -> None:
        if self._publish_to is None:
            return
        try:
            await self._publish_to(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the bus is gone (shutdown): nothing left to record into


def new_central_system(
    options: CsmsOptions,
    *,
    plugin: ProtocolPlugin = PLUGIN,
    wall_epoch: float | None = None,
    new_id: Callable[[], str] | None = None,
) -> CentralSystem:
    """A :class:`CentralSystem` speaking ``plugin``'s version. Its wall clock is ``wall_epoch +
    now`` (default: real time, ``time.time()`` at trio's ``now == 0``); its CS→CP message ids come
    from ``new_id`` (default: uuid4 strings). Pass both for a reproducible CSMS (virtual time)."""
    return CentralSystem(
        options,
        wall_epoch=time.time() - trio.current_time() if wall_epoch is None else wall_epoch,
        new_id=new_id if new_id is not None else (lambda: str(uuid.uuid4())),
        plugin=plugin,
    )


async def run_csms(
    options: CsmsOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = DEFAULT_PATH,
    publish: Publish | None = None,
    server: CsmsServer | None = None,
    plugin: ProtocolPlugin | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the reference CSMS until cancelled.

    Binds ``host:port`` (0 = any free port) and reports ``task_status.started(url)`` with the real
    port, e.g. ``ws://127.0.0.1:54321/ocpp`` (chargers append ``/<identity>``). Pass ``server`` to
    keep a handle on the :class:`CsmsServer` (and its ``core``) for queries and CS→CP calls;
    otherwise a fresh one is built from ``options`` (and ``server`` must share those options).
    ``plugin`` is the protocol version a fresh server speaks (default OCPP 1.6); a given
    ``server`` speaks its core's, and a different ``plugin`` raises ``ValueError``.
    Cancelling stops listening and closes every connection.
    """
    if server is None:
        core = new_central_system(options, plugin=plugin or PLUGIN)
        server = CsmsServer(core, path=path, publish=publish)
    elif plugin is not None and plugin is not server.core.plugin:
        raise ValueError("run_csms: plugin differs from the given server's core.plugin")
    serve = functools.partial(
        serve_websocket, server.handle_request, host, port, None,
        max_message_size=options.max_message_size,
        connect_timeout=options.handshake_timeout,
        disconnect_timeout=CLOSE_TIMEOUT,
    )
    async with trio.open_nursery() as nursery:
        listening: WebSocketServer = await nursery.start(serve)
        nursery.start_soon(server.poll)
        task_status.started(f"ws://{_url_host(host)}:{listening.port}{server.path.rstrip('/')}")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def open_csms(
    options: CsmsOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = DEFAULT_PATH,
    publish: Publish | None = None,
    core: CentralSystem | None = None,
    plugin: ProtocolPlugin = PLUGIN,
) -> AsyncIterator[RunningCsms]:
    """Run the reference CSMS for the duration of the block and yield a :class:`RunningCsms`
    (its URL, server and core). Leaving the block stops it and closes every connection. A fresh
    core speaks ``plugin``'s version; a given ``core`` speaks its own."""
    server = CsmsServer(core or new_central_system(options, plugin=plugin), path=path,
                        publish=publish)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            _run_with_server, options, host, port, server
        )
        yield RunningCsms(url, server)
        nursery.cancel_scope.cancel()


async def _run_with_server(
    options: CsmsOptions, host: str, port: int, server: CsmsServer,
    *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    await run_csms(options, host=host, port=port, server=server, task_status=task_status)


class RunningCsms:
    """A CSMS started by :func:`open_csms`: ``url`` to connect to, ``server`` for CS→CP calls,
    ``core`` for queries."""

    __slots__ = ("server", "url")

    def __init__(self, url: str, server: CsmsServer) -> None:
        self.url = url
        self.server = server

    @property
    def core(self) -> CentralSystem:
        """The sans-IO central system (transactions, charger states, statistics)."""
        return self.server.core
