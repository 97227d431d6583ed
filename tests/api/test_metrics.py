"""The fleet's metrics: ``GET /metrics`` parsed with prometheus-client's own parser counts what
the ledger holds (frames by action, direction and message type, CALLERRORs by code, answers
timed, transactions, energy, faults), ``GET /api/stats`` is its JSON view, both ask for the
token; and the observer never raises, whatever it is fed. Against the embedded CSMS, on a
virtual clock, in memory."""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from simulator.api.metrics import LATENCY_BUCKETS, MAX_LABELS, OTHER, FleetMetrics, error_code
from simulator.api.server import ApiService
from simulator.config import parse_fleet
from simulator.events import (
    Connected,
    Crashed,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    LoopLagged,
    Note,
    TransactionStarted,
    TransactionStopped,
)
from simulator.report.frames import percentile
from simulator.runtime import open_simulation

TOKEN = "s3cret-token"

FLEET = """
[run]
name = "metrics"
seed = 18
time = "virtual"
ledger = "{ledger}"

[api]
listen = "127.0.0.1:0"
token = "{token}"

[csms.embedded]
accepted_tags = ["TAG-*"]
heartbeat_interval = "10s"

[[group]]
name = "street"
count = 3
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10

[group.config]
MeterValueSampleInterval = 10
HeartbeatInterval = 10

[group.sessions]
arrivals_per_hour = 120
duration = "20s..60s"
energy_kwh = "0.2..1"
id_tags = ["TAG-1", "TAG-2"]

[[chaos]]
fault = "unknown_action"
target = {{ group = "street" }}
at = "5s"
params = {{ action = "Heartbeat", action_name = "FlyToTheMoon" }}

[[chaos]]
fault = "schema_violation"
target = {{ ids = ["ST-2"] }}
at = "5s"
params = {{ action = "Heartbeat", kind = "missing_field" }}

[[chaos]]
fault = "malformed_json"
target = {{ ids = ["ST-3"] }}
at = "5s"
params = {{ action = "Heartbeat" }}

[[chaos]]
fault = "bad_message_type"
target = {{ ids = ["ST-1"] }}
at = "5s"
params = {{ action = "Heartbeat", message_type = 7 }}

[[chaos]]
fault = "latency"
target = {{ ids = ["ST-2", "ST-3"] }}
at = "1s"
params = {{ ms = 300, jitter_ms = 250, direction = "both" }}

[[step]]
at = "30s"
do = "disconnect"
target = {{ ids = ["ST-1"] }}
"""

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


def samples(text: str, name: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]


def by_labels(found: Iterable[Sample], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[label] for label in labels): s.value for s in found}


def value(text: str, name: str) -> float:
    (sample,) = samples(text, name)
    return sample.value


def ledger_code(raw: str) -> str:
    try:
        code = json.loads(raw)[2]
    except (ValueError, IndexError, KeyError, TypeError):
        return "(unreadable)"
    return code if isinstance(code, str) and code else "(unreadable)"


MESSAGE = {2: "call", 3: "result", 4: "error"}


class Client:
    """An in-memory client of the app that holds the virtual clock still during a request.

    Litestar runs a synchronous guard (the seam's token guard) in a worker thread; while a
    request waits for it, an autojump clock would jump the fleet ahead by whatever its timers
    say, so the requests here stop the clock for their duration."""

    def __init__(self, client: httpx.AsyncClient, clock: trio.testing.MockClock) -> None:
        self.client = client
        self.clock = clock

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        self.clock.autojump_threshold = math.inf
        try:
            return await self.client.get(url, **kwargs)
        finally:
            self.clock.autojump_threshold = 0


async def test_metrics_count_what_the_ledger_holds(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    fleet = parse_fleet(FLEET.format(ledger=ledger, token=TOKEN))
    assert fleet.api is not None
    service = ApiService(fleet.api, listen=False)
    async with open_simulation(fleet, alongside=[service], gc_tuning=False) as sim:
        assert service.app is not None
        transport = httpx.ASGITransport(app=service.app)
        with trio.fail_after(600):
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
                client = Client(http, autojump_clock)
                await trio.sleep(45)
                assert (await client.get("/metrics")).status_code == 401
                wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                assert TOKEN not in wrong.text
                assert (await client.get("/api/stats")).status_code == 401
                live = await client.get("/metrics", headers=AUTH)
                assert live.status_code == 200
                assert live.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
                assert value(live.text, "sim_chargers_connected") \
                    == sim.statistics().chargers_connected > 0
                assert value(live.text, "sim_outbox_messages") \
                    == sum(len(c.outbox) for c in sim.running_controls.values())
                by_token = await client.get(f"/metrics?access_token={TOKEN}")
                assert by_token.status_code == 200
                document = (await client.get("/api/openapi.json", headers=AUTH)).json()
                assert {"/metrics", "/api/stats"} <= set(document["paths"])
                assert {"FleetStats", "ActionStats"} <= set(document["components"]["schemas"])
                await trio.sleep(120)
                sim.stop()
                await sim.wait_finished()
    # The run has ended (leaving the block stores it: no deadline runs then, since the clock
    # would jump to it while the ledger's thread works) and the ledger holds every event.
    with trio.fail_after(60):
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            client = Client(http, autojump_clock)
            text = (await client.get("/metrics", headers=AUTH)).text
            stats = (await client.get("/api/stats", headers=AUTH)).json()

    frames = {(direction, action or "(unknown)", MESSAGE.get(message_type, "invalid")): n
              for direction, action, message_type, n in rows(
                  ledger, "SELECT direction, action, message_type, count(*) FROM frames "
                          "GROUP BY 1, 2, 3")}
    assert by_labels(samples(text, "sim_frames_total"), "direction", "action", "message") \
        == frames
    assert {message for _, _, message in frames} >= {"call", "result", "error", "invalid"}

    codes = Counter((direction, ledger_code(raw)) for direction, raw in rows(
        ledger, "SELECT direction, raw FROM frames WHERE message_type = 4"))
    assert by_labels(samples(text, "sim_callerrors_total"), "direction", "code") == codes
    assert sum(codes.values()) > 0

    latencies: dict[str, list[float]] = {}
    for action, latency in rows(ledger, "SELECT action, latency FROM frames "
                                        "WHERE direction = 'in' AND latency IS NOT NULL"):
        latencies.setdefault(action, []).append(latency)
    counts = by_labels(samples(text, "sim_latency_seconds_count"), "action")
    assert counts == {(action,): len(values) for action, values in latencies.items()}
    sums = by_labels(samples(text, "sim_latency_seconds_sum"), "action")
    for action, values in latencies.items():
        assert math.isclose(sums[(action,)], sum(values), rel_tol=1e-9)
        buckets = {s.labels["le"]: s.value for s in samples(text, "sim_latency_seconds_bucket")
                   if s.labels["action"] == action}
        assert len(buckets) == len(LATENCY_BUCKETS) + 1
        assert buckets["+Inf"] == len(values)
        assert buckets["0.1"] == sum(1 for v in values if v <= 0.1)

    (started,), = rows(ledger, "SELECT count(*) FROM events WHERE kind = 'tx_started'")
    (stopped,), = rows(ledger, "SELECT count(*) FROM events WHERE kind = 'tx_stopped'")
    (energy,), = rows(ledger, "SELECT total(max(meter_stop - meter_start, 0)) FROM transactions "
                              "WHERE meter_stop IS NOT NULL")
    assert started >= 3 and stopped == started
    assert value(text, "sim_transactions_started_total") == started
    assert value(text, "sim_transactions_stopped_total") == stopped
    assert value(text, "sim_energy_delivered_wh_total") == energy > 0

    faults = dict(rows(ledger, "SELECT json_extract(data, '$.fault'), count(*) FROM events "
                               "WHERE kind = 'fault' "
                               "AND json_extract(data, '$.skipped') IS NULL GROUP BY 1"))
    assert by_labels(samples(text, "sim_faults_injected_total"), "fault") \
        == {(name,): n for name, n in faults.items()}
    assert {"unknown_action", "schema_violation", "malformed_json", "bad_message_type",
            "latency", "disconnect"} <= set(faults)

    (events,), = rows(ledger, "SELECT count(*) FROM events")
    assert value(text, "sim_events_total") == events
    assert value(text, "sim_observer_errors_total") == 0
    (summary,), = rows(ledger, "SELECT summary FROM runs")
    assert value(text, "sim_chargers_connected") \
        == json.loads(summary)["live"]["chargers_connected"]  # the live counters' rule
    assert not samples(text, "sim_loop_lag_max_seconds")  # no probe under virtual time

    # /api/stats: the same counts per action, and the percentiles of the answers timed.
    assert set(stats) == {"t", "actions", "exchanges", "callerrors", "faults"}
    assert 165 <= stats["t"] <= trio.current_time()  # (the clock began at 0)
    assert stats["faults"] == faults
    assert stats["callerrors"] == dict(Counter(code for (_, code) in codes.elements()))
    calls = sum(n for (_, _, message), n in frames.items() if message == "call")
    assert stats["exchanges"] == calls
    for action, row in stats["actions"].items():
        assert set(row) == {"sent", "received", "errors", "p50", "p95", "count"}
        assert row["sent"] == frames.get(("out", action, "call"), 0)
        assert row["received"] == frames.get(("in", action, "call"), 0)
        assert row["errors"] == (frames.get(("out", action, "error"), 0)
                                 + frames.get(("in", action, "error"), 0))
        timed = sorted(latencies.get(action, ()))
        assert row["count"] == len(timed)
        if timed:
            assert len(timed) <= 256  # the window holds them all: exact percentiles
            assert math.isclose(row["p50"], percentile(timed, 50.0))
            assert math.isclose(row["p95"], percentile(timed, 95.0))
        else:
            assert row["p50"] is None and row["p95"] is None
    assert stats["actions"]["Heartbeat"]["sent"] > 0
    assert stats["actions"]["FlyToTheMoon"]["sent"] > 0
    assert stats["actions"]["(unknown)"]["errors"] > 0  # (the CSMS's answers to it)
    assert stats["actions"]["Heartbeat"]["p95"] > stats["actions"]["Heartbeat"]["p50"] > 0


def test_error_codes_are_read_from_the_raw_callerror() -> None:
    table = {
        '[4,"1","NotImplemented","no",{}]': "NotImplemented",
        '[4, "1", "FormationViolation"]': "FormationViolation",
        '[4,"1"]': "(unreadable)",
        '[4,"1","",""]': "(unreadable)",
        '[4,"1",7]': "(unreadable)",
        '{"not": "an array"}': "(unreadable)",
        "not json at all": "(unreadable)",
        "": "(unreadable)",
    }
    assert {raw: error_code(raw) for raw in table} == table


class Strange(Event, frozen=True, tag="strange_kind_of_event"):
    """An event kind the metrics do not know."""


def test_observe_never_raises_whatever_it_is_fed() -> None:
    metrics = FleetMetrics()
    odd: list[Any] = [
        FrameIn(t=1.0, raw="garbage"),  # no message type, no action
        FrameOut(t=1.0, raw="not json", message_type=4, action="Heartbeat"),
        FrameIn(t=1.0, raw='[4,"x"]', message_type=4, action=None, latency=0.2),
        FrameIn(t=1.0, raw="[9]", message_type=9, action="", latency=float("nan")),
        FrameIn(t=1.0, raw="[3]", message_type=3, action="Heartbeat", latency=1e9),
        FrameIn(t=1.0, raw="[3]", message_type=3, action="Heartbeat", latency=-1.0),
        TransactionStopped(t=1.0, charger="X", local_id=9, transaction_id=None,
                           meter_stop=50, reason="Local"),  # never started
        TransactionStarted(t=1.0, charger="X", local_id=1, id_tag="T", meter_start=100),
        TransactionStopped(t=2.0, charger="X", local_id=1, transaction_id=None,
                           meter_stop=40, reason="Local"),  # a meter that went backwards
        Crashed(t=1.0, error="E", traceback="", restart_in=1.0),
        FaultInjected(t=1.0, fault="disconnect", skipped="not started"),
        LoopLagged(t=1.0, max=0.5, mean=0.1, samples=10, probe_interval=0.01),
        Note(t=1.0, what="x"),
        Strange(t=1.0),
        Event(t=1.0),
    ]
    for event in odd:
        metrics.observe(event)
    assert metrics.errors == 0
    metrics.observe(FrameIn(t=1.0, raw="[3]", message_type=3, action="Heartbeat",
                            latency="slow"))  # type: ignore[arg-type]
    metrics.observe(None)  # not an event at all
    metrics.observe(object())
    assert metrics.errors == 1  # (the latency it could not place: counted, never raised)
    assert metrics.events == len(odd) + 3
    fresh = FleetMetrics()
    fresh.observe(None)  # not an event at all: counted as one, nothing else
    assert (fresh.events, fresh.errors) == (1, 0)
    assert metrics.energy_wh == 0 and metrics.transactions_stopped == 2
    frames = metrics.frames()
    assert frames[("in", "(unknown)", "invalid")] == 2  # (no action, and an empty one)
    assert frames[("in", "(unknown)", "error")] == 1
    assert frames[("out", "Heartbeat", "error")] == 1
    assert frames[("in", "Heartbeat", "result")] == 3
    assert metrics.stats(0.0).actions["Heartbeat"].count == 1  # (1e9 s; not -1, NaN)
    assert metrics.stats(0.0).actions["(unknown)"].count == 1
    stats = metrics.stats(0.0)
    assert stats.callerrors == {"(unreadable)": 2}
    assert stats.faults == {}
    text = generate_latest(metrics.registry).decode()
    assert value(text, "sim_loop_lag_max_seconds") == 0.5
    assert value(text, "sim_loop_lag_mean_seconds") == 0.1
    assert value(text, "sim_outbox_messages") == 0  # bound to no simulation yet


def test_labels_from_outside_are_bounded() -> None:
    metrics = FleetMetrics()
    for n in range(MAX_LABELS + 50):
        metrics.observe(FrameIn(t=1.0, raw="[2]", message_type=2, action=f"Action{n}"))
        metrics.observe(FrameIn(t=1.0, raw=f'[4,"1","Code{n}"]', message_type=4,
                                action="Heartbeat"))
    actions = {action for _, action, _ in metrics.frames()}
    assert len(actions) == MAX_LABELS + 1 and OTHER in actions
    # Heartbeat and Action0..Action126 took the labels; Action127..Action177 are (other)
    assert metrics.frames()[("in", OTHER, "call")] == 51
    assert metrics.stats(0.0).callerrors[OTHER] == 50


REAL_FLEET = """
[run]
name = "metrics-live"
seed = 19
time = "real"
ledger = "{ledger}"

[api]
listen = "127.0.0.1:0"
token = "{token}"

[[group]]
name = "street"
count = 2
id = "LV-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 1
max_power_kw = 22
connect_rate = 50
"""


async def test_metrics_over_a_real_socket(tmp_path: Path) -> None:
    """Real time, the API on a real port: a Prometheus scrape sees the fleet connect."""
    fleet = parse_fleet(REAL_FLEET.format(ledger=tmp_path / "live.db", token=TOKEN))
    assert fleet.api is not None
    service = ApiService(fleet.api)
    with trio.fail_after(30):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False) as sim:
            assert service.url is not None and service.url.startswith("http://127.0.0.1:")
            events = sim.bus.subscribe_lossy(1000, "test")
            connected: set[str | None] = set()
            async with events:
                async for event in events:  # (the bus tells when both have connected)
                    if isinstance(event, Connected):
                        connected.add(event.charger)
                    if len(connected) == 2:
                        break
            async with httpx.AsyncClient(base_url=service.url) as client:
                assert (await client.get("/metrics")).status_code == 401
                scrape = await client.get("/metrics", headers=AUTH)
                assert scrape.status_code == 200
                assert value(scrape.text, "sim_chargers_connected") == 2
                sent = by_labels(samples(scrape.text, "sim_frames_total"),
                                 "direction", "action", "message")
                assert sent[("out", "BootNotification", "call")] == 2
                stats = (await client.get("/api/stats", headers=AUTH)).json()
                assert stats["actions"]["BootNotification"]["sent"] == 2
            sim.stop()
