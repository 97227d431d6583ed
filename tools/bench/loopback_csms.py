"""A minimal OCPP 1.6-J central system for benchmarks: answers everything, validates nothing.

Benchmarks compare charger fleets (ours on Trio, the PyPI ``ocpp`` one on asyncio) against the same
central system, which must never be the bottleneck. This one costs as little per message as the
Python stack allows: websockets (asyncio) without compression or pings, frames read as bytes and
decoded by one msgspec decoder, answers built from pre-encoded bodies and sent as text without a
re-encode. Every CP→CS action gets a minimal answer that is valid under the official schemas
(BootNotification Accepted with ``--interval``, Authorize/StartTransaction/StopTransaction
Accepted with an increasing transactionId, DataTransfer Accepted, ``{}`` for the rest); an unknown
action gets a CALLERROR NotImplemented; anything that is not a CALL is only counted.

Usage::

    python tools/bench/loopback_csms.py --port 0 --ready port.txt --stats stats.json

``--ready`` receives the bound port once listening; ``--stats`` is rewritten (atomically) every
second with the counters, and once more at exit. SIGTERM or SIGINT stops it and prints the final
counters as one JSON line on stdout. Chargers connect to ``ws://127.0.0.1:<port>/ocpp/<id>``
(any path is accepted) with subprotocol ``ocpp1.6``. Built for 10,000+ concurrent connections: the
open-files soft limit is raised to the hard limit and the listen backlog is large.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

SUBPROTOCOL: Final = Subprotocol("ocpp1.6")
DEFAULT_INTERVAL_S: Final = 10
"""Heartbeat interval in the BootNotification answer when ``--interval`` is not given (the
benchmarks give their workload's)."""
DEFAULT_BACKLOG: Final = 8192
STATS_PERIOD_S: Final = 1.0

_ACCEPTED_INFO: Final = b'{"idTagInfo":{"status":"Accepted"}}'
_STATIC_BODIES: Final[dict[str, bytes]] = {
    "Authorize": _ACCEPTED_INFO,
    "StopTransaction": _ACCEPTED_INFO,
    "DataTransfer": b'{"status":"Accepted"}',
    "MeterValues": b"{}",
    "StatusNotification": b"{}",
    "FirmwareStatusNotification": b"{}",
    "DiagnosticsStatusNotification": b"{}",
    "SecurityEventNotification": b"{}",
    "LogStatusNotification": b"{}",
    "SignedFirmwareStatusNotification": b"{}",
    "SignCertificate": b'{"status":"Accepted"}',
}


class _Call(msgspec.Struct, array_like=True):
    """``[2, id, action, payload]``; the payload is never decoded."""

    message_type: int
    unique_id: str
    action: str
    payload: msgspec.Raw


_decode_call: Final = msgspec.json.Decoder(_Call).decode
_encode: Final = msgspec.json.Encoder().encode


@dataclass
class Counters:
    """What the server has seen so far (mutated only by the event loop thread)."""

    received: int = 0
    answered: int = 0
    not_calls: int = 0
    unknown_actions: int = 0
    clients: int = 0
    max_clients: int = 0
    connections_total: int = 0
    by_action: Counter[str] = field(default_factory=Counter)

    def snapshot(self, started: float) -> dict[str, Any]:
        """A JSON-ready copy, with process CPU and uptime."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "t": time.time(),
            "uptime_s": round(time.monotonic() - started, 3),
            "received": self.received,
            "answered": self.answered,
            "not_calls": self.not_calls,
            "unknown_actions": self.unknown_actions,
            "clients": self.clients,
            "max_clients": self.max_clients,
            "connections_total": self.connections_total,
            "by_action": dict(self.by_action),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }


class Responder:
    """Builds the answer to one CALL frame; owns the transaction id counter."""

    def __init__(self, interval: int, counters: Counters) -> None:
        self._interval = interval
        self._counters = counters
        self._transaction_ids = itertools.count(1)
        self._clock_second = -1
        self._clock_json = b'""'

    def _current_time(self) -> bytes:
        now = time.time()
        if int(now) != self._clock_second:  # re-encode the timestamp once per second
            self._clock_second = int(now)
            text = datetime.fromtimestamp(self._clock_second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._clock_json = b'"' + text.encode() + b'"'
        return self._clock_json

    def answer(self, data: bytes) -> bytes | None:
        """The frame to send back for ``data``, or ``None`` when nothing is due."""
        counters = self._counters
        counters.received += 1
        try:
            frame = _decode_call(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            counters.not_calls += 1
            return None
        if frame.message_type != 2:
            counters.not_calls += 1
            return None
        action = frame.action
        counters.by_action[action] += 1
        body = _STATIC_BODIES.get(action)
        if body is None:
            if action == "Heartbeat":
                body = b'{"currentTime":' + self._current_time() + b"}"
            elif action == "BootNotification":
                body = (b'{"status":"Accepted","currentTime":' + self._current_time()
                        + b',"interval":' + str(self._interval).encode() + b"}")
            elif action == "StartTransaction":
                body = (b'{"idTagInfo":{"status":"Accepted"},"transactionId":'
                        + str(next(self._transaction_ids)).encode() + b"}")
            else:
                counters.unknown_actions += 1
                return (b"[4," + _encode(frame.unique_id) + b',"NotImplemented",'
                        + _encode(f"unknown action {action}"[:255]) + b",{}]")
        counters.answered += 1
        return b"[3," + _encode(frame.unique_id) + b"," + body + b"]"


def make_handler(
    responder: Responder, counters: Counters
) -> Callable[[ServerConnection], Any]:
    """The per-connection coroutine: read frames as bytes, answer each in order."""

    async def handler(connection: ServerConnection) -> None:
        counters.clients += 1
        counters.connections_total += 1
        counters.max_clients = max(counters.max_clients, counters.clients)
        answer = responder.answer
        try:
            while True:
                data = await connection.recv(decode=False)
                reply = answer(data)
                if reply is not None:
                    await connection.send(reply, text=True)
        except ConnectionClosed:
            pass
        finally:
            counters.clients -= 1

    return handler


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers never see a partial file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def run_loopback(args: argparse.Namespace) -> dict[str, Any]:
    """Serve until SIGTERM/SIGINT; return the final counters."""
    started = time.monotonic()
    counters = Counters()
    responder = Responder(args.interval, counters)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stats_path = Path(args.stats) if args.stats else None

    async with serve(
        make_handler(responder, counters), args.host, args.port,
        subprotocols=[SUBPROTOCOL], compression=None, ping_interval=None,
        close_timeout=1, backlog=args.backlog, reuse_address=True,
        max_size=2**20,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        if args.ready:
            write_atomically(Path(args.ready), f"{port}\n")
        while not stop.is_set():
            if stats_path is not None:
                write_atomically(stats_path, json.dumps(counters.snapshot(started)) + "\n")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATS_PERIOD_S):
                    await stop.wait()
    final = counters.snapshot(started)
    if stats_path is not None:
        write_atomically(stats_path, json.dumps(final) + "\n")
    return final


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument("--ready", help="file that receives the bound port")
    parser.add_argument("--stats", help="JSON file rewritten every second with the counters")
    parser.add_argument("--interval", type=int, default=DEFAULT_INTERVAL_S,
                        help="heartbeat interval in the BootNotification answer (s)")
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG,
                        help="listen backlog (the kernel caps it at net.core.somaxconn)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: serve until signalled, then print the final counters as JSON."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raise_open_files_limit()
    final = asyncio.run(run_loopback(args))
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()
