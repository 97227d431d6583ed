"""The reference CSMS over real WebSockets on 127.0.0.1 (port 0), and over in-memory streams.

Every socket test is bounded by ``trio.fail_after``. Clients are plain trio-websocket connections
that send hand-written OCPP-J frames, so the server is tested without the simulator's chargers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from simulator.csms import CentralSystem, CsmsOptions, open_csms, run_csms
from simulator.csms.core import TIMEOUT, CallRefused
from simulator.csms.server import CsmsServer, RunningCsms, identity_from_path
from simulator.events import CsmsFrameIn, CsmsFrameOut, CsmsNote, Event
from simulator.ocpp.frames import BINARY_FRAME
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN, ResetRequest, ResetResponse, ResetStatus, ResetType
from simulator.seeds import counter_ids
from tests.oracle import ORACLE

LIMIT = 10.0
OCPP16 = PLUGIN.subprotocol
TS = "2026-01-01T00:00:00Z"
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


class Recorder:
    """A ``publish`` callable that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_notes(self, what: str, count: int) -> None:
        """Wait until ``count`` notes ``what`` were published."""
        while len(self.notes(what)) < count:
            await self._changed.wait()

    def notes(self, what: str) -> list[CsmsNote]:
        return [e for e in self.events if isinstance(e, CsmsNote) and e.what == what]


async def call(ws: WebSocketConnection, unique_id: str, action: str, payload: Any) -> list[Any]:
    """Send a CALL and return the parsed answer (which must answer it)."""
    await ws.send_message(json.dumps([2, unique_id, action, payload]))
    answer: list[Any] = json.loads(await ws.get_message())
    assert answer[1] == unique_id
    if answer[0] == 3:
        assert ORACLE.errors(action, "response", answer[2]) == []
    return answer


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def csms(recorder: Recorder) -> AsyncIterator[RunningCsms]:
    async with open_csms(CsmsOptions(), publish=recorder) as running:
        yield running


async def test_boot_heartbeat_and_a_transaction(csms: RunningCsms, recorder: Recorder) -> None:
    assert csms.url.startswith("ws://127.0.0.1:")
    assert csms.url.endswith("/ocpp")
    assert int(csms.url.split(":")[2].split("/")[0]) > 0
    with trio.fail_after(LIMIT):
        async with open_websocket_url(csms.url + "/CP%201", subprotocols=[OCPP16]) as ws:
            assert ws.subprotocol == OCPP16
            boot = await call(ws, "1", "BootNotification", BOOT)
            assert boot[2]["status"] == "Accepted"
            assert (await call(ws, "2", "Heartbeat", {}))[0] == 3
            start = await call(ws, "3", "StartTransaction",
                               {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": TS})
            tx = start[2]["transactionId"]
            await call(ws, "4", "MeterValues", {
                "connectorId": 1, "transactionId": tx,
                "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "700"}]}],
            })
            stop = await call(ws, "5", "StopTransaction",
                              {"transactionId": tx, "meterStop": 900, "timestamp": TS})
            assert stop == [3, "5", {}]
            state = csms.core.charger_state("CP 1")
            assert state is not None
            assert state.connected
            assert csms.server.connected() == ("CP 1",)
        record = csms.core.transaction(tx)
        assert record is not None
        assert (record.charger, record.energy_wh, record.running) == ("CP 1", 900, False)
        await recorder.wait_notes("disconnected", 1)
    assert csms.server.connected() == ()
    ins = [e for e in recorder.events if isinstance(e, CsmsFrameIn)]
    outs = [e for e in recorder.events if isinstance(e, CsmsFrameOut)]
    assert [e.action for e in ins] == [
        "BootNotification", "Heartbeat", "StartTransaction", "MeterValues", "StopTransaction"
    ]
    assert [e.action for e in outs] == [e.action for e in ins]
    assert {e.charger for e in ins + outs} == {"CP 1"}
    assert [n.charger for n in recorder.notes("connected")] == ["CP 1"]
    assert [n.data["current"] for n in recorder.notes("disconnected")] == [True]


@pytest.mark.parametrize("subprotocols", [[], ["ocpp2.0.1"], ["OCPP1.6"]])
async def test_a_client_without_the_subprotocol_is_refused(
    csms: RunningCsms, recorder: Recorder, subprotocols: list[str]
) -> None:
    with trio.fail_after(LIMIT), pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(csms.url + "/CP-1", subprotocols=subprotocols):
            pass
    assert refused.value.status_code == 400
    assert [n.data["status"] for n in recorder.notes("rejected")] == [400]
    assert csms.core.charger_state("CP-1") is None


@pytest.mark.parametrize("path", ["/other/CP-1", "/ocpp/", "/ocpp", "/ocpp/a/b", "/ocppCP-1",
                                  "/ocpp/%FF"])
async def test_a_wrong_path_is_refused_with_404(csms: RunningCsms, path: str) -> None:
    base = csms.url.removesuffix("/ocpp")
    with trio.fail_after(LIMIT), pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(base + path, subprotocols=[OCPP16]):
            pass
    assert refused.value.status_code == 404


PATHS: list[tuple[str, str, str | None]] = [
    ("/ocpp/CP-1", "/ocpp", "CP-1"),
    ("/ocpp/RDAM%20123", "/ocpp", "RDAM 123"),
    ("/ocpp/CP-1?token=x", "/ocpp", "CP-1"),
    ("/ocpp/CP-1", "/ocpp/", "CP-1"),
    ("/CP-1", "/", "CP-1"),
    ("/CP-1", "", "CP-1"),
    ("/ocpp/a%2Fb", "/ocpp", "a/b"),
    ("/ocpp/", "/ocpp", None),
    ("/ocpp/a/b", "/ocpp", None),
    ("/x/CP-1", "/ocpp", None),
    ("/ocpp/%E2%82", "/ocpp", None),
    ("/ocpp/" + "x" * 256, "/ocpp", None),
]


@pytest.mark.parametrize(("path", "prefix", "identity"), PATHS)
def test_identity_from_path(path: str, prefix: str, identity: str | None) -> None:
    assert identity_from_path(path, prefix) == identity


async def test_garbage_frames_are_answered_and_the_connection_survives(
    csms: RunningCsms, recorder: Recorder
) -> None:
    with trio.fail_after(LIMIT):
        async with open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16]) as ws:
            await ws.send_message("not json at all")
            await ws.send_message(b"\xff\xfe binary garbage")
            await ws.send_message('[5, "x", {}]')
            assert (await call(ws, "a", "NoSuchAction", {}))[2] == "NotImplemented"
            assert (await call(ws, "b", "Reset", {"type": "Hard"}))[2] == "NotSupported"
            assert (await call(ws, "c", "Authorize", {"idTag": 1}))[2] == (
                "TypeConstraintViolation"
            )
            await ws.send_message('[2, "d", "Heartbeat"]')
            assert json.loads(await ws.get_message())[:3] == [4, "d", "FormationViolation"]
            assert (await call(ws, "e", "BootNotification", BOOT))[0] == 3
    broken = [e for e in recorder.events if isinstance(e, CsmsFrameIn) and e.violations]
    assert len(broken) == 7
    assert broken[1].raw.startswith("(binary, 17 bytes)")  # recorded, never decoded
    assert broken[1].violations == [BINARY_FRAME]
    assert csms.core.statistics().frame_errors == 3


async def test_a_second_socket_with_the_same_identity_replaces_the_first(
    csms: RunningCsms, recorder: Recorder
) -> None:
    url = csms.url + "/CP-1"
    with trio.fail_after(LIMIT):
        async with open_websocket_url(url, subprotocols=[OCPP16]) as first:
            await call(first, "1", "BootNotification", BOOT)
            async with open_websocket_url(url, subprotocols=[OCPP16]) as second:
                with pytest.raises(ConnectionClosed) as closed:
                    await first.get_message()
                assert closed.value.reason is not None
                assert closed.value.reason.code == 1000
                assert closed.value.reason.reason == "replaced"
                assert (await call(second, "2", "Heartbeat", {}))[0] == 3
                state = csms.core.charger_state("CP-1")
                assert state is not None
                assert (state.connected, state.connections, state.replaced) == (True, 2, 1)
                assert csms.server.connected() == ("CP-1",)
            await recorder.wait_notes("disconnected", 2)
    assert csms.server.connected() == ()
    assert len(recorder.notes("replaced")) == 1
    assert sorted(n.data["current"] for n in recorder.notes("disconnected")) == [False, True]
    assert csms.core.statistics().replaced_connections == 1


async def test_basic_auth_when_passwords_are_configured() -> None:
    options = CsmsOptions(passwords={"CP-1": "0123456789abcdef"})
    good = [(b"Authorization", b"Basic " + base64.b64encode(b"CP-1:0123456789abcdef"))]
    bad = [(b"Authorization", b"Basic " + base64.b64encode(b"CP-1:guess"))]
    with trio.fail_after(LIMIT):
        async with open_csms(options) as csms:
            for headers in (bad, []):
                with pytest.raises(ConnectionRejected) as refused:
                    async with open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16],
                                                  extra_headers=headers):
                        pass
                assert refused.value.status_code == 401
            async with open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16],
                                          extra_headers=good) as ws:
                assert (await call(ws, "1", "BootNotification", BOOT))[0] == 3


async def test_cs_to_cp_calls_through_the_server(csms: RunningCsms) -> None:
    with trio.fail_after(LIMIT):
        with pytest.raises(CallRefused):
            await csms.server.call("CP-1", ResetRequest(type=ResetType.SOFT))
        async with open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16]) as ws:
            await call(ws, "1", "BootNotification", BOOT)

            async def answer_once(status: str | None) -> None:
                frame = json.loads(await ws.get_message())
                assert frame[:3] == [2, frame[1], "Reset"]
                if status is not None:
                    await ws.send_message(json.dumps([3, frame[1], {"status": status}]))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_once, "Accepted")
                outcome = await csms.server.call("CP-1", ResetRequest(type=ResetType.SOFT))
            assert outcome.ok
            assert outcome.response == ResetResponse(status=ResetStatus.ACCEPTED)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_once, None)
                silent = await csms.server.call(
                    "CP-1", ResetRequest(type=ResetType.HARD), wait=0.2
                )
            assert (silent.ok, silent.error_code) == (False, TIMEOUT)


async def test_an_oversized_message_closes_the_connection() -> None:
    with trio.fail_after(LIMIT):
        async with (
            open_csms(CsmsOptions(max_message_size=1000)) as csms,
            open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16]) as ws,
        ):
            payload = {"vendorId": "V", "data": "x" * 2000}
            await ws.send_message(json.dumps([2, "1", "DataTransfer", payload]))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == 1009


async def test_a_closed_bus_does_not_break_the_server() -> None:
    async def closed_bus(event: Event) -> None:
        raise trio.ClosedResourceError

    with trio.fail_after(LIMIT):
        async with (
            open_csms(CsmsOptions(), publish=closed_bus) as csms,
            open_websocket_url(csms.url + "/CP-1", subprotocols=[OCPP16]) as ws,
        ):
            assert (await call(ws, "1", "BootNotification", BOOT))[0] == 3
            assert csms.core.statistics().boots == 1


async def test_run_csms_reports_its_url_and_shares_a_given_server() -> None:
    core = CentralSystem(CsmsOptions(), wall_epoch=0.0, new_id=counter_ids())
    server = CsmsServer(core, path="/central/")
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: run_csms(CsmsOptions(), server=server, task_status=task_status)
            )
            assert url.endswith("/central")
            async with open_websocket_url(url + "/CP-9", subprotocols=[OCPP16]) as ws:
                await call(ws, "1", "BootNotification", BOOT)
            assert core.charger_state("CP-9") is not None
            nursery.cancel_scope.cancel()


async def test_serve_stream_under_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    epoch = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    core = CentralSystem(CsmsOptions(), wall_epoch=epoch - trio.current_time(),
                         new_id=counter_ids())
    recorder = Recorder()
    server = CsmsServer(core, publish=recorder)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(2 * 3600):  # virtual seconds
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_stream)
            ws = await wrap_client_stream(
                nursery, client_stream, "localhost", "/ocpp/CP-V",  # type: ignore[arg-type]
                subprotocols=[OCPP16],
            )
            await trio.sleep(3600)
            beat = await call(ws, "1", "Heartbeat", {})
            assert beat[2] == {"currentTime": "2026-01-01T01:00:00Z"}
            await ws.aclose()
    assert core.statistics().connections == 1
    assert [n.what for n in recorder.events if isinstance(n, CsmsNote)] == [
        "connected", "anomaly", "disconnected"
    ]


# --- the protocol plugin is the server's only source of the subprotocol ----------------------

TEST_VERSION: ProtocolPlugin = dataclasses.replace(
    PLUGIN, name="OCPP test 1.0", subprotocol="ocpp-test1.0"
)
"""A fake second version: its own subprotocol name, 1.6's actions and codec."""


async def test_a_second_version_is_served_under_its_own_subprotocol(recorder: Recorder) -> None:
    async with open_csms(CsmsOptions(), publish=recorder, plugin=TEST_VERSION) as csms:
        assert csms.core.plugin is TEST_VERSION
        with trio.fail_after(LIMIT):
            async with open_websocket_url(csms.url + "/CP-1",
                                          subprotocols=["ocpp-test1.0"]) as ws:
                assert ws.subprotocol == "ocpp-test1.0"
                boot = await call(ws, "1", "BootNotification", BOOT)
                assert boot[2]["status"] == "Accepted"
            with pytest.raises(ConnectionRejected) as refused:
                async with open_websocket_url(csms.url + "/CP-2", subprotocols=[OCPP16]):
                    pass
        assert refused.value.status_code == 400
        [note] = recorder.notes("rejected")
        assert note.charger == "CP-2"
        assert note.data["reason"] == "subprotocol ocpp-test1.0 not offered"


async def test_run_csms_refuses_a_plugin_that_is_not_its_servers() -> None:
    server = CsmsServer(CentralSystem(CsmsOptions(), wall_epoch=0.0, new_id=counter_ids("cs")))
    with trio.fail_after(LIMIT), pytest.raises(ValueError, match="plugin"):
        await run_csms(CsmsOptions(), server=server, plugin=TEST_VERSION)
