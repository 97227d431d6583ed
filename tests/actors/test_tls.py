"""wss:// with the TLS files of the fleet file: every WebSocket client verifies the CSMS's
certificate against ``ca_file`` (or the system store), on 127.0.0.1 with a throwaway CA from
trustme."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from simulator.actors.transport import ConnectError, WebSocketClient
from simulator.config import parse_fleet
from simulator.runtime import tls_context
from tests.actors.servers import CLIENTS, SUBPROTOCOL, opener_for


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[SUBPROTOCOL])
async def tls_server(authority: trustme.CA, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An echoing WebSocket server behind TLS for 127.0.0.1 that selects ``request.param`` as
    the subprotocol; yields its wss:// URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    selected: str | None = request.param

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=selected)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send_message(await ws.get_message())

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, context)
        yield f"wss://127.0.0.1:{server.port}/ocpp"
        nursery.cancel_scope.cancel()


def fleet_context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    ca = f'ca_file = "{ca_file}"\n' if ca_file is not None else ""
    fleet = parse_fleet(
        f'[csms]\nurl = "{url}"\n{ca}\n[[group]]\nname = "g"\nid = "CP-{{n}}"\n'
        'vendor = "Acme"\nmodel = "AC22"\n'
    )
    return tls_context(fleet)


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_csms_certificate_is_verified_against_ca_file(
    tls_server: str, authority: trustme.CA, tmp_path: Path, client: WebSocketClient
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = fleet_context(tls_server, ca_file)
    assert context is not None
    with trio.fail_after(10):
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context) as transport:
            await transport.send('[2,"1","Heartbeat",{}]')
            assert await transport.receive() == '[2,"1","Heartbeat",{}]'
            assert transport.subprotocol == SUBPROTOCOL


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_unknown_authority_is_refused_with_one_line(
    tls_server: str, client: WebSocketClient
) -> None:
    context = fleet_context(tls_server, None)  # the system store does not know trustme's CA
    with trio.fail_after(10), pytest.raises(ConnectError) as refused:
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context, connect_timeout=3):
            pass
    message = str(refused.value)
    assert message.startswith(tls_server) and "\n" not in message
    assert "certificate" in message.lower()


@pytest.mark.parametrize("tls_server", [None], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
async def test_a_server_without_the_subprotocol_is_refused_over_tls_too(
    tls_server: str, authority: trustme.CA, tmp_path: Path, client: WebSocketClient
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with trio.fail_after(10), pytest.raises(ConnectError, match="did not select subprotocol"):
        context = fleet_context(tls_server, ca_file)
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context):
            pass


def test_plain_ws_needs_no_tls_context() -> None:
    assert fleet_context("ws://127.0.0.1:9000/ocpp", None) is None
