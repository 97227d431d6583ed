"""The main job: run a fleet file against its central system, record everything, report.

:func:`open_simulation` builds the actor tree (docs/internals.md) in the caller's task and
yields a :class:`~simulator.simulation.Simulation`, the handle on the running fleet::

    bus ── ledger writer (lossless) ── live counters (an inline observer) ── live view
    embedded CSMS (when ``url = "embedded"``)
    fleet supervisor ── charger supervisors ── chargers ── links, connectors
    watchers: lag probe, live view

Leaving it ends the run gracefully: transactions are stopped (reason Local), queued messages
get a grace period, every outbox not stored yet is handed to the ledger, the ledger is flushed
and the run is marked completed, failed or interrupted. :func:`run_simulation` is that, until
the duration runs out or Ctrl-C / SIGTERM; the result says what happened and which exit code
it deserves. The fleet's ``[[expect]]`` tables are then judged over the finished run's ledger
(:mod:`simulator.verdicts`): their verdicts are stored in its summary, and one that fails makes
the run ``failed`` (exit code 1).

Under ``time = "virtual"`` (run it with :func:`run_clock`) the fleet and the embedded CSMS talk
over in-memory byte streams (the full WebSocket protocol, no sockets) on trio's mock clock, which
jumps to the next deadline whenever every task waits: a simulated day takes seconds. The ledger
is then written in the Trio thread, so the clock cannot jump while a batch is being written.
"""

from __future__ import annotations

import collections
import functools
import math
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

import msgspec
import trio
import trio.testing

from simulator import __version__, seeds
from simulator.actors.charger import ChargerControl, ChargerEnv
from simulator.actors.collector import TICK, VIRTUAL_TICK
from simulator.actors.director import ScriptedStep, run_director
from simulator.actors.fleet import GroupPlan, RunningFleet, run_fleet
from simulator.actors.lag import run_lag_probe
from simulator.actors.link import CredentialOpener, TransportOpener
from simulator.bus import Counters, EventBus
from simulator.chaos import ChaosPlan
from simulator.config import Csms, Group, TimeMode
from simulator.config import Fleet as FleetFile
from simulator.connections import (
    StreamWrap,
    TransportFactory,
    chaos_states,
    fleet_settings,
    group_opener,
    virtual_opener,
    websocket_client,
    with_chaos,
)
from simulator.csms import BootStatus, CsmsOptions, CsmsServer, run_csms
from simulator.csms.core import CentralSystem
from simulator.events import BootResult, Event
from simulator.ledger import LOOP_PROBE_SUMMARY_KEY, Ledger, RunStatus, SaveOutbox, finish_run
from simulator.ledger.writer import (
    DEFAULT_SHUTDOWN_FLUSH_TIMEOUT,
    RunSpec,
    run_inline,
    run_ledger_writer,
)
from simulator.machines.charger import ChargerSpec
from simulator.machines.configuration import KEYS, InvalidConfigurationValue, normalize
from simulator.machines.effects import ChargerMemory, OutboxEntry, PersistOutbox
from simulator.machines.parts import SecuritySpec
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.report import CLOCK_ORIGIN_SUMMARY_KEY, VERDICTS_SUMMARY_KEY
from simulator.simulation import RunResult, Simulation
from simulator.verdicts import judge
from simulator.view import ConnectProblems, run_live_view

DEFAULT_GRACE: Final = 10.0
"""Seconds queued transaction messages get to be delivered at the end of a run."""
LEDGER_BUFFER: Final = 8192
"""Events the ledger subscription buffers before publishers wait (backpressure)."""
DEFAULT_FIRMWARE: Final = f"sim-{__version__}"
"""firmwareVersion in BootNotification when the group does not set one."""

VIRTUAL_URL: Final = "ws://embedded.virtual/ocpp"
"""The embedded CSMS's address under virtual time (in memory: nothing listens on it)."""

SERVICE_GRACE: Final = 0.5
"""Seconds a service gets after the fleet has finished before it is cancelled."""


class Service(Protocol):
    """What lives beside a running fleet (the control API)."""

    def attach(self, bus: EventBus) -> None:
        """Called before the fleet starts: observe or subscribe to the bus (nothing missed)."""

    async def serve(self, sim: Simulation, *,
                    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Called once the fleet runs; calls ``task_status.started()`` once it serves, and is
        cancelled :data:`SERVICE_GRACE` seconds after the fleet has finished (it may watch
        ``sim.wait_finished()`` to end its work cleanly first)."""


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


def charger_specs(group: Group, csms: Csms | None = None) -> list[ChargerSpec]:
    """Expand a group into its chargers' specs, in id order (they share one configuration
    mapping: the machines only read it). With the fleet's ``csms``, the charger's
    ``SecurityProfile`` starts at its group's security profile and its ``AuthorizationKey``
    is the group's password (when it is one: 16 characters or more), unless ``[group.config]``
    sets them, and its spec says what its connection can do (TLS, a client certificate)."""
    config = dict(group.config)
    security = SecuritySpec()
    if csms is not None:
        settings = group.security or csms.security
        if settings.security_profile and "SecurityProfile" not in config:
            config["SecurityProfile"] = settings.security_profile
        if settings.password is not None and "AuthorizationKey" not in config \
                and _may_be_key(settings.password):
            config["AuthorizationKey"] = settings.password  # (a Secret: hidden in repr)
        security = SecuritySpec(tls=csms.url.startswith("wss://"),
                                client_certificate=settings.cert_file is not None)
    return [
        ChargerSpec(
            identity=identity,
            vendor=group.vendor,
            model=group.model,
            serial_number=group.serial_number(n),
            firmware_version=group.firmware_version or DEFAULT_FIRMWARE,
            connectors=group.connectors,
            max_power_kw=group.max_power_kw,
            config=config,
            profiles=group.profiles,
            firmware=group.firmware,
            real_transfers=group.real_transfers,
            security=security,
        )
        for n, identity in enumerate(group.ids, start=1)
    ]


def _may_be_key(password: str) -> bool:
    """Whether the fleet file's password can be the charger's ``AuthorizationKey`` (the key
    the whitepaper asks for: at least 16 characters); a shorter one is only sent."""
    try:
        normalize(KEYS["AuthorizationKey"], password)
    except InvalidConfigurationValue:
        return False
    return True


def csms_options(fleet: FleetFile) -> CsmsOptions:
    """The embedded CSMS's behaviour from ``[csms.embedded]``."""
    embedded = fleet.csms.embedded
    return CsmsOptions(
        boot_status=BootStatus(embedded.boot_status),
        heartbeat_interval=round(embedded.heartbeat_interval),
        accepted_tags=embedded.accepted_tags,
        blocked_tags=embedded.blocked_tags,
        poll_interval=embedded.poll_interval,
    )


@asynccontextmanager
async def open_simulation(
    fleet: FleetFile,
    *,
    resume: bool = False,
    live: bool = False,
    view_stream: TextIO | None = None,
    open_transport: TransportFactory | None = None,
    wrap: StreamWrap | None = None,
    plugin: ProtocolPlugin = PLUGIN,
    grace: float = DEFAULT_GRACE,
    gc_tuning: bool = True,
    notify: Callable[[str], None] | None = None,
    alongside: Sequence[Service] = (),
) -> AsyncIterator[Simulation]:
    """Start ``fleet`` (the actor tree of the module docstring) and yield its handle.

    Inside the block the fleet runs; :meth:`Simulation.stop` begins the graceful end and
    :meth:`Simulation.wait_finished` waits for it. Leaving the block stops the fleet gracefully
    (``grace`` seconds for queued messages) if nobody did, stores every outbox not stored yet,
    flushes the ledger and marks the run; the result is then ``sim.result``. An exception in the
    block (or a cancellation) ends the run as ``interrupted``.

    Over sockets, each group's chargers connect with the group's security settings
    (``[group.security]`` over ``[csms]``) and each charger with its credentials in force (a
    raised ``SecurityProfile``, an ``AuthorizationKey`` or a client certificate set over OCPP:
    :mod:`simulator.actors.security`). ``open_transport(url, identity)`` replaces the
    WebSocket transport (tests use memory transports; no credentials then);
    ``wrap(identity, stream)`` puts a wrapper between each charger's socket (or
    in-memory stream) and its WebSocket client. ``plugin`` is the protocol version the chargers,
    their transports and the embedded CSMS speak (OCPP 1.6). ``notify(line)`` hears at once of
    the first failure to connect of each distinct cause (refused, HTTP 404, DNS, TLS, ...); the
    result's reasons name them all. Each of ``alongside`` (the control API) is attached to the
    bus before the fleet starts, then served (``work.start(service.serve, sim)``) in the run's
    nursery once the fleet runs, and cancelled when the fleet has finished. Never raises for
    what the CSMS does; a bad ledger path raises ``OSError``.
    """
    virtual = fleet.run.time == TimeMode.VIRTUAL
    if virtual and fleet.csms.url != "embedded":
        raise ValueError('time = "virtual" needs csms.url = "embedded"')
    live = live and not virtual
    ledger_path = Path(fleet.run.ledger)
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    outboxes: dict[str, tuple[OutboxEntry, ...]] = {}
    memories: dict[str, ChargerMemory] = {}
    resumed_from: int | None = None
    if resume:
        outboxes, memories, resumed_from = await trio.to_thread.run_sync(
            _load_outboxes, ledger_path
        )

    bus = EventBus()
    ledger_channel = bus.subscribe_lossless(LEDGER_BUFFER, "ledger")
    counters = Counters()
    bus.observe(counters.observe)
    problems = ConnectProblems(notify)
    bus.observe(problems.observe)
    boots: collections.Counter[str] = collections.Counter()  # the CSMS's answers, by status

    def count_boot(event: Event) -> None:
        if type(event) is BootResult:
            boots[event.status] += 1

    bus.observe(count_boot)
    for service in alongside:
        service.attach(bus)
    t0 = trio.current_time()
    # Under virtual time the wall clock starts at [run] epoch (config defaults it), never at
    # the machine's clock: two runs of one file give the same bytes.
    wall0 = fleet.run.epoch if virtual and fleet.run.epoch is not None else datetime.now(UTC)
    wall_epoch = wall0.timestamp() - t0

    controls: dict[str, ChargerControl] = {}  # the running fleet's, once it runs

    async def persist(effect: PersistOutbox) -> None:
        """Hand a charger's snapshot to the ledger; the writer's ``on_stored`` tells the charger
        once it is committed. Under virtual time the snapshot counts as stored at once: the
        central system lives in this process, so a kill takes it down with the chargers and
        nothing can have reached it that the ledger lacks; and a charger told at once sends
        its frames in the same order whatever order trio ran the tasks of an instant in."""
        await bus.publish_control(
            SaveOutbox(t=trio.current_time(), charger=effect.charger, entries=effect.entries,
                       through=effect.through, memory=effect.memory)
        )
        if virtual:
            controls[effect.charger].stored(effect.through)

    def stored(saves: list[SaveOutbox]) -> None:
        for save in saves:
            control = controls.get(save.charger or "")
            if control is not None:
                control.stored(save.through)

    run = RunSpec(
        name=fleet.run.name, seed=fleet.run.seed, config_text=fleet.text,
        config_sha256=fleet.sha256, version=__version__, t0=t0, wall0=wall0,
        resumed_from=resumed_from,
    )
    sim: Simulation | None = None
    interrupted = False
    async with trio.open_nursery() as services:
        run_id = await services.start(
            lambda task_status: run_ledger_writer(
                ledger_path, ledger_channel, run=run, task_status=task_status,
                offload=run_inline if virtual else None, on_stored=stored,
            ),
            name="ledger writer",
        )
        url = fleet.csms.url
        csms_scope = trio.CancelScope()
        chaos = chaos_states(fleet.run.seed)  # each charger's, shared by its link and streams
        wrap = with_chaos(chaos, wrap)
        in_memory: TransportFactory | None = None
        if url == "embedded" and virtual:
            server = CsmsServer(
                CentralSystem(csms_options(fleet), wall_epoch=wall_epoch, plugin=plugin,
                              new_id=seeds.uuid_ids(seeds.derive(fleet.run.seed, "csms"))),
                publish=bus.publish,
            )
            services.start_soon(_cancelled_by, csms_scope, server.poll,
                                name="embedded csms polls")
            url = VIRTUAL_URL
            in_memory = virtual_opener(server, client=websocket_client(fleet), wrap=wrap,
                                       plugin=plugin)
        elif url == "embedded":
            url = await services.start(_run_embedded_csms, fleet, bus.publish, plugin, csms_scope,
                                       name="embedded csms")
        given = open_transport or in_memory
        # Over real sockets, each group connects with its security settings and each charger
        # with its credentials in force (a test's transports and the virtual one have none).
        connects: dict[str, CredentialOpener | None] = {group.name: None for group in fleet.groups}
        openers: dict[str, TransportOpener] = {}
        for group in fleet.groups:
            if given is not None:
                openers[group.name] = functools.partial(given, url)
            else:
                connect = group_opener(fleet, group, url, wrap=wrap, plugin=plugin)
                connects[group.name], openers[group.name] = connect, fleet_settings(connect)
        plans = [
            GroupPlan(
                name=group.name,
                connect_rate=group.connect_rate,
                chargers=[
                    ChargerEnv(
                        spec=spec, seed=fleet.run.seed, url=url,
                        open_transport=openers[group.name],
                        publish=bus.publish, persist=persist, wall_epoch=wall_epoch,
                        sessions=group.sessions, plugin=plugin, run_id=run_id,
                        chaos=chaos(spec.identity), connect=connects[group.name],
                    )
                    for spec in charger_specs(group, fleet.csms)
                ],
            )
            for group in fleet.groups
        ]
        fleet_scope = trio.CancelScope()  # the fleet (cancelled: the grace period ends)
        watchers = trio.CancelScope()  # the live view and the lag probe, until the fleet ends
        finished = trio.Event()
        async with trio.open_nursery() as work:

            async def fleet_task(task_status: trio.TaskStatus[RunningFleet]) -> None:
                try:
                    with fleet_scope:
                        await run_fleet(
                            plans, gc_tuning=gc_tuning, gc_tick=VIRTUAL_TICK if virtual else TICK,
                            outboxes=outboxes, memories=memories,
                            task_status=task_status,
                        )
                finally:
                    finished.set()
                    watchers.cancel()

            async def watch(task_status: trio.TaskStatus[None]) -> None:
                with watchers:
                    async with trio.open_nursery() as nursery:
                        if not virtual:  # (under a virtual clock the loop never lags)
                            nursery.start_soon(run_lag_probe, bus.publish, name="lag probe")
                        if live:
                            size = running.size
                            nursery.start_soon(
                                lambda: run_live_view(
                                    counters, title=fleet.run.name, fleet_size=lambda: size,
                                    stream=view_stream,
                                ),
                                name="live view",
                            )
                        task_status.started()

            running = await work.start(fleet_task, name="fleet")
            controls = running.controls  # the same dict, filled as the chargers start
            await work.start(watch, name="watchers")
            sim = Simulation(fleet=fleet, bus=bus, counters=counters, running=running, url=url,
                             ledger=ledger_path, run_id=run_id, grace=grace,
                             root=trio.lowlevel.current_task(), fleet_scope=fleet_scope,
                             finished=finished, t0=t0, wall0=wall0)
            if fleet.steps or fleet.chaos:  # (no director at all without them: no cost)
                await work.start(_director(sim, t0), name="director")
            for service in alongside:
                await work.start(_until_finished, finished, service, sim,
                                 name=type(service).__name__)
            try:
                yield sim
            except BaseException:
                interrupted = True
                raise
            finally:
                if interrupted:
                    work.cancel_scope.cancel()
                else:
                    sim.stop(grace)
        csms_scope.cancel()
        await _store_unsaved_outboxes(running, bus)
        await bus.aclose()
    interrupted = interrupted or (sim is not None and sim.interrupted)
    counters_final = counters.snapshot(trio.current_time())
    reasons: list[str] = []
    if counters_final.connects == 0 and running.size > 0:
        causes = problems.summary()
        reasons.append(f"no charger could connect to {url}" + (f": {causes}" if causes else ""))
    elif boots and not boots["Accepted"]:
        answers = ", ".join(f"{status} {count}" for status, count in boots.most_common())
        reasons.append(f"{url} accepted no charger's boot ({answers}): nothing was tested "
                       "beyond the BootNotification")
    if counters_final.crashes:
        reasons.append(f"{counters_final.crashes} charger crash(es)")
    if interrupted:
        status, exit_code = RunStatus.INTERRUPTED, ExitCode.INTERRUPTED
    elif reasons:
        status, exit_code = RunStatus.FAILED, ExitCode.FAILED
    else:
        status, exit_code = RunStatus.COMPLETED, ExitCode.COMPLETED
    summary = {"reasons": reasons, "live": msgspec.to_builtins(counters_final),
               LOOP_PROBE_SUMMARY_KEY: not virtual, CLOCK_ORIGIN_SUMMARY_KEY: t0}
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(finish_run, ledger_path, run_id, status, exit_code,
                                      summary)
        if fleet.expect:  # judged over the finished run, then stored with it
            verdicts = await trio.to_thread.run_sync(
                functools.partial(judge, ledger_path, run_id, fleet=fleet))
            failed = [f"#{v.number} {v.check}" for v in verdicts if not v.passed]
            if failed:
                reasons.append(f"{len(failed)} of {len(verdicts)} expectation(s) failed: "
                               + ", ".join(failed))
                if not interrupted:
                    status, exit_code = RunStatus.FAILED, ExitCode.FAILED
            summary[VERDICTS_SUMMARY_KEY] = msgspec.to_builtins(verdicts)
            await trio.to_thread.run_sync(finish_run, ledger_path, run_id, status, exit_code,
                                          summary)
    assert sim is not None
    sim.result = RunResult(ledger_path, run_id, status, exit_code, tuple(reasons))


async def run_simulation(
    fleet: FleetFile,
    *,
    resume: bool = False,
    live: bool = True,
    view_stream: TextIO | None = None,
    open_transport: TransportFactory | None = None,
    grace: float = DEFAULT_GRACE,
    gc_tuning: bool = True,
    notify: Callable[[str], None] | None = None,
    alongside: Sequence[Service] = (),
) -> RunResult:
    """Run ``fleet`` to its end and return the result: :func:`open_simulation` (with
    ``alongside``) until the duration runs out, until someone calls :meth:`Simulation.stop`
    (the control API's stop), or until Ctrl-C or SIGTERM (the run is then ``interrupted``; a
    second signal ends the grace period)."""
    async with open_simulation(
        fleet, resume=resume, live=live, view_stream=view_stream,
        open_transport=open_transport, grace=grace, gc_tuning=gc_tuning, notify=notify,
        alongside=alongside,
    ) as sim:
        duration = fleet.run.duration
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as waits:
                waits.cancel_scope.deadline = trio.current_time() + (
                    duration if duration is not None else math.inf)

                async def first_signal() -> None:
                    async for _ in signals:
                        sim.interrupted = True
                        break
                    waits.cancel_scope.cancel()

                async def stopped() -> None:
                    await sim.stopping.wait()
                    waits.cancel_scope.cancel()

                waits.start_soon(first_signal)
                waits.start_soon(stopped)
            if not sim.stopping.is_set():
                sim.stop(grace)
            async with trio.open_nursery() as nursery:

                async def second_signal() -> None:
                    async for _ in signals:
                        sim.end_grace()
                        return

                nursery.start_soon(second_signal)
                await sim.wait_finished()
                nursery.cancel_scope.cancel()
    assert sim.result is not None
    return sim.result


async def _store_unsaved_outboxes(fleet: RunningFleet, bus: EventBus) -> None:
    """Hand the ledger every outbox that changed since a charger last handed it over: one
    cancelled while handing it (a second Ctrl-C) has not stored its last changes. Shielded,
    and bounded like the writer's own flush."""
    with trio.CancelScope(shield=True), trio.move_on_after(DEFAULT_SHUTDOWN_FLUSH_TIMEOUT):
        for identity, control in fleet.controls.items():
            if control.unsaved:
                await bus.publish_control(SaveOutbox(
                    t=trio.current_time(), charger=identity, entries=control.outbox,
                    memory=control.memory,
                ))  # (nothing waits to send any more: no acknowledgement needed)
                control.persisted = control.outbox


def _director(
    sim: Simulation, t0: float
) -> Callable[[trio.TaskStatus[None]], Awaitable[None]]:
    """The director of ``sim``'s fleet: its ``[[step]]`` tables through the command facade and
    its ``[[chaos]]`` plan, times counted from ``t0`` (the run's start), until the graceful end
    begins."""
    fleet = sim.fleet
    plan = ChaosPlan(fleet.chaos, fleet.groups, fleet.run.seed, start=t0,
                     end=fleet.run.duration)
    steps = [ScriptedStep(t0 + step.at, functools.partial(sim.run_step, step, index))
             for index, step in enumerate(fleet.steps)]
    return functools.partial(run_director, plan, steps, sim.running_controls, sim.bus.publish,
                             stop=sim.stopping)


def _load_outboxes(
    path: Path,
) -> tuple[dict[str, tuple[OutboxEntry, ...]], dict[str, ChargerMemory], int | None]:
    """What ``--resume`` restores from the ledger at ``path``: the outboxes, the chargers'
    memories and the latest run's id (empty and None for a ledger that does not exist)."""
    if not path.exists():
        return {}, {}, None
    ledger = Ledger.open(path)
    try:
        latest = ledger.latest_run()
        stored = ledger.load_outbox()
        remembered = ledger.load_memory()
    finally:
        ledger.close()
    decoder = msgspec.json.Decoder(OutboxEntry)
    outboxes = {
        charger: tuple(decoder.decode(entry) for entry in entries)
        for charger, entries in stored.items()
        if entries
    }
    memory_decoder = msgspec.json.Decoder(ChargerMemory)
    memories = {charger: memory_decoder.decode(memory) for charger, memory in remembered.items()}
    return outboxes, memories, (latest.id if latest is not None else None)


async def _until_finished(
    finished: trio.Event, service: Service, sim: Simulation,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``service`` for ``sim`` until the fleet has finished, then :data:`SERVICE_GRACE`
    seconds more (to end what it serves cleanly: the API's event streams), then cancel it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(service.serve, sim))
        task_status.started()
        await finished.wait()
        nursery.cancel_scope.deadline = trio.current_time() + SERVICE_GRACE


async def _cancelled_by(scope: trio.CancelScope, run: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await run()


async def _run_embedded_csms(
    fleet: FleetFile,
    publish: Callable[[Event], Awaitable[None]],
    plugin: ProtocolPlugin,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await run_csms(
            csms_options(fleet), host="127.0.0.1", port=0, publish=publish, plugin=plugin,
            task_status=task_status,
        )


__all__ = [
    "DEFAULT_GRACE",
    "VIRTUAL_URL",
    "ExitCode",
    "RunResult",
    "Service",
    "charger_specs",
    "run_clock",
    "run_simulation",
]
