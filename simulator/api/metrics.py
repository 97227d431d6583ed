"""The fleet's Prometheus metrics (``GET /metrics``) and their JSON view (``GET /api/stats``).

:class:`FleetMetrics` is a bus observer (``bus.observe(metrics.observe)``, attached before the
fleet starts, so it misses no event) that keeps plain counts, and a collector that turns them
into metric families of its own registry (never prometheus-client's global one) when scraped.
Plain counts rather than prometheus-client's metric objects: those take a lock on every
increment, and ``observe`` runs inside ``bus.publish`` for every event of up to ten thousand
chargers; everything here runs in the one Trio thread, so a scrape never sees a half-made count.

What each metric counts (``sim_`` prefix; frames are the chargers' own ``frame_in`` /
``frame_out`` events, exactly the ledger's ``frames`` view; the embedded CSMS's ``csms_frame_*``
mirror them and are not counted):

- ``sim_frames_total{direction, action, message}``: the exchanges, one count per frame.
  ``direction`` is ``out`` (sent) or ``in`` (received); ``message`` is ``call``,
  ``result`` or ``error`` (message types 2, 3, 4; ``invalid`` for anything else, such as a frame
  that did not parse). A CALLRESULT or CALLERROR counts under the action it answers (the
  frame's ``action``); a frame whose action is not known under ``(unknown)``. A frame later
  reported ``frame_unsent`` stays counted, as the ledger keeps its ``frame_out``.
- ``sim_latency_seconds{action}``: histogram of the answers to our CALLs (``FrameIn.latency``,
  results and errors alike; a latency that is not a number of seconds >= 0 is left out),
  buckets :data:`LATENCY_BUCKETS`.
- ``sim_callerrors_total{direction, code}``: CALLERROR frames (message type 4) by the error code
  in their raw text (``(unreadable)`` when it cannot be read), as the report counts them.
- ``sim_transactions_started_total`` / ``sim_transactions_stopped_total``: ``tx_started`` /
  ``tx_stopped`` events.
- ``sim_energy_delivered_wh_total``: per stopped transaction, ``meter_stop`` minus the
  ``meter_start`` of the ``tx_started`` with the same charger and ``local_id`` (as the report
  computes it). A stop whose start this run did not see (a ``--resume``) adds nothing, and neither
  does a meter that went backwards: a counter never decreases.
- ``sim_faults_injected_total{fault}``: faults handed to a charger (``fault`` events without
  ``skipped``).
- ``sim_chargers_connected``: chargers between their ``connected`` and their next
  ``disconnected`` or charger-level ``crash`` (the rule of :class:`simulator.bus.Counters`).
- ``sim_outbox_messages``: transaction messages queued in the running chargers' outboxes, summed
  at scrape time.
- ``sim_loop_lag_max_seconds`` / ``sim_loop_lag_mean_seconds``: the last ``loop_lag`` event's
  ``max`` and ``mean`` (absent until the probe has reported: it does not run under virtual time).
- ``sim_events_total``: every event observed; ``sim_observer_errors_total``: events this
  observer failed on (a bug: it never raises into the bus, it counts them here).

Label values that come from outside (an action a CSMS sends, an error code) are bounded: past
:data:`MAX_LABELS` distinct values of one label, new ones count under ``(other)``.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
import trio
from litestar import Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from simulator.events import (
    Connected,
    Crashed,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    LoopLagged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.report.frames import UNKNOWN_ACTION, UNKNOWN_ERROR_CODE, percentile

if TYPE_CHECKING:
    from simulator.actors.charger import ChargerControl
    from simulator.api.parts import ApiContext, ApiPart
    from simulator.simulation import Simulation

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                          5.0, 10.0, 30.0, 60.0)
"""Upper bounds (s, ``le``) of the latency histogram's buckets, 1 ms to 60 s (+Inf above)."""

RECENT_LATENCIES: Final = 256
"""Answers per action kept for ``/api/stats``'s p50 / p95 (the most recent ones)."""

MAX_LABELS: Final = 128
"""Distinct values one label (action, error code, fault) may take; later ones are ``(other)``."""

OTHER: Final = "(other)"
"""Label value of what came after :data:`MAX_LABELS` distinct ones."""

EXPOSITION_TYPE: Final = "text/plain; version=0.0.4"
"""The content type of ``GET /metrics``: Prometheus's text format 0.0.4, which
``generate_latest`` writes (Litestar adds ``charset=utf-8``)."""

MESSAGES: Final = {2: "call", 3: "result", 4: "error"}
"""The ``message`` label by OCPP-J message type (any other: ``invalid``)."""

_INVALID: Final = 0  # the row of frames whose message type is none of MESSAGES
_CALL_ERROR: Final = 4


class _ErrorHead(msgspec.Struct, array_like=True):
    """The head of a CALLERROR frame, ``[4, id, code, ...]`` (the rest is ignored)."""

    message_type: Any = None
    unique_id: Any = None
    code: Any = None


_error_head: Final = msgspec.json.Decoder(_ErrorHead)


def error_code(raw: str) -> str:
    """The error code of the CALLERROR frame ``raw``, or ``(unreadable)``."""
    try:
        code = _error_head.decode(raw).code
    except (msgspec.DecodeError, ValueError):
        return UNKNOWN_ERROR_CODE
    return code if isinstance(code, str) and code else UNKNOWN_ERROR_CODE


class _Timing:
    """One action's answers: non-cumulative bucket counts (the last one is +Inf), their sum
    and the most recent latencies."""

    __slots__ = ("buckets", "count", "recent", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.total = 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=RECENT_LATENCIES)


class _Labels:
    """The values one label has taken, bounded by :data:`MAX_LABELS`."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def admit(self, value: str) -> str:
        """``value`` itself, or ``(other)`` once the label has its fill of other values."""
        if value in self.seen:
            return value
        if len(self.seen) >= MAX_LABELS:
            return OTHER
        self.seen.add(value)
        return value


_Rows = dict[int | None, dict[str | None, int]]
"""Frames counted by message type (:data:`_INVALID` for any other) then action (admitted)."""


def _frame_rows() -> _Rows:
    return {message_type: {} for message_type in (_INVALID, *MESSAGES)}


class FleetMetrics:
    """The fleet's Prometheus metrics (see the module docstring for what each counts), fed by
    the bus: :meth:`observe` for every event, from before the fleet starts. :attr:`registry` is
    its own ``CollectorRegistry``; :meth:`bind` gives it the running simulation, whose outboxes
    it reads at scrape time. Used from the run's Trio thread only."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._frames_out = _frame_rows()  # message type -> action -> frames
        self._frames_in = _frame_rows()
        self._actions = _Labels()
        self._timings: dict[str | None, _Timing] = {}  # (its keys are admitted actions)
        self._errors_out: dict[str, int] = {}  # error code -> CALLERRORs
        self._errors_in: dict[str, int] = {}
        self._codes = _Labels()
        self._faults: dict[str, int] = {}
        self._fault_names = _Labels()
        self._connected: set[str] = set()
        self._open: dict[tuple[str | None, int], int] = {}  # (charger, local_id) -> meter_start
        self.transactions_started = 0
        self.transactions_stopped = 0
        self.energy_wh = 0
        self._lag: LoopLagged | None = None
        self.events = 0
        self.errors = 0
        self._controls: Mapping[str, ChargerControl] = {}
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            FrameOut: self._frame_out,
            FrameIn: self._frame_in,
            Connected: self._connected_event,
            Disconnected: self._disconnected,
            Crashed: self._crashed,
            TransactionStarted: self._tx_started,
            TransactionStopped: self._tx_stopped,
            FaultInjected: self._fault,
            LoopLagged: self._loop_lag,
        }
        self.registry.register(self)  # (a collector: ``collect`` below)

    def bind(self, sim: Simulation) -> None:
        """Read ``sim``'s running chargers' outboxes at scrape time."""
        self._controls = sim.running_controls

    # --- the observer (hot path) ---------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Count ``event`` (called inside ``bus.publish``: cheap, never raises; an event it
        fails on is counted in ``sim_observer_errors_total``)."""
        self.events += 1
        try:
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(event)
        except Exception:  # an observer must never raise into publish: count it instead
            self.errors += 1

    def _count_frame(self, rows: dict[int | None, dict[str | None, int]],
                     errors: dict[str, int], event: FrameOut | FrameIn) -> str | None:
        """Count ``event`` in ``rows`` (by message type, then action) and, for a CALLERROR, its
        code in ``errors``; returns the action it was counted under."""
        row = rows.get(event.message_type)
        if row is None:
            row = rows[_INVALID]
        action = event.action
        n = row.get(action)
        if n is None:  # a new action (or none: the frame did not say)
            action = self._actions.admit(action or UNKNOWN_ACTION)
            n = row.get(action, 0)
        row[action] = n + 1
        if event.message_type == _CALL_ERROR:
            self._error(errors, event.raw)
        return action

    def _frame_out(self, event: FrameOut) -> None:
        self._count_frame(self._frames_out, self._errors_out, event)

    def _frame_in(self, event: FrameIn) -> None:
        action = self._count_frame(self._frames_in, self._errors_in, event)
        latency = event.latency
        if latency is not None and latency >= 0.0:  # (not NaN: it would poison the sum)
            timing = self._timings.get(action)
            if timing is None:
                timing = self._timings[action or UNKNOWN_ACTION] = _Timing()
            timing.buckets[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1
            timing.count += 1
            timing.total += latency
            timing.recent.append(latency)

    def _error(self, counts: dict[str, int], raw: str) -> None:
        code = self._codes.admit(error_code(raw))
        counts[code] = counts.get(code, 0) + 1

    def _connected_event(self, event: Connected) -> None:
        if event.charger is not None:
            self._connected.add(event.charger)

    def _disconnected(self, event: Disconnected) -> None:
        if event.charger is not None:
            self._connected.discard(event.charger)

    def _crashed(self, event: Crashed) -> None:
        if event.charger is not None and event.connector is None:
            self._connected.discard(event.charger)

    def _tx_started(self, event: TransactionStarted) -> None:
        self.transactions_started += 1
        self._open[(event.charger, event.local_id)] = event.meter_start

    def _tx_stopped(self, event: TransactionStopped) -> None:
        self.transactions_stopped += 1
        meter_start = self._open.pop((event.charger, event.local_id), None)
        if meter_start is not None and event.meter_stop > meter_start:
            self.energy_wh += event.meter_stop - meter_start

    def _fault(self, event: FaultInjected) -> None:
        if event.skipped is None:
            name = self._fault_names.admit(event.fault)
            self._faults[name] = self._faults.get(name, 0) + 1

    def _loop_lag(self, event: LoopLagged) -> None:
        self._lag = event

    # --- reading ---------------------------------------------------------------------------------

    @property
    def chargers_connected(self) -> int:
        """Chargers connected now (the rule of :class:`simulator.bus.Counters`)."""
        return len(self._connected)

    def outbox_depth(self) -> int:
        """Transaction messages queued in the running chargers' outboxes now."""
        return sum(len(control.outbox) for control in self._controls.values())

    def frames(self) -> dict[tuple[str, str, str], int]:
        """Frames by ``(direction, action, message)`` (the labels of ``sim_frames_total``)."""
        counts: dict[tuple[str, str, str], int] = {}
        for direction, rows in (("out", self._frames_out), ("in", self._frames_in)):
            for message_type, row in rows.items():
                message = MESSAGES.get(message_type or _INVALID, "invalid")
                for action, n in row.items():
                    counts[(direction, str(action), message)] = n
        return counts

    def collect(self) -> Iterator[Metric]:
        """The metric families, as of now (prometheus-client's collector protocol)."""
        frames = CounterMetricFamily(
            "sim_frames", "OCPP-J frames (the exchanges) by direction, action and message type",
            labels=("direction", "action", "message"))
        for labels, n in sorted(self.frames().items()):
            frames.add_metric(labels, n)
        yield frames
        latency = HistogramMetricFamily(
            "sim_latency_seconds", "Time from our CALL to its answer, by action",
            labels=("action",))
        for action, timing in sorted((str(a), timing) for a, timing in self._timings.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), timing.buckets, strict=True):
                cumulative += n
                buckets.append((_le(bound), cumulative))
            latency.add_metric((action,), buckets, timing.total)
        yield latency
        errors = CounterMetricFamily(
            "sim_callerrors", "CALLERROR frames by direction and error code",
            labels=("direction", "code"))
        for direction, codes in (("in", self._errors_in), ("out", self._errors_out)):
            for code, n in sorted(codes.items()):
                errors.add_metric((direction, code), n)
        yield errors
        yield CounterMetricFamily("sim_transactions_started", "Transactions started",
                                  value=self.transactions_started)
        yield CounterMetricFamily("sim_transactions_stopped", "Transactions stopped",
                                  value=self.transactions_stopped)
        yield CounterMetricFamily(
            "sim_energy_delivered_wh", "Energy delivered by stopped transactions (Wh)",
            value=self.energy_wh)
        faults = CounterMetricFamily("sim_faults_injected", "Faults handed to a charger",
                                     labels=("fault",))
        for name, n in sorted(self._faults.items()):
            faults.add_metric((name,), n)
        yield faults
        yield GaugeMetricFamily("sim_chargers_connected", "Chargers connected now",
                                value=self.chargers_connected)
        yield GaugeMetricFamily("sim_outbox_messages",
                                "Transaction messages queued in the chargers' outboxes",
                                value=self.outbox_depth())
        if self._lag is not None:
            yield GaugeMetricFamily("sim_loop_lag_max_seconds",
                                    "Worst event-loop lateness in the last probe period",
                                    value=self._lag.max)
            yield GaugeMetricFamily("sim_loop_lag_mean_seconds",
                                    "Mean event-loop lateness in the last probe period",
                                    value=self._lag.mean)
        yield CounterMetricFamily("sim_events", "Bus events observed", value=self.events)
        yield CounterMetricFamily("sim_observer_errors",
                                  "Events the metrics observer failed on (a bug)",
                                  value=self.errors)

    def stats(self, t: float) -> FleetStats:
        """The JSON view of ``GET /api/stats`` as of ``t`` (s since the run started): see
        :class:`FleetStats`."""
        actions: dict[str, _ActionCounts] = {}
        for (direction, action, message), n in self.frames().items():
            row = actions.setdefault(action, _ActionCounts())
            if message == "call":
                if direction == "out":
                    row.sent += n
                else:
                    row.received += n
            elif message == "error":
                row.errors += n
        timings = {str(name): timing for name, timing in self._timings.items()}
        codes = dict(self._errors_in)
        for code, n in self._errors_out.items():
            codes[code] = codes.get(code, 0) + n
        return FleetStats(
            t=t,
            actions={action: _action_stats(actions.get(action, _ActionCounts()),
                                           timings.get(action))
                     for action in sorted({*actions, *timings})},
            exchanges=sum(row.sent + row.received for row in actions.values()),
            callerrors=dict(sorted(codes.items())),
            faults=dict(sorted(self._faults.items())),
        )


class ActionStats(msgspec.Struct, frozen=True, kw_only=True):
    """One action in ``GET /api/stats``: ``sent`` / ``received`` CALLs of it, ``errors`` the
    CALLERRORs under it (both directions), ``count`` the answers to our CALLs of it that were
    timed, and ``p50`` / ``p95`` their latency (s) over the most recent
    :data:`RECENT_LATENCIES` of them: exact percentiles of that window (the report's
    interpolation), so they follow the run as it goes; null before the first answer."""

    sent: int
    received: int
    errors: int
    p50: float | None
    p95: float | None
    count: int


class FleetStats(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/stats``: as of ``t`` (s since the run started), every action seen (by name;
    ``(unknown)`` for frames that named none), ``exchanges`` every CALL sent or received (each
    opens one exchange), ``callerrors`` CALLERROR frames by code (both directions) and
    ``faults`` the faults injected, by name."""

    t: float
    actions: dict[str, ActionStats]
    exchanges: int
    callerrors: dict[str, int]
    faults: dict[str, int]


class _ActionCounts:
    __slots__ = ("errors", "received", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.errors = 0


def _action_stats(counts: _ActionCounts, timing: _Timing | None) -> ActionStats:
    recent = sorted(timing.recent) if timing is not None else []
    return ActionStats(
        sent=counts.sent, received=counts.received, errors=counts.errors,
        p50=percentile(recent, 50.0) if recent else None,
        p95=percentile(recent, 95.0) if recent else None,
        count=timing.count if timing is not None else 0,
    )


def _le(bound: float) -> str:
    """A bucket bound as the exposition writes it (``+Inf``, ``0.001``, ``1.0``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def part(ctx: ApiContext) -> ApiPart:
    """``GET /metrics`` (the Prometheus text exposition of ``ctx.metrics``) and ``GET
    /api/stats`` (its JSON view, :meth:`FleetMetrics.stats`); both behind the token rule."""
    from simulator.api.parts import ApiPart

    metrics, sim = ctx.metrics, ctx.sim
    metrics.bind(sim)

    @get("/metrics", media_type=EXPOSITION_TYPE, tags=["metrics"],
         summary="Prometheus metrics")
    async def scrape() -> Response[bytes]:
        """The fleet's metrics in Prometheus's text exposition format."""
        return Response(generate_latest(metrics.registry), media_type=EXPOSITION_TYPE)

    @get("/api/stats", tags=["metrics"], summary="Per-action counts and latencies")
    async def stats() -> FleetStats:
        """Per action: CALLs sent and received, CALLERRORs, answers timed and their recent
        p50 / p95 latency (s); all CALLs, CALLERRORs by code and faults injected by name."""
        return metrics.stats(trio.current_time() - sim.t0)

    return ApiPart(handlers=(scrape, stats))


__all__ = ["LATENCY_BUCKETS", "ActionStats", "FleetMetrics", "FleetStats", "error_code", "part"]
