"""The main job: run a fleet file against its central system, record everything, report.

``run_simulation`` builds the actor tree of DESIGN.md in one nursery::

    bus ── ledger writer (lossless) ── live counters (an inline observer) ── live view
    embedded CSMS (when ``url = "embedded"``)
    timer wheel (wakes every charger at its deadlines)
    fleet supervisor ── charger supervisors ── chargers ── connectors

and ends it gracefully when the duration runs out, on Ctrl-C or on SIGTERM: transactions are
stopped (reason Local), queued messages get a grace period, every outbox not stored yet is
handed to the ledger, the ledger is flushed and the run is marked completed or interrupted.
The result says what happened and which exit code it deserves.

Under ``time = "virtual"`` (run it with :func:`run_clock`) the fleet and the embedded CSMS talk
over in-memory byte streams (the full WebSocket protocol, no sockets) on trio's mock clock, which
jumps to the next deadline whenever every task waits: a simulated day takes seconds. The ledger
is then written in the Trio thread, so the clock cannot jump while a batch is being written.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import msgspec
import trio
import trio.testing

from simulator import __version__
from simulator.actors.charger import ChargerEnv
from simulator.actors.fleet import Fleet, GroupPlan, run_fleet
from simulator.actors.lag import run_lag_probe
from simulator.actors.streams import memory_connector
from simulator.actors.timers import TimerWheel
from simulator.actors.transport import (
    Transport,
    WebSocketClient,
    open_transport,
    trio_websocket_client,
)
from simulator.actors.websockets_transport import websockets_client
from simulator.bus import Counters, EventBus
from simulator.config import Fleet as FleetFile
from simulator.config import Group, TimeMode
from simulator.csms import BootStatus, CsmsOptions, CsmsServer, run_csms
from simulator.csms.server import new_central_system
from simulator.events import Event
from simulator.machines.charger import ChargerSpec
from simulator.machines.effects import OutboxEntry, PersistOutbox
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.storage import (
    DEFAULT_SHUTDOWN_FLUSH_TIMEOUT,
    LOOP_PROBE_SUMMARY_KEY,
    Ledger,
    RunSpec,
    RunStatus,
    SaveOutbox,
    finish_run,
    run_inline,
    run_ledger_writer,
)
from simulator.view import run_live_view

DEFAULT_GRACE: Final = 10.0
"""Seconds queued transaction messages get to be delivered at the end of a run."""
LEDGER_BUFFER: Final = 8192
"""Events the ledger subscription buffers before publishers wait (backpressure)."""
DEFAULT_FIRMWARE: Final = f"sim-{__version__}"
"""firmwareVersion in BootNotification when the group does not set one."""

TransportFactory = Callable[[str, str], AbstractAsyncContextManager[Transport]]
"""``(base_url, identity)`` → an async context manager yielding a connected transport."""

VIRTUAL_URL: Final = "ws://embedded.virtual/ocpp"
"""The embedded CSMS's address under virtual time (in memory: nothing listens on it)."""
VIRTUAL_CLOSE_TIMEOUT: Final = 2.0
"""Seconds a closing in-memory WebSocket waits for the CSMS's half of the close handshake."""


def run_clock(fleet: FleetFile) -> trio.abc.Clock | None:
    """The clock ``trio.run`` needs for ``fleet``: a jumping mock clock under virtual time."""
    if fleet.run.time == TimeMode.VIRTUAL:
        return trio.testing.MockClock(autojump_threshold=0)
    return None


class ExitCode:
    COMPLETED: Final = 0
    FAILED: Final = 1
    USAGE: Final = 2
    INTERRUPTED: Final = 130


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    """What a run ended as: the ledger file and run id, its status and exit code, and why."""

    ledger: Path
    run_id: int
    status: str
    exit_code: int
    reasons: tuple[str, ...]


def charger_specs(group: Group) -> list[ChargerSpec]:
    """Expand a group into its chargers' specs, in id order."""
    return [
        ChargerSpec(
            identity=identity,
            vendor=group.vendor,
            model=group.model,
            serial_number=group.serial_number(n),
            firmware_version=group.firmware_version or DEFAULT_FIRMWARE,
            connectors=group.connectors,
            max_power_kw=group.max_power_kw,
            config=dict(group.config),
        )
        for n, identity in enumerate(group.ids, start=1)
    ]


def csms_options(fleet: FleetFile) -> CsmsOptions:
    """The embedded CSMS's behaviour from ``[csms.embedded]``."""
    embedded = fleet.csms.embedded
    return CsmsOptions(
        boot_status=BootStatus(embedded.boot_status),
        heartbeat_interval=round(embedded.heartbeat_interval),
        accepted_tags=embedded.accepted_tags,
        blocked_tags=embedded.blocked_tags,
    )


async def run_simulation(
    fleet: FleetFile,
    *,
    resume: bool = False,
    live: bool = True,
    view_stream: TextIO | None = None,
    open_transport: TransportFactory | None = None,
    grace: float = DEFAULT_GRACE,
    gc_tuning: bool = True,
) -> RunResult:
    """Run ``fleet`` to its end and return the result (see the module docstring).

    ``open_transport(url, identity)`` replaces the WebSocket transport (tests use memory
    transports). Never raises for what the CSMS does; a bad ledger path raises ``OSError``.
    """
    virtual = fleet.run.time == TimeMode.VIRTUAL
    if virtual and fleet.csms.url != "embedded":
        raise ValueError('time = "virtual" needs csms.url = "embedded"')
    live = live and not virtual
    ledger_path = Path(fleet.run.ledger)
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    outboxes: dict[str, tuple[OutboxEntry, ...]] = {}
    resumed_from: int | None = None
    if resume:
        outboxes, resumed_from = await trio.to_thread.run_sync(_load_outboxes, ledger_path)

    bus = EventBus()
    ledger_channel = bus.subscribe_lossless(LEDGER_BUFFER, "ledger")
    counters = Counters()
    bus.observe(counters.observe)
    t0 = trio.current_time()
    wall0 = datetime.now(UTC)
    wall_epoch = time.time() - t0
    interrupted = False
    fleet_handle: Fleet | None = None

    async def persist(effect: PersistOutbox) -> None:
        await bus.publish_control(
            SaveOutbox(t=trio.current_time(), charger=effect.charger, entries=effect.entries)
        )

    def persist_nowait(effect: PersistOutbox) -> bool:
        return bus.publish_control_nowait(
            SaveOutbox(t=trio.current_time(), charger=effect.charger, entries=effect.entries)
        )

    run = RunSpec(
        name=fleet.run.name, seed=fleet.run.seed, config_text=fleet.text,
        config_sha256=fleet.sha256, version=__version__, t0=t0, wall0=wall0,
        resumed_from=resumed_from,
    )
    async with trio.open_nursery() as services:
        run_id = await services.start(
            lambda task_status: run_ledger_writer(
                ledger_path, ledger_channel, run=run, task_status=task_status,
                offload=run_inline if virtual else None,
            )
        )
        url = fleet.csms.url
        csms_scope = trio.CancelScope()
        virtual_opener: TransportFactory | None = None
        if url == "embedded" and virtual:
            server = CsmsServer(new_central_system(csms_options(fleet)), publish=bus.publish)
            url, virtual_opener = VIRTUAL_URL, _virtual_opener(server)
        elif url == "embedded":
            url = await services.start(_run_embedded_csms, fleet, bus.publish, csms_scope)
        opener = open_transport or virtual_opener or _websocket_opener(fleet)
        timers = TimerWheel()
        plans = [
            GroupPlan(
                name=group.name,
                connect_rate=group.connect_rate,
                chargers=[
                    ChargerEnv(
                        spec=spec, seed=fleet.run.seed, url=url,
                        open_transport=functools.partial(opener, url),
                        publish=bus.publish, publish_nowait=bus.publish_nowait,
                        persist=persist, persist_nowait=persist_nowait, wall_epoch=wall_epoch,
                        sessions=group.sessions, timers=timers,
                    )
                    for spec in charger_specs(group)
                ],
            )
            for group in fleet.groups
        ]
        async with trio.open_nursery() as work:
            await work.start(timers.run)

            async def fleet_task(task_status: trio.TaskStatus[Fleet]) -> None:
                await run_fleet(
                    plans, gc_tuning=gc_tuning, outboxes=outboxes, task_status=task_status
                )
                work.cancel_scope.cancel()  # the fleet has ended: stop the view and the watcher

            fleet_handle = await work.start(fleet_task)
            if not virtual:  # (under a virtual clock the loop never lags)
                work.start_soon(run_lag_probe, bus.publish)
            if live:
                size = fleet_handle.size
                work.start_soon(
                    lambda: run_live_view(
                        counters, title=fleet.run.name, fleet_size=lambda: size,
                        stream=view_stream,
                    )
                )

            async def end_on_signal_or_duration() -> None:
                nonlocal interrupted
                assert fleet_handle is not None
                duration = fleet.run.duration
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    with trio.move_on_after(duration if duration is not None else math.inf):
                        async for _ in signals:
                            interrupted = True
                            break
                fleet_handle.stop(grace)
                # A second Ctrl-C during the grace period ends the grace period.
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        work.cancel_scope.cancel()
                        return

            work.start_soon(end_on_signal_or_duration)
        csms_scope.cancel()
        if fleet_handle is not None:
            await _store_unsaved_outboxes(fleet_handle, bus)
        await bus.aclose()
    counters_final = counters.snapshot(trio.current_time())
    reasons: list[str] = []
    if counters_final.connects == 0 and fleet_handle is not None and fleet_handle.size > 0:
        reasons.append(f"no charger could connect to {url}")
    if counters_final.crashes:
        reasons.append(f"{counters_final.crashes} charger crash(es)")
    if interrupted:
        status, exit_code = RunStatus.INTERRUPTED, ExitCode.INTERRUPTED
    elif reasons:
        status, exit_code = RunStatus.FAILED, ExitCode.FAILED
    else:
        status, exit_code = RunStatus.COMPLETED, ExitCode.COMPLETED
    summary = {"reasons": reasons, "live": msgspec.to_builtins(counters_final),
               LOOP_PROBE_SUMMARY_KEY: not virtual}
    await trio.to_thread.run_sync(finish_run, ledger_path, run_id, status, exit_code, summary)
    return RunResult(ledger_path, run_id, status, exit_code, tuple(reasons))


def tls_context(fleet: FleetFile) -> ssl.SSLContext | None:
    """The TLS client context for a wss:// CSMS: the system trust store or ``ca_file``, and the
    client certificate of security profile 3. Raises ``OSError``/``ssl.SSLError`` for files
    that cannot be read or used."""
    csms = fleet.csms
    if not csms.url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=csms.ca_file)
    if csms.cert_file is not None:
        context.load_cert_chain(csms.cert_file, csms.key_file)
    return context


async def _store_unsaved_outboxes(fleet: Fleet, bus: EventBus) -> None:
    """Hand the ledger every outbox that changed since a charger last stored it: a charger
    stores at most every ``OUTBOX_PERSIST_INTERVAL``, and one cancelled (a second Ctrl-C) or
    waiting out a crash has not stored its last changes. Shielded, and bounded like the
    writer's own flush."""
    with trio.CancelScope(shield=True), trio.move_on_after(DEFAULT_SHUTDOWN_FLUSH_TIMEOUT):
        for identity, control in fleet.controls.items():
            if control.unsaved:
                await bus.publish_control(SaveOutbox(t=trio.current_time(), charger=identity,
                                                     entries=control.outbox))
                control.persisted = control.outbox


def _websocket_opener(
    fleet: FleetFile,
    *,
    plugin: ProtocolPlugin = PLUGIN,
    wrap: Callable[[trio.abc.Stream], trio.abc.Stream] | None = None,
) -> TransportFactory:
    """Connect chargers to ``fleet``'s CSMS over TCP (TLS for wss://) with the WebSocket client
    ``[csms] transport`` names, its password and TLS files, offering ``plugin``'s subprotocol;
    ``wrap`` goes between each socket and its WebSocket client. Raises ``ValueError`` for a
    client name that is not offered (``OSError``/``ssl.SSLError`` for unusable TLS files)."""
    clients: dict[str, WebSocketClient] = {
        "trio-websocket": trio_websocket_client, "websockets": websockets_client,
    }
    client = clients.get(fleet.csms.transport)
    if client is None:
        raise ValueError(f"csms.transport: {fleet.csms.transport!r} is not a WebSocket client "
                         f"this version offers; use one of {', '.join(map(repr, clients))}")
    password = None if fleet.csms.password is None else str(fleet.csms.password)
    context = tls_context(fleet)

    def opener(url: str, identity: str) -> AbstractAsyncContextManager[Transport]:
        return open_transport(url, identity, plugin=plugin, client=client, password=password,
                              ssl_context=context, wrap=wrap)

    return opener


def _virtual_opener(
    server: CsmsServer,
    *,
    plugin: ProtocolPlugin = PLUGIN,
    wrap: Callable[[trio.abc.Stream], trio.abc.Stream] | None = None,
) -> TransportFactory:
    """Connect chargers to ``server`` over in-memory byte streams: the same client, handshake
    (subprotocol check included) and frames as on a socket, under whatever clock the run has;
    ``wrap`` goes between each stream and its WebSocket client."""
    connect = memory_connector(server.serve_stream)

    def opener(url: str, identity: str) -> AbstractAsyncContextManager[Transport]:
        return open_transport(url, identity, plugin=plugin, connect_stream=connect, wrap=wrap)

    return opener


def _load_outboxes(path: Path) -> tuple[dict[str, tuple[OutboxEntry, ...]], int | None]:
    if not path.exists():
        return {}, None
    ledger = Ledger.open(path)
    try:
        latest = ledger.latest_run()
        stored = ledger.load_outbox()
    finally:
        ledger.close()
    decoder = msgspec.json.Decoder(OutboxEntry)
    outboxes = {
        charger: tuple(decoder.decode(entry) for entry in entries)
        for charger, entries in stored.items()
        if entries
    }
    return outboxes, (latest.id if latest is not None else None)


async def _run_embedded_csms(
    fleet: FleetFile,
    publish: Callable[[Event], Awaitable[None]],
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await run_csms(
            csms_options(fleet), host="127.0.0.1", port=0, publish=publish,
            task_status=task_status,
        )


__all__ = [
    "DEFAULT_GRACE",
    "VIRTUAL_URL",
    "ExitCode",
    "RunResult",
    "charger_specs",
    "run_clock",
    "run_simulation",
    "tls_context",
]
