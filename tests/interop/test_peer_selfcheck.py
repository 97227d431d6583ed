"""Proves the peer central system works, using a charge point built with the same PyPI ``ocpp``
package (so a failure here is the peer's fault, not the simulator's).

pytest runs in trio mode; the package is asyncio, so each charge point session runs under
``asyncio.run`` in a worker thread (``trio.to_thread``), bounded by ``asyncio.timeout`` inside and
``trio.fail_after`` outside. The peer is a real process on 127.0.0.1 (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Final, TypeVar, cast

import trio
from ocpp.routing import after, on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint, call, call_result  # type: ignore[import-untyped]
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    Action,
    ChargePointErrorCode,
    ChargePointStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    Reason,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from .conftest import PeerCsms, PeerFactory, Record

SESSION_BOUND_S: Final = 15.0
"""Upper bound on one asyncio charge-point session (real seconds)."""
TIMESTAMP: Final = "2026-01-01T00:00:00Z"
OCPP16: Final = [Subprotocol("ocpp1.6")]
TROUBLE_KINDS: Final = ("validation_error", "call_error", "unhandled_exception")

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def handles(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.on(action)`` with a type."""
    return cast(Callable[[_F], _F], on(action))


def after_handling(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after(action)`` with a type: runs once the answer has been sent."""
    return cast(Callable[[_F], _F], after(action))


class SelfCheckChargePoint(ChargePoint):  # type: ignore[misc]  # the package ships no hints
    """A charge point made with the ``ocpp`` package: answers every Core CS→CP command the
    peer's ``--commands`` script sends, and starts/stops a transaction on remote request."""

    def __init__(self, identity: str, connection: ClientConnection) -> None:
        super().__init__(identity, connection, response_timeout=5)
        self.connection = connection
        self.remote_transaction_id: int | None = None
        self.script_finished = asyncio.Event()

    @handles(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known = {"HeartbeatInterval": "3", "MeterValueSampleInterval": "60"}
        wanted = known if key is None else {k: known[k] for k in key if k in known}
        unknown = [k for k in key or [] if k not in known]
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": v}
                               for k, v in wanted.items()],
            unknown_key=unknown or None,
        )

    @handles(Action.change_configuration)
    def on_change_configuration(self, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status="Accepted")

    @handles(Action.trigger_message)
    def on_trigger_message(self, **_: Any) -> Any:
        return call_result.TriggerMessage(status="Accepted")

    @handles(Action.remote_start_transaction)
    def on_remote_start(self, **_: Any) -> Any:
        return call_result.RemoteStartTransaction(status="Accepted")

    @after_handling(Action.remote_start_transaction)
    async def after_remote_start(self, id_tag: str, connector_id: int, **_: Any) -> None:
        answer = await self.call(call.StartTransaction(
            connector_id=connector_id, id_tag=id_tag, meter_start=0, timestamp=TIMESTAMP))
        self.remote_transaction_id = answer.transaction_id

    @handles(Action.remote_stop_transaction)
    def on_remote_stop(self, **_: Any) -> Any:
        return call_result.RemoteStopTransaction(status="Accepted")

    @after_handling(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id: int, **_: Any) -> None:
        await self.call(call.StopTransaction(
            meter_stop=1200, timestamp=TIMESTAMP, transaction_id=transaction_id,
            reason=Reason.remote))

    @handles(Action.change_availability)
    def on_change_availability(self, **_: Any) -> Any:
        return call_result.ChangeAvailability(status="Accepted")

    @handles(Action.unlock_connector)
    def on_unlock_connector(self, **_: Any) -> Any:
        return call_result.UnlockConnector(status="Unlocked")

    @handles(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status="Accepted")

    @after_handling(Action.data_transfer)
    def after_data_transfer(self, **_: Any) -> None:
        self.script_finished.set()  # DataTransfer is the script's last command


@contextlib.asynccontextmanager
async def open_charge_point(url: str, identity: str) -> AsyncIterator[SelfCheckChargePoint]:
    """Connect ``identity`` to ``url`` (asyncio), serve incoming frames in a task, and close the
    connection and the task on exit."""
    async with connect(f"{url}/{identity}", subprotocols=OCPP16, open_timeout=5,
                       close_timeout=2) as connection:
        charge_point = SelfCheckChargePoint(identity, connection)
        reader = asyncio.create_task(charge_point.start())
        try:
            yield charge_point
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader


async def in_asyncio(session: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run an asyncio session to completion in a worker thread, bounded on both sides."""

    async def bounded() -> _T:
        async with asyncio.timeout(SESSION_BOUND_S):
            return await session()

    with trio.fail_after(SESSION_BOUND_S + 5):
        return await trio.to_thread.run_sync(lambda: asyncio.run(bounded()),
                                             abandon_on_cancel=True)


async def boot_and_transact(url: str, identity: str) -> dict[str, Any]:
    """One complete Core session: boot, statuses, authorize, a transaction, the rest."""
    got: dict[str, Any] = {}
    async with open_charge_point(url, identity) as cp:
        got["boot"] = await cp.call(call.BootNotification(
            charge_point_model="SelfCheck", charge_point_vendor="ocpp-pypi"))
        for connector_id in (0, 1, 2):
            await cp.call(call.StatusNotification(
                connector_id=connector_id, error_code=ChargePointErrorCode.no_error,
                status=ChargePointStatus.available, timestamp=TIMESTAMP))
        got["authorize"] = await cp.call(call.Authorize(id_tag="TAG-1"))
        got["blocked"] = await cp.call(call.Authorize(id_tag="BLOCKED-7"))
        started = await cp.call(call.StartTransaction(
            connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp=TIMESTAMP))
        got["start"] = started
        sample = {"timestamp": TIMESTAMP, "sampled_value": [
            {"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}
        await cp.call(call.MeterValues(connector_id=1, meter_value=[sample],
                                       transaction_id=started.transaction_id))
        got["stop"] = await cp.call(call.StopTransaction(
            meter_stop=2000, timestamp=TIMESTAMP, transaction_id=started.transaction_id,
            id_tag="TAG-1", reason=Reason.local))
        got["heartbeat"] = await cp.call(call.Heartbeat())
        got["data_transfer"] = await cp.call(call.DataTransfer(vendor_id="selfcheck",
                                                               data="x"))
        await cp.call(call.FirmwareStatusNotification(status=FirmwareStatus.idle))
        await cp.call(call.DiagnosticsStatusNotification(status=DiagnosticsStatus.idle))
    return got


def trouble(records: list[Record]) -> list[Record]:
    """Records that say the package refused something or something crashed."""
    return [r for r in records if r["kind"] in TROUBLE_KINDS]


async def test_boot_and_transaction_are_answered_and_recorded(peer_csms: PeerCsms) -> None:
    got = await in_asyncio(lambda: boot_and_transact(peer_csms.url, "CP-1"))

    assert got["boot"].status == "Accepted"
    assert got["boot"].interval == 3
    assert got["authorize"].id_tag_info["status"] == "Accepted"
    assert got["blocked"].id_tag_info["status"] == "Blocked"
    transaction_id = got["start"].transaction_id
    assert isinstance(transaction_id, int)
    assert got["data_transfer"].status == "Accepted"

    await peer_csms.wait_record(lambda r: r["kind"] == "disconnected")
    records = peer_csms.records()
    assert trouble(records) == []
    calls = [r["action"] for r in records if r["kind"] == "message"]
    assert calls == [
        "BootNotification", "StatusNotification", "StatusNotification", "StatusNotification",
        "Authorize", "Authorize", "StartTransaction", "MeterValues", "StopTransaction",
        "Heartbeat", "DataTransfer", "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
    ]
    boot = next(r for r in records if r.get("action") == "BootNotification")
    assert boot["charger"] == "CP-1"
    assert boot["payload"] == {"chargePointModel": "SelfCheck", "chargePointVendor": "ocpp-pypi"}
    started = peer_csms.records_of("transaction_started")
    assert [(r["transaction_id"], r["connector_id"], r["meter_start"]) for r in started] == [
        (transaction_id, 1, 1000)
    ]
    assert [r["transaction_id"] for r in peer_csms.records_of("transaction_stopped")] == [
        transaction_id
    ]


async def raw_exchange(
    url: str, frames: list[str], replies: int, identity: str = "RAW-1"
) -> list[Any]:
    """Send raw text frames on one connection as ``identity`` and collect ``replies`` parsed
    answers."""
    async with connect(f"{url}/{identity}", subprotocols=OCPP16, open_timeout=5,
                       close_timeout=2) as connection:
        for frame in frames:
            await connection.send(frame)
        return [json.loads(await connection.recv()) for _ in range(replies)]


async def test_bad_frames_are_refused_and_recorded(peer_csms: PeerCsms) -> None:
    frames = [
        "this is not json",  # unparsable: logged, not answered
        json.dumps([2, "m1", "BootNotification", {"chargePointVendor": "V"}]),
        json.dumps([2, "m2", "Authorize", {"idTag": "TAG-1", "extra": 1}]),
        json.dumps([2, "m3", "Heartbeat", {}]),
        json.dumps([2, "m4", "NoSuchAction", {}]),
    ]
    replies = await in_asyncio(lambda: raw_exchange(peer_csms.url, frames, replies=4))

    assert [(r[0], r[1]) for r in replies] == [(4, "m1"), (4, "m2"), (3, "m3"), (4, "m4")]
    assert replies[0][2] == "ProtocolError"  # the package's code for a missing field
    assert replies[1][2] == "FormatViolation"  # ... and for an extra property
    assert replies[3][2] == "NotSupported"  # ... and for an action 1.6 does not know
    await peer_csms.wait_record(lambda r: r["kind"] == "disconnected")
    errors = peer_csms.records_of("validation_error", charger="RAW-1")
    assert [(e["unique_id"], e["code"]) for e in errors] == [
        (None, "FormatViolation"), ("m1", "ProtocolError"), ("m2", "FormatViolation")
    ]
    assert [e["action"] for e in errors[1:]] == ["BootNotification", "Authorize"]
    unsupported = peer_csms.records_of("call_error", charger="RAW-1")
    assert [(e["unique_id"], e["code"]) for e in unsupported] == [("m4", "NotSupported")]
    messages = peer_csms.records_of("message", charger="RAW-1")
    assert len(messages) == len(frames)
    assert messages[0]["raw"] == "this is not json"


async def handshake_status(url: str, subprotocols: list[Subprotocol] | None) -> int:
    """The HTTP status of a refused handshake (the test fails if it is accepted)."""
    try:
        async with connect(url, subprotocols=subprotocols, open_timeout=5):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code
    raise AssertionError(f"handshake to {url} was accepted")


async def test_handshake_requires_subprotocol_and_identity_path(peer_csms: PeerCsms) -> None:
    no_protocol = await in_asyncio(lambda: handshake_status(f"{peer_csms.url}/CP-2", None))
    wrong = await in_asyncio(
        lambda: handshake_status(f"{peer_csms.url}/CP-2", [Subprotocol("ocpp2.0.1")]))
    no_identity = await in_asyncio(lambda: handshake_status(f"{peer_csms.url}/", OCPP16))

    assert (no_protocol, wrong, no_identity) == (400, 400, 404)
    assert [r["status"] for r in peer_csms.records_of("rejected")] == [400, 400, 404]
    assert peer_csms.records_of("connected") == []


async def transact_until_dropped(url: str, identity: str, kill: Callable[[], None]) -> int:
    """Boot and start a transaction, let ``kill`` take the peer down, wait until the connection
    is seen to drop (bounded by the session bound), and return the transaction id."""
    async with open_charge_point(url, identity) as cp:
        await cp.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        started = await cp.call(call.StartTransaction(
            connector_id=2, id_tag="TAG-1", meter_start=0, timestamp=TIMESTAMP))
        kill()
        await cp.connection.wait_closed()
        return int(started.transaction_id)


async def test_kill_and_restart_on_the_same_port(peer_csms: PeerCsms) -> None:
    first_port = peer_csms.port
    first_id = await in_asyncio(
        lambda: transact_until_dropped(peer_csms.url, "CP-3", peer_csms.kill))
    assert peer_csms.pid is None
    assert [r["transaction_id"] for r in peer_csms.records_of("transaction_started")] == [
        first_id
    ]

    await trio.to_thread.run_sync(peer_csms.restart)
    assert peer_csms.port == first_port
    got = await in_asyncio(lambda: boot_and_transact(peer_csms.url, "CP-3"))

    assert got["boot"].status == "Accepted"
    assert got["start"].transaction_id > first_id  # never reuses an id across restarts
    assert [r["port"] for r in peer_csms.records_of("started")] == [first_port, first_port]
    assert trouble(peer_csms.records()) == []


def start_frame(message_id: str, connector_id: int, timestamp: str) -> str:
    return json.dumps([2, message_id, "StartTransaction", {
        "connectorId": connector_id, "idTag": "TAG-1", "meterStart": 5, "timestamp": timestamp}])


async def test_an_identical_start_transaction_gets_the_same_id(peer_csms: PeerCsms) -> None:
    # A charger that lost the answer resends the same StartTransaction under a new message id:
    # the peer answers the id it gave the first time, also after a restart on the same record.
    later = "2026-01-01T00:00:01Z"
    frames = [start_frame("s1", 1, TIMESTAMP), start_frame("s2", 1, TIMESTAMP),
              start_frame("s3", 1, later), start_frame("s4", 2, TIMESTAMP)]
    replies = await in_asyncio(lambda: raw_exchange(peer_csms.url, frames, 4, "CP-6"))
    await trio.to_thread.run_sync(peer_csms.restart)
    replies += await in_asyncio(
        lambda: raw_exchange(peer_csms.url, [start_frame("s5", 1, later)], 1, "CP-6"))
    replies += await in_asyncio(  # another charger: never the same transaction
        lambda: raw_exchange(peer_csms.url, [start_frame("s6", 1, later)], 1, "CP-7"))

    assert [reply[0] for reply in replies] == [3] * 6
    ids = {reply[1]: reply[2]["transactionId"] for reply in replies}
    assert ids["s1"] == ids["s2"] and ids["s3"] == ids["s5"]
    assert len({ids["s1"], ids["s3"], ids["s4"], ids["s6"]}) == 4
    assert [r["transaction_id"] for r in peer_csms.records_of("transaction_started")] == [
        ids["s1"], ids["s3"], ids["s4"], ids["s6"]]
    assert [r["transaction_id"] for r in peer_csms.records_of("transaction_start_repeated")] == [
        ids["s2"], ids["s5"]]
    assert trouble(peer_csms.records()) == []


async def answer_command_script(peer: PeerCsms, identity: str) -> int | None:
    """Boot, then answer the peer's command script; stay connected until the peer has
    recorded the end of the script (closing earlier would cut the script short)."""
    async with open_charge_point(peer.url, identity) as cp:
        await cp.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        await cp.script_finished.wait()
        while not peer.records_of("commands_done", charger=identity):  # noqa: ASYNC110
            # polls the other process's record file: there is no event to wait on
            await asyncio.sleep(0.05)
        return cp.remote_transaction_id


async def test_command_script_runs_and_records_every_result(
    peer_csms_factory: PeerFactory,
) -> None:
    peer = peer_csms_factory("--commands", "--start-wait", "5")
    remote_id = await in_asyncio(lambda: answer_command_script(peer, "CP-4"))

    assert remote_id is not None
    results = peer.records_of("command_result", charger="CP-4")
    assert [r["action"] for r in results] == [
        "GetConfiguration", "GetConfiguration", "ChangeConfiguration", "GetConfiguration",
        "ChangeConfiguration", "ChangeConfiguration", "TriggerMessage", "TriggerMessage",
        "TriggerMessage", "RemoteStartTransaction", "RemoteStopTransaction",
        "ChangeAvailability", "ChangeAvailability", "UnlockConnector", "DataTransfer",
    ]
    assert [r["error"] for r in results] == [None] * len(results)
    assert results[1]["response"]["unknownKey"] == ["NoSuch"]
    assert results[10]["request"] == {"transaction_id": remote_id}
    assert [r["request"]["type"] for r in results[11:13]] == ["Inoperative", "Operative"]
    await peer.wait_record(
        lambda r: r["kind"] == "transaction_stopped" and r["transaction_id"] == remote_id)
    assert trouble(peer.records()) == []


async def test_invalid_command_answer_is_a_validation_error(
    peer_csms_factory: PeerFactory,
) -> None:
    peer = peer_csms_factory("--commands", "--response-timeout", "3")

    async def session() -> None:
        async with connect(f"{peer.url}/CP-5", subprotocols=OCPP16, open_timeout=5,
                           close_timeout=2) as connection:
            await connection.send(json.dumps(
                [2, "b1", "BootNotification",
                 {"chargePointModel": "M", "chargePointVendor": "V"}]))
            await connection.recv()  # the boot answer
            command = json.loads(await connection.recv())  # GetConfiguration
            await connection.send(json.dumps([3, command[1], {"configurationKey": "garbage"}]))
            json.loads(await connection.recv())  # the script goes on: second GetConfiguration

    await in_asyncio(session)
    first = await peer.wait_record(lambda r: r["kind"] == "command_result")
    assert first["action"] == "GetConfiguration"
    assert first["error"]["source"] == "validation"
    assert first["error"]["code"] == "TypeConstraintViolation"
    assert [e["action"] for e in peer.records_of("validation_error")] == ["GetConfiguration"]
