"""A hostile central system on the WebSocket wire, for the end-to-end fuzz test.

:class:`HostileCsms` serves each charger connection (its end of an in-memory byte stream, as
:func:`simulator.actors.streams.memory_connector` hands it over) with wsproto, so that it owns
every WebSocket frame: it accepts the handshake, answers the charger's CALLs with
:meth:`~tests.fuzz.hostile.HostileFrames.answer` (or lets them time out) in a mood picked at
each new connection (mixed, or for a while a CALLERROR for everything, broken results, rejected
boots, silence), and meanwhile attacks
each connection: CALLs and broken frames of every kind, as text or as binary messages; 16 MB
messages; floods of pings; abrupt closes (the stream shut with no close frame); close frames;
silence.

It checks what comes back, and lists every problem in :attr:`HostileCsms.problems`:

- every frame the charger sends is a text message of valid OCPP-J, valid for the official 1.6
  schemas (a CALLRESULT for the response schema of the CALL it answers);
- each of its CALL ids is new;
- every CALL of ours the charger can read is answered once, as :class:`~tests.fuzz.hostile.
  Expect` says, on the connection that carried it; excused are a CALL the connection did not
  outlive by :data:`GRACE` seconds and one the charger may have heard while its boot was
  Rejected (it is silent then). A binary message is only checked if answered (OCPP-J is text:
  the charger may ignore it).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import json
import random
from typing import Any, Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from tests.fuzz.hostile import MOODS, Hostile, HostileFrames
from tests.oracle import ERROR_CODES_16, ORACLE

GRACE: Final = 1.0
"""Seconds a connection must outlive one of our CALLs for its answer to be owed."""
SUBPROTOCOL: Final = "ocpp1.6"


@dataclasses.dataclass
class _Sent:
    frame: Hostile
    at: float
    rejected: bool
    """The charger's boot may have been Rejected when it read the CALL."""
    binary: bool


@dataclasses.dataclass
class _Link:
    identity: str
    stream: trio.abc.Stream
    ws: WSConnection = dataclasses.field(
        default_factory=lambda: WSConnection(ConnectionType.SERVER))
    lock: trio.Lock = dataclasses.field(default_factory=trio.Lock)
    pending: dict[str, collections.deque[_Sent]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.deque))
    ended_at: float | None = None


class _Ended(Exception):
    """The connection is gone."""


class HostileCsms:
    """The hostile CS of every charger (see the module docstring). ``budget`` is the number of
    frames (ours and our answers) after which it stops attacking and only answers; ``done`` is
    set then."""

    def __init__(self, seed: int, budget: int, huge: int = 4) -> None:
        self.seed = seed
        self._rngs: dict[str, random.Random] = {}
        self._hostile: dict[str, HostileFrames] = {}
        self.budget = budget
        self.huge_left = huge
        self.done = trio.Event()
        self.frames = 0
        self.tally: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []
        self.answered: set[str] = set()
        """Ids of our CALLs the charger answered."""
        self._rejected: dict[str, bool] = collections.defaultdict(bool)
        self._charger_ids: set[tuple[str, str]] = set()
        self._transaction_ids = itertools.count(1)

    # --- each charger's own randomness: trio orders the tasks of one instant at random, so a
    # stream shared by the chargers would give each a different share of the hostility in
    # every run of the same seed ------------------------------------------------------------

    def rng(self, identity: str) -> random.Random:
        """The stream of ``identity``'s connections (moods, pauses, picks)."""
        if identity not in self._rngs:
            self._rngs[identity] = random.Random(f"{self.seed}:{identity}")
        return self._rngs[identity]

    def hostile(self, identity: str) -> HostileFrames:
        """The frames made for ``identity`` (with their own stream)."""
        if identity not in self._hostile:
            self._hostile[identity] = HostileFrames(random.Random(f"{self.seed + 1}:{identity}"))
        return self._hostile[identity]

    # --- the connection ----------------------------------------------------------------------

    async def serve(self, identity: str, stream: trio.abc.Stream) -> None:
        """Serve one connection of ``identity`` until it ends; close ``stream``."""
        link = _Link(identity, stream)
        self.tally["connections"] += 1
        rng = self.rng(identity)
        self.hostile(identity).mood = rng.choice(MOODS) if rng.random() < 0.3 else "mixed"
        try:
            if await self._handshake(link):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, link, nursery.cancel_scope)
                    nursery.start_soon(self._attack, link, nursery.cancel_scope)
        finally:
            link.ended_at = trio.current_time()
            self._account(link)
            await trio.aclose_forcefully(stream)

    async def _handshake(self, link: _Link) -> bool:
        while True:
            data = await link.stream.receive_some(65_536)
            if not data:
                return False
            link.ws.receive_data(bytes(data))
            for event in link.ws.events():
                if isinstance(event, Request):
                    await link.stream.send_all(link.ws.send(
                        AcceptConnection(subprotocol=SUBPROTOCOL)))
                    return True

    async def _send(self, link: _Link, event: Event) -> None:
        """Send one WebSocket event; the connection is over (:class:`_Ended`) once the stream
        is gone or the closing handshake has begun. (The server runs in the charger's
        connection nursery: an exception out of it would crash the charger.)"""
        async with link.lock:
            try:
                data = link.ws.send(event)
            except LocalProtocolError:
                raise _Ended from None
            try:
                await link.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Ended from None

    async def _read(self, link: _Link, scope: trio.CancelScope) -> None:
        text: list[str] = []
        try:
            while True:
                try:
                    data = await link.stream.receive_some(1 << 20)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not data:
                    break
                link.ws.receive_data(bytes(data))
                for event in link.ws.events():
                    match event:
                        case TextMessage():
                            text.append(event.data)
                            if event.message_finished:
                                await self._on_frame(link, "".join(text))
                                text.clear()
                        case BytesMessage():
                            self.problems.append(f"{link.identity} sent a binary message")
                        case Ping():
                            await self._send(link, event.response())
                        case CloseConnection():
                            with trio.move_on_after(1):
                                await self._send(link, event.response())
                            raise _Ended
        except _Ended:
            pass
        scope.cancel()

    # --- what the charger sends ----------------------------------------------------------------

    async def _on_frame(self, link: _Link, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.problems.append(f"{link.identity} sent no JSON: {text[:200]!r}")
            return
        if not (isinstance(frame, list) and frame and frame[0] in (2, 3, 4)):
            self.problems.append(f"{link.identity} sent {text[:200]!r}")
            return
        if frame[0] == 2:
            await self._on_call(link, frame, text)
        else:
            self._on_answer(link, frame, text)

    async def _on_call(self, link: _Link, frame: list[Any], text: str) -> None:
        identity = link.identity
        problems = ORACLE.check_frame_out(text, {})
        if problems:
            self.problems.append(f"{identity}: {text[:200]!r}: {problems}")
        _, uid, action, payload = frame
        if (identity, uid) in self._charger_ids:
            self.problems.append(f"{identity} reused message id {uid}")
        self._charger_ids.add((identity, uid))
        if action == "BootNotification":
            self._rejected[identity] = False
        now = dt.datetime.fromtimestamp(1_767_225_600 + trio.current_time(), tz=dt.UTC)
        answer = self.hostile(identity).answer(uid, action, payload, now.isoformat(),
                                     next(self._transaction_ids))
        if answer is None or self.rng(identity).random() < 0.05:
            self.tally["silence"] += 1
            return
        kind, data = answer
        if action == "BootNotification" and _rejects(data):
            self._rejected[identity] = True
        await self._frame(link, kind, data)

    def _on_answer(self, link: _Link, frame: list[Any], text: str) -> None:
        uid = frame[1]
        waiting = link.pending.get(uid)
        if not waiting:
            if "\ufffd" not in uid:  # (the id of a binary message read with a broken byte)
                self.problems.append(f"{link.identity} answered no CALL: {text[:200]!r}")
            return
        # The charger may ignore a binary message: an answer is for the first text CALL of that
        # id when there is one (a hostile id can be reused by a binary and a text CALL).
        sent = next((s for s in waiting if not s.binary), waiting[0])
        waiting.remove(sent)
        self.answered.add(uid)
        self.tally["answered"] += 1
        where = f"{link.identity}: {sent.frame.kind} {sent.frame.data[:120]!r} → {text[:200]!r}"
        if frame[0] == 3:
            action = sent.frame.action or ""
            problems = ORACLE.check_frame_out(json.dumps([3, "id", frame[2]]), {"id": action})
        else:
            problems = ORACLE.check_frame_out(json.dumps([4, "id", *frame[2:]]), {})
            problems += [] if frame[2] in ERROR_CODES_16 else [f"code {frame[2]}"]
        if problems:
            self.problems.append(f"{where}: {problems}")
        if sent.binary:
            return
        expect = sent.frame.expect
        if expect.answer == "result" and frame[0] != 3:
            self.problems.append(f"{where}: expected a CALLRESULT")
        if expect.answer == "error" and (frame[0] != 4 or expect.code not in (None, frame[2])):
            self.problems.append(f"{where}: expected {expect.code}")

    def _account(self, link: _Link) -> None:
        """At the end of a connection: every CALL owed an answer got one."""
        assert link.ended_at is not None
        for waiting in link.pending.values():
            for sent in waiting:
                excused = sent.binary or link.ended_at - sent.at <= GRACE or sent.rejected
                if not excused:
                    self.problems.append(f"{link.identity}: never answered {sent.frame.kind} "
                                         f"{sent.frame.data[:200]!r} sent at t={sent.at}")

    # --- the attack ----------------------------------------------------------------------------

    async def _frame(self, link: _Link, kind: str, data: str | bytes,
                     call: Hostile | None = None) -> None:
        """Send one frame: text, or a binary message for bytes (and for text no UTF-8 can
        carry); a CALL that is owed an answer joins the link's pending ones."""
        binary = isinstance(data, bytes)
        if isinstance(data, str) and not _utf8(data):
            data, binary = data.encode(errors="surrogatepass"), True
        if call is not None and call.unique_id is not None and call.expect.answer != "none":
            link.pending[call.unique_id].append(
                _Sent(call, trio.current_time(), self._rejected[link.identity], binary))
        self.frames += 1
        self.tally["binary" if binary else kind] += 1
        message: Event = BytesMessage(data=data) if isinstance(data, bytes) \
            else TextMessage(data=data)
        await self._send(link, message)
        if self.frames >= self.budget:
            self.done.set()

    async def _attack(self, link: _Link, scope: trio.CancelScope) -> None:
        rng = self.rng(link.identity)
        try:
            while not self.done.is_set():
                await trio.sleep(rng.choice((0.05, 0.2, 1.0, 3.0)))
                pick = rng.random()
                if pick < 0.86:
                    call = self.hostile(link.identity).any_call()
                    await self._frame(link, call.kind, call.data, call)
                elif pick < 0.90:
                    self.tally["ping_flood"] += 1
                    for _ in range(200):
                        await self._send(link, Ping(payload=b"flood"))
                elif pick < 0.93:
                    self.tally["silence"] += 1
                    await trio.sleep(rng.uniform(60, 400))
                elif pick < 0.96:
                    self.tally["abrupt_close"] += 1
                    await link.stream.aclose()
                    break
                elif pick < 0.98:
                    self.tally["close_frame"] += 1
                    code = rng.choice((1000, 1001, 1008, 1011, 4000))
                    await self._send(link, CloseConnection(code=code, reason="hostile"))
                    await trio.sleep(1)
                    break
                elif self.huge_left > 0:
                    self.huge_left -= 1
                    call = self.hostile(link.identity).huge()
                    await self._frame(link, "huge", call.data, call)
            else:
                await trio.sleep_forever()
        except _Ended:
            pass
        scope.cancel()


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _rejects(data: str | bytes) -> bool:
    """Our answer to a BootNotification is a valid Rejected."""
    frame = json.loads(data)
    return (frame[0] == 3 and isinstance(frame[2], dict)
            and not ORACLE.errors("BootNotification", "response", frame[2])
            and frame[2].get("status") == "Rejected")


__all__ = ["GRACE", "HostileCsms"]
