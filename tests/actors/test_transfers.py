"""Real transfers against a real HTTP server on 127.0.0.1 (port 0, real clock, bounded by
``trio.fail_after``): :func:`simulator.actors.transfers.perform` on its own, then a charger actor
with ``real_transfers`` that downloads its firmware, reboots into it, and uploads diagnostics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
import trio

from simulator.actors.charger import ChargerEnv, run_charger
from simulator.actors.transfers import TransferDone, perform, run_transfer
from simulator.machines.effects import Transfer, TransferKind
from simulator.machines.parts import FirmwareSpec
from simulator.ocpp.v16 import GetDiagnosticsRequest, UpdateFirmwareRequest
from tests.actors.servers import read_request
from tests.actors.test_charger_actor import FakeCsms, Recorder, make_env

LIMIT = 20.0
"""Seconds any test here may take at most."""


@dataclasses.dataclass
class HttpServer:
    """A tiny HTTP/1.1 server: GET serves ``files``, PUT stores into ``uploads``; one request
    per connection. ``stall``: accept and never answer."""

    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    uploads: dict[str, bytes] = dataclasses.field(default_factory=dict)
    requests: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    stall: bool = False
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = await read_request(stream)
            if b"\r\n\r\n" not in data:
                return
            head, _, body = data.partition(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = dict((k.strip().lower(), v.strip())
                           for k, v in (line.split(":", 1) for line in header_lines))
            while len(body) < int(headers.get("content-length", "0")):
                body += await stream.receive_some(65536)
            self.requests.append((method, target))
            if self.stall:
                await trio.sleep_forever()
            status, payload = "404 Not Found", b""
            if method == "GET" and target in self.files:
                status, payload = "200 OK", self.files[target]
            elif method == "PUT":
                self.uploads[target] = body
                status = "201 Created"
            await stream.send_all(f"HTTP/1.1 {status}\r\nContent-Length: {len(payload)}\r\n"
                                  "Connection: close\r\n\r\n".encode() + payload)


@asynccontextmanager
async def open_http_server(server: HttpServer) -> AsyncIterator[HttpServer]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


def download(url: str, timeout: float = 5.0) -> Transfer:
    return Transfer(job="firmware-1/1", kind=TransferKind.DOWNLOAD, url=url, timeout=timeout)


async def test_downloads_and_uploads_over_http() -> None:
    image = bytes(range(256)) * 100
    with trio.fail_after(LIMIT):
        async with open_http_server(HttpServer(files={"/fw/a.bin": image})) as server:
            assert await perform(download(server.url("/fw/a.bin"))) == \
                TransferDone("firmware-1/1", True, image)
            missing = await perform(download(server.url("/fw/none.bin")))
            assert (missing.ok, missing.detail) == (False, "HTTP 404")
            put = Transfer(job="log-2/1", kind=TransferKind.UPLOAD,
                           url=server.url("/up/x.log"), body=b"log lines\n", timeout=5.0)
            assert await perform(put) == TransferDone("log-2/1", True)
            assert server.uploads == {"/up/x.log": b"log lines\n"}


async def test_failures_are_outcomes_not_exceptions() -> None:
    with trio.fail_after(LIMIT):
        async with open_http_server(HttpServer(stall=True)) as server:
            slow = await perform(download(server.url("/fw.bin"), timeout=0.3))
            assert (slow.ok, slow.detail) == (False, "timed out after 0.3 s")
        closed = await perform(download(server.url("/fw.bin")))  # nobody listens any more
        assert not closed.ok and closed.detail.startswith("ConnectError")
        secret = await perform(download("http://user:s3cret@127.0.0.1:1/fw.bin"))
        assert not secret.ok and "s3cret" not in secret.detail
        for odd in ("http://a..b/fw.bin", "http://xn--/fw.bin", "http://[::1/fw.bin",
                    "http://" + "h" * 64 + ".example/fw.bin"):
            broken = await perform(download(odd))  # (httpx cannot parse or encode these)
            assert not broken.ok and broken.detail, odd
        inbox_send, inbox = trio.open_memory_channel[TransferDone](1)
        await inbox.aclose()
        await run_transfer(download("http://127.0.0.1:1/"), inbox_send.send)  # dropped


async def wait_for(predicate: Callable[[], object]) -> None:
    """Poll ``predicate`` until it holds (the caller bounds the wait with ``fail_after``): the
    fake CSMS has no event to wait on, and real sockets rule out the mock clock."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(0.01)


async def test_a_charger_downloads_its_firmware_and_uploads_diagnostics() -> None:
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    env = dataclasses.replace(env, spec=msgspec.structs.replace(
        env.spec, real_transfers=True, reboot_delay=0.2, firmware_version="1.0",
        firmware=FirmwareSpec(download=60, install=0.05, upload=60),
    ))
    assert isinstance(env, ChargerEnv)
    control = recorder.control()
    files = {"/fw/acme-9.bin": b"firmware 9"}
    with trio.fail_after(LIMIT):
        async with open_http_server(HttpServer(files=files)) as server, \
                trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(run_charger, env, control)
            await wait_for(lambda: csms.calls("CP-1", "StatusNotification"))
            past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # download at once
            await send(csms, UpdateFirmwareRequest(location=server.url("/fw/acme-9.bin"),
                                                   retrieve_date=past))
            await wait_for(lambda: len(csms.calls("CP-1", "BootNotification")) == 2)
            await send(csms, GetDiagnosticsRequest(location=server.url("/diag/")))
            await wait_for(lambda: [p for p in csms.calls("CP-1",
                                                          "DiagnosticsStatusNotification")
                                    if p["status"] == "Uploaded"])
            nursery.cancel_scope.cancel()
    assert [p["status"] for p in csms.calls("CP-1", "FirmwareStatusNotification")] == \
        ["Downloading", "Downloaded", "Installing", "Installed"]
    assert [b.get("firmwareVersion") for b in csms.calls("CP-1", "BootNotification")] == \
        ["1.0", "acme-9"]
    [(path, body)] = server.uploads.items()
    assert path.startswith("/diag/diagnostics-CP-1-") and b"firmware acme-9" in body
    assert server.requests[0] == ("GET", "/fw/acme-9.bin")


async def send(csms: FakeCsms, request: msgspec.Struct) -> None:
    frame = csms.core.call("CP-1", request, trio.current_time())
    await csms.live["CP-1"].send(frame.decode())
    assert json.loads(frame)[0] == 2
