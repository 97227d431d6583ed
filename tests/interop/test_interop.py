"""The simulator against a central system nobody here wrote (``peer_csms.py``, built on the PyPI
``ocpp`` package, schema validation on, in its own process).

One peer serves two runs at once, both shared by every test of this module (one ~20 s run):

- ``fleet20``: 20 chargers x 2 connectors for 16 s, HeartbeatInterval 3, MeterValueSampleInterval
  2, a session every ~2 s per connector, run in this process. The peer runs its command script of
  CS-initiated Core calls against each of them (``--commands``), its remote start aimed at a
  connector that reports Finishing (EV still plugged in) so the transaction starts at once.
- ``issue``: ``scenarios/interop.toml`` (the file of issue #4, exactly as written) through the CLI,
  with ``--csms`` replacing its port by the peer's and ``--ledger`` keeping the ledger in tmp.

The tests compare the simulator's ledger with the peer's record (JSON lines, see the peer).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import trio

from simulator.runtime import RunResult
from tests.config.documents import INTEROP

from .conftest import PeerCsms, Record
from .fleet_runs import TROUBLE_KINDS, LedgerView, run_cli, run_in_process

ISSUE_TOML: Final = Path(__file__).resolve().parents[2] / "scenarios" / "interop.toml"
ISSUE_TEXT: Final = INTEROP  # the issue's fleet file, word for word (one copy, in tests/config)
"""The fleet file of issue #4 ("This file must work exactly as written"), verbatim."""
ISSUE_IDS: Final = tuple(f"AC-{n:03}" for n in range(1, 11))
FLEET_IDS: Final = tuple(f"IO-{n:02}" for n in range(1, 21))
REMOTE_TAG: Final = "REMOTE-1"
RUN_BOUND_S: Final = 75.0
"""Upper bound on both runs together (real seconds): 20 s of run, its grace period, start-up."""

FLEET_20: Final = """\
[run]
name = "interop-20"
seed = 20
duration = "16s"
ledger = "fleet20.db"

[csms]
url = "ws://127.0.0.1:9/ocpp"  # replaced by the peer's URL

[[group]]
name = "io"
count = 20
id = "IO-{n:02}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
HeartbeatInterval = 3
MeterValueSampleInterval = 2

[group.sessions]
arrivals_per_hour = 1800
duration = "2s..5s"
energy_kwh = "1..5"
id_tags = ["TAG-1", "TAG-2"]
"""

PEER_ARGS: Final = (
    "--commands", "--commands-for", "IO-", "--remote-start-on", "finishing",
    "--remote-tag", REMOTE_TAG, "--start-wait", "12",
)
SCRIPT: Final = (
    "GetConfiguration", "GetConfiguration", "ChangeConfiguration", "GetConfiguration",
    "ChangeConfiguration", "ChangeConfiguration", "TriggerMessage", "TriggerMessage",
    "TriggerMessage", "RemoteStartTransaction", "RemoteStopTransaction", "ChangeAvailability",
    "ChangeAvailability", "UnlockConnector", "DataTransfer",
)
"""The peer's command script, in order (see ``peer_csms.py``)."""


@dataclasses.dataclass(frozen=True)
class InteropRun:
    records: list[Record]
    fleet_result: RunResult
    ledgers: dict[str, LedgerView]
    cli_exit: int
    cli_stdout: str
    cli_stderr: str


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteropRun]:
    """Run both fleets against one peer (see the module docstring) and load what they left."""
    workdir = tmp_path_factory.mktemp("interop")
    fleet_toml = workdir / "fleet20.toml"
    fleet_toml.write_text(FLEET_20, encoding="utf-8")
    peer = PeerCsms(workdir, PEER_ARGS)
    peer.start()
    cli: list[tuple[int, str, str]] = []

    async def run_both() -> RunResult:
        with trio.fail_after(RUN_BOUND_S):
            async with trio.open_nursery() as nursery:

                async def issue_run() -> None:
                    cli.append(await run_cli(ISSUE_TOML, peer.url, workdir / "issue.db",
                                             RUN_BOUND_S))

                nursery.start_soon(issue_run)
                return await run_in_process(fleet_toml, peer.url, workdir / "fleet20.db")

    try:
        result = trio.run(run_both)
    finally:
        peer.terminate()
    (exit_code, stdout, stderr), = cli
    yield InteropRun(
        records=peer.records(),
        fleet_result=result,
        ledgers={"fleet20": LedgerView.load(workdir / "fleet20.db"),
                 "issue": LedgerView.load(workdir / "issue.db")},
        cli_exit=exit_code, cli_stdout=stdout, cli_stderr=stderr,
    )


IDS: Final = {"fleet20": FLEET_IDS, "issue": ISSUE_IDS}
RUNS: Final = pytest.mark.parametrize("run", sorted(IDS))


def of(records: list[Record], chargers: tuple[str, ...], kind: str) -> list[Record]:
    return [r for r in records if r.get("kind") == kind and r.get("charger") in chargers]


# --- the runs as a whole -----------------------------------------------------------------------


def test_the_scenario_file_is_the_issues_file_as_written() -> None:
    assert ISSUE_TOML.read_text(encoding="utf-8") == ISSUE_TEXT


def test_both_runs_completed_and_left_clean_ledgers(interop: InteropRun) -> None:
    assert (interop.fleet_result.status, interop.fleet_result.exit_code) == ("completed", 0)
    assert interop.fleet_result.reasons == ()
    assert interop.cli_exit == 0, interop.cli_stderr
    summary = json.loads(interop.cli_stdout)
    assert (summary["status"], summary["crashes"]) == ("completed", 0)
    for name, ledger in interop.ledgers.items():
        assert (ledger.status, ledger.exit_code, ledger.integrity) == ("completed", 0, "ok"), name
        assert ledger.outbox_rows == 0, f"{name}: undelivered transaction messages"
        assert ledger.kinds("crash") == [], name


def test_the_peer_saw_no_validation_error_and_no_bad_handshake(interop: InteropRun) -> None:
    trouble = [r for r in interop.records if r["kind"] in TROUBLE_KINDS]
    assert trouble == []
    assert [r for r in interop.records if r["kind"] == "rejected"] == []
    frames = [r for r in interop.records if r["kind"] == "message"]
    assert len(frames) > 1000  # 30 chargers for 16-20 s with short intervals


@RUNS
def test_every_boot_is_accepted_once_per_charger(interop: InteropRun, run: str) -> None:
    ids, ledger = IDS[run], interop.ledgers[run]
    boots = [(charger, data["status"], data["interval"])
             for _, _, charger, _, data in ledger.kinds("boot")]
    assert sorted(boots) == [(charger, "Accepted", 3) for charger in ids]
    peer_boots = of(interop.records, ids, "message")
    assert sorted(r["charger"] for r in peer_boots if r["action"] == "BootNotification") == \
        list(ids)
    assert sorted(r["charger"] for r in of(interop.records, ids, "connected")) == list(ids)
    assert len(ledger.kinds("connected")) == len(ids)  # no reconnects


@RUNS
def test_transactions_start_and_stop_with_the_peers_ids(interop: InteropRun, run: str) -> None:
    ids, ledger = IDS[run], interop.ledgers[run]
    assert len(ledger.transactions) >= len(ids)
    for tx in ledger.transactions:
        assert tx.transaction_id is not None and tx.ack_status == "Accepted", tx
        assert tx.meter_stop is not None and tx.stop_reason is not None, tx
    started = {
        (r["charger"], r["transaction_id"]): (r["connector_id"], r["id_tag"], r["meter_start"])
        for r in of(interop.records, ids, "transaction_started")
    }
    assert started == {
        (tx.charger, tx.transaction_id): (tx.connector, tx.id_tag, tx.meter_start)
        for tx in ledger.transactions
    }
    stopped = sorted((r["charger"], r["transaction_id"], r["meter_stop"])
                     for r in of(interop.records, ids, "transaction_stopped"))
    assert stopped == sorted((tx.charger, tx.transaction_id, tx.meter_stop)
                             for tx in ledger.transactions)
    acked = {(c, d["local_id"]): d["transaction_id"] for _, _, c, _, d in ledger.kinds("tx_acked")}
    for _, _, charger, _, data in ledger.kinds("tx_stopped"):
        assert data["transaction_id"] == acked[(charger, data["local_id"])]


@RUNS
def test_meter_values_name_the_peers_transactions(interop: InteropRun, run: str) -> None:
    ids, ledger = IDS[run], interop.ledgers[run]
    known = {(tx.charger, tx.transaction_id) for tx in ledger.transactions}
    samples = [r for r in of(interop.records, ids, "message")
               if r["action"] == "MeterValues" and r["message_type"] == 2
               and "transactionId" in r["payload"]]
    assert len(samples) >= len(ids)
    assert {(r["charger"], r["payload"]["transactionId"]) for r in samples} <= known
    sent = [f.payload for f in ledger.calls_out(("MeterValues",))]
    received = [r["payload"] for r in of(interop.records, ids, "message")
                if r["action"] == "MeterValues" and r["message_type"] == 2]
    assert sorted(map(json.dumps, sent)) == sorted(map(json.dumps, received))


# --- the peer's CS-initiated Core calls ---------------------------------------------------------


def script_results(interop: InteropRun, charger: str) -> list[Record]:
    results = of(interop.records, (charger,), "command_result")
    assert [r["action"] for r in results] == list(SCRIPT), results
    assert [r["error"] for r in results] == [None] * len(SCRIPT), results
    assert of(interop.records, (charger,), "commands_done")
    return results


def statuses(results: list[Record]) -> list[str | None]:
    return [r["response"].get("status") for r in results]


def test_the_script_ran_for_every_charger_and_only_for_the_fleet(interop: InteropRun) -> None:
    done = [r["charger"] for r in interop.records if r["kind"] == "commands_done"]
    assert sorted(done) == list(FLEET_IDS)
    assert of(interop.records, ISSUE_IDS, "command_result") == []


@pytest.mark.parametrize("charger", FLEET_IDS)
def test_configuration_calls_are_answered_per_the_spec(interop: InteropRun, charger: str) -> None:
    results = script_results(interop, charger)
    everything = {k["key"]: k for k in results[0]["response"]["configurationKey"]}
    assert len(everything) == len(results[0]["response"]["configurationKey"])
    assert everything["HeartbeatInterval"]["value"] == "3"
    assert everything["MeterValueSampleInterval"]["value"] == "2"
    assert everything["NumberOfConnectors"] == {
        "key": "NumberOfConnectors", "readonly": True, "value": "2"}
    assert "Core" in everything["SupportedFeatureProfiles"]["value"].split(",")
    named = results[1]["response"]
    assert {k["key"]: k["value"] for k in named["configurationKey"]} == {
        "HeartbeatInterval": "3", "MeterValueSampleInterval": "2"}
    assert named["unknownKey"] == ["NoSuch"]
    assert statuses(results[2:3]) == ["Accepted"]
    assert results[3]["response"]["configurationKey"] == [
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "3"}]
    assert statuses(results[4:6]) == ["Rejected", "NotSupported"]  # read-only; unknown key


def received_after(records: list[Record], charger: str, unique_id: str) -> list[Record]:
    """The CALLs ``charger`` sent after answering our CALL ``unique_id``, in order."""
    answered = next(i for i, r in enumerate(records)
                    if r["kind"] == "message" and r.get("unique_id") == unique_id)
    return [r for r in records[answered + 1:] if r["kind"] == "message"
            and r.get("charger") == charger and r.get("message_type") == 2]


@pytest.mark.parametrize("charger", FLEET_IDS)
def test_trigger_message_is_accepted_and_the_message_follows(
    interop: InteropRun, charger: str,
) -> None:
    results = script_results(interop, charger)[6:9]
    assert statuses(results) == ["Accepted"] * 3
    status, heartbeat, meter = (received_after(interop.records, charger, r["unique_id"])
                                for r in results)
    assert any(r["action"] == "StatusNotification" and r["payload"]["connectorId"] == 1
               for r in status)
    assert any(r["action"] == "Heartbeat" for r in heartbeat)
    triggered = [r["payload"] for r in meter
                 if r["action"] == "MeterValues" and r["payload"]["connectorId"] == 1
                 and all(v.get("context") == "Trigger"
                         for mv in r["payload"]["meterValue"] for v in mv["sampledValue"])]
    assert triggered, meter


@pytest.mark.parametrize("charger", FLEET_IDS)
def test_remote_start_and_stop_run_a_transaction_with_the_peers_id(
    interop: InteropRun, charger: str,
) -> None:
    start, stop = script_results(interop, charger)[9:11]
    connector = start["request"]["connector_id"]
    assert start["request"]["id_tag"] == REMOTE_TAG
    assert statuses([start, stop]) == ["Accepted", "Accepted"]
    transaction_id = stop["request"]["transaction_id"]
    peer_start, = [r for r in of(interop.records, (charger,), "transaction_started")
                   if r["transaction_id"] == transaction_id]
    assert (peer_start["connector_id"], peer_start["id_tag"]) == (connector, REMOTE_TAG)
    stops = [r for r in received_after(interop.records, charger, stop["unique_id"])
             if r["action"] == "StopTransaction"]
    assert stops and stops[0]["payload"]["transactionId"] == transaction_id
    assert stops[0]["payload"]["reason"] == "Remote"
    tx, = [t for t in interop.ledgers["fleet20"].transactions
           if (t.charger, t.transaction_id) == (charger, transaction_id)]
    assert (tx.connector, tx.id_tag, tx.stop_reason) == (connector, REMOTE_TAG, "Remote")


def busy_when_received(ledger: LedgerView, charger: str, connector: int, unique_id: str) -> bool:
    """Whether ``connector`` had a transaction when the simulator received CALL ``unique_id``."""
    received = next(f.seq for f in ledger.frames if f.direction == "in"
                    and f.charger == charger and f.unique_id == unique_id)
    running: set[int] = set()
    for seq, _, c, k, kind, data in ledger.events:
        if seq >= received:
            break
        if c == charger and k == connector and kind == "tx_started":
            running.add(data["local_id"])
        elif c == charger and kind == "tx_stopped":
            running.discard(data["local_id"])
    return bool(running)


@pytest.mark.parametrize("charger", FLEET_IDS)
def test_availability_unlock_and_data_transfer_are_answered_per_the_spec(
    interop: InteropRun, charger: str,
) -> None:
    inoperative, operative, unlock, data_transfer = script_results(interop, charger)[11:15]
    busy = busy_when_received(interop.ledgers["fleet20"], charger,
                              inoperative["request"]["connector_id"], inoperative["unique_id"])
    assert statuses([inoperative]) == ["Scheduled" if busy else "Accepted"]
    assert statuses([operative, unlock]) == ["Accepted", "Unlocked"]
    assert statuses([data_transfer]) == ["UnknownVendorId"]  # the simulator knows no vendors


def test_the_ledger_holds_every_command_and_the_answer_the_peer_got(interop: InteropRun) -> None:
    ledger = interop.ledgers["fleet20"]
    frames = {(f.charger, f.direction, f.unique_id): f for f in ledger.frames}
    results = [r for r in interop.records if r["kind"] == "command_result"]
    assert len(results) == len(FLEET_IDS) * len(SCRIPT)
    for result in results:
        key = (result["charger"], result["unique_id"])
        call, answer = frames[(key[0], "in", key[1])], frames[(key[0], "out", key[1])]
        assert (call.message_type, call.action) == (2, result["action"])
        assert (answer.message_type, answer.payload) == (3, result["response"])
