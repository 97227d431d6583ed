"""Every feature profile against a central system nobody here wrote: ``peer_profiles.py`` (the
PyPI ``ocpp`` package, schema validation on, in its own process) sends every
central-system-to-charge-point action of OCPP 1.6 and its security extension, with valid
arguments, to two chargers with every profile and one whose group lists only Core and
RemoteTrigger (see the peer's module docstring for the order and why).

Each action must get a schema-valid CALLRESULT (the package validates every answer it gets:
a failure is a ``validation_error`` record), never a CALLERROR (but NotSupported from the
charger without the profile), and its effect must show in the simulator's ledger: a
reservation makes the connector Reserved; a TxDefaultProfile caps the power the MeterValues of
the next transaction report; uploads and firmware updates send their status notifications in
order; a firmware update ends in a reboot whose BootNotification names the new firmware
version; the certificate round trip (CSR, CertificateSigned) installs the certificate the peer
issued, and certificate hash data are the ones the peer computes; an AuthorizationKey and a
raised SecurityProfile are the credentials of every later connection, and the key is in no
ledger file; no answer is lost to the reboot or reconnect it causes.

One run (real time, ~30 s) is shared by every test of the module; it ends once the peer's
script is done for every charger. Until every profile's branch is merged, most of these fail
with the charger's NotSupported: that is what they are for.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio

import simulator.config
from simulator.runtime import open_simulation
from tests.oracle import ORACLE

from . import peer_profiles as script
from .conftest import PeerCsms, Record
from .fleet_runs import TROUBLE_KINDS, Frame, LedgerView

PEER_SCRIPT: Final = Path(__file__).with_name("peer_profiles.py")
CHARGERS: Final = ("PR-1", "PR-2")
"""The chargers with every profile."""
CORE_ONLY: Final = "PR-C1"
"""A charger whose group lists only Core and RemoteTrigger: the others answer NotSupported."""
CORE_PROFILES: Final = ("Core", "RemoteTrigger")
LIMIT_W: Final = 1380.0
"""The TxDefaultProfile's limit (W) the peer sets."""
NOISE: Final = 0.01
"""The meter's measurement noise on power (±1 %, ``simulator.machines.meter``)."""
CPO_NAME: Final = "Peer CPO"
FIRMWARE_BEFORE: Final = "1.0.0"
SCRIPT_BOUND_S: Final = 75.0
"""Longest wait for the peer's script to be done for every charger (real seconds)."""
RUN_BOUND_S: Final = 100.0
PEER_ARGS: Final = ("--commands", "--commands-for", "PR-", "--limit-w", str(LIMIT_W),
                    "--start-wait", "10")

FLEET: Final = f"""\
[run]
name = "profiles-peer"
seed = 17
duration = "{RUN_BOUND_S:g}s"
ledger = "profiles.db"

[csms]
url = "ws://127.0.0.1:9/ocpp"  # replaced by the peer's URL

[[group]]
name = "pr"
count = {len(CHARGERS)}
id = "PR-{{n}}"
vendor = "Acme"
model = "AC22"
firmware_version = "{FIRMWARE_BEFORE}"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.firmware]
download = "1s"
install = "1s"
upload = "1s"

[group.config]
HeartbeatInterval = 30
MeterValueSampleInterval = 1
MeterValuesSampledData = "Energy.Active.Import.Register,Power.Active.Import"
CpoName = "{CPO_NAME}"

[[step]]                      # the EV of the profiled transaction (the remote start waits)
at = "1s"
do = "plug"
target = {{ group = "pr", connector = {script.CHARGING_CONNECTOR} }}

[[group]]
name = "core"
count = 1
id = "{CORE_ONLY}"
vendor = "Acme"
model = "AC11"
firmware_version = "{FIRMWARE_BEFORE}"
connectors = 2
connect_rate = 50
profiles = {list(CORE_PROFILES)!r}

[group.config]
HeartbeatInterval = 30

[[step]]
at = "1s"
do = "plug"
target = {{ group = "core", connector = {script.CHARGING_CONNECTOR} }}
"""


@dataclasses.dataclass(frozen=True)
class ProfilesRun:
    records: list[Record]
    ledger: LedgerView
    ledger_path: Path


async def run_until_done(toml: Path, peer: PeerCsms, ledger: Path) -> None:
    """Run the fleet against ``peer`` until its script is done for every charger (or
    :data:`SCRIPT_BOUND_S` ran out), then end the run gracefully."""
    fleet = simulator.config.load_fleet(
        toml, env={}, overrides={"csms.url": peer.url, "run.ledger": str(ledger)})
    with trio.fail_after(RUN_BOUND_S):
        async with open_simulation(fleet, grace=5, gc_tuning=False) as sim:
            with trio.move_on_after(SCRIPT_BOUND_S):
                while True:  # the peer is another process: poll its record
                    done = {r["charger"] for r in peer.records_of("commands_done")}
                    if done >= {*CHARGERS, CORE_ONLY}:
                        break
                    await trio.sleep(0.2)
            sim.stop()
            await sim.wait_finished()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfilesRun]:
    workdir = tmp_path_factory.mktemp("profiles")
    toml = workdir / "profiles.toml"
    toml.write_text(FLEET, encoding="utf-8")
    peer = PeerCsms(workdir, PEER_ARGS, script=PEER_SCRIPT)
    peer.start()
    try:
        trio.run(run_until_done, toml, peer, workdir / "profiles.db")
    finally:
        peer.terminate()
    ledger = workdir / "profiles.db"
    yield ProfilesRun(peer.records(), LedgerView.load(ledger), ledger)


# --- reading the run ---------------------------------------------------------------------------


def results(run: ProfilesRun, charger: str, action: str | None = None) -> list[Record]:
    """The peer's ``command_result`` records for ``charger`` (of ``action``), in order."""
    return [r for r in run.records if r["kind"] == "command_result" and r["charger"] == charger
            and (action is None or r["action"] == action)]


def answer(run: ProfilesRun, charger: str, action: str, index: int = 0) -> dict[str, Any]:
    """The CALLRESULT payload of ``charger``'s ``index``-th ``action`` command."""
    done = results(run, charger, action)
    assert len(done) > index, (action, done)
    assert done[index]["error"] is None, done[index]
    response = done[index]["response"]
    assert isinstance(response, dict)
    return response


def status(run: ProfilesRun, charger: str, action: str, index: int = 0) -> str | None:
    value = answer(run, charger, action, index).get("status")
    return value if isinstance(value, str) else None


def received(run: ProfilesRun, charger: str, action: str, index: int = 0) -> Frame:
    """The ledger's frame_in CALL of ``charger``'s ``index``-th ``action`` command."""
    unique_id = results(run, charger, action)[index]["unique_id"]
    frame, = [f for f in run.ledger.frames if f.charger == charger and f.direction == "in"
              and f.unique_id == unique_id and f.message_type == 2]
    return frame


def sent(run: ProfilesRun, charger: str, action: str, after: int = 0,
         before: float = float("inf")) -> list[dict[str, Any]]:
    """The payloads of the CALLs ``action`` ``charger`` sent between ledger seqs ``after`` and
    ``before``, in order."""
    return [f.payload for f in run.ledger.frames
            if f.charger == charger and f.direction == "out" and f.message_type == 2
            and f.action == action and after < f.seq < before]


def in_order(seen: list[Any], wanted: tuple[Any, ...]) -> bool:
    """Whether ``wanted`` occurs in ``seen`` in this order (other items between allowed)."""
    rest = iter(seen)
    return all(any(item == want for item in rest) for want in wanted)


PER_CHARGER: Final = pytest.mark.parametrize("charger", CHARGERS)


# --- the run and the peer ----------------------------------------------------------------------


def test_the_run_completed_and_the_peer_saw_nothing_invalid(run: ProfilesRun) -> None:
    ledger = run.ledger
    assert (ledger.status, ledger.exit_code, ledger.integrity) == ("completed", 0, "ok")
    assert ledger.kinds("crash") == []
    assert [r for r in run.records if r["kind"] in TROUBLE_KINDS] == []
    assert [r for r in run.records if r["kind"] == "rejected"] == []


def test_every_frame_the_chargers_sent_is_valid_by_the_official_schemas(run: ProfilesRun) -> None:
    """The strict oracle (``tests/oracle.py``: date-times, multipleOf in decimal) on every
    frame out, each CALLRESULT against the response schema of the CALL it answers."""
    pending = {(f.charger, f.unique_id): f.action for f in run.ledger.frames
               if f.direction == "in" and f.message_type == 2}
    problems = []
    for frame in run.ledger.frames:
        if frame.direction == "out":
            answers = pending.get((frame.charger, frame.unique_id))
            problems += [(frame.charger, frame.action, problem) for problem in
                         ORACLE.check_frame_out(json.dumps(frame.message),
                                                {frame.unique_id: answers} if answers else {})]
    assert problems == []
    assert len([f for f in run.ledger.frames if f.direction == "out"]) > 300


def test_every_answer_is_written_before_a_reboot_or_a_reconnect(run: ProfilesRun) -> None:
    """A Reset, a raised SecurityProfile and a firmware update close the connection once
    answered: the answer (handed to the connection first) must still go out."""
    unsent = [(charger, data) for _, _, charger, _, data in run.ledger.kinds("frame_unsent")]
    assert unsent == []


@PER_CHARGER
def test_every_cs_action_gets_a_schema_valid_callresult(run: ProfilesRun, charger: str) -> None:
    done = results(run, charger)
    assert [r for r in done if r["error"] is not None] == []
    assert {r["action"] for r in done} == set(script.CS_TO_CP)
    assert len(script.CS_TO_CP) == 26  # 28 + 11 actions, 13 of them sent by the charge point
    assert [r["charger"] for r in run.records if r["kind"] == "commands_done"
            and r["charger"] == charger] == [charger]
    assert [r for r in run.records if r["kind"] == "script_wait_timeout"
            and r["charger"] == charger] == []


@PER_CHARGER
def test_the_ledger_holds_every_command_and_its_answer(run: ProfilesRun, charger: str) -> None:
    frames = {(f.direction, f.unique_id): f for f in run.ledger.frames if f.charger == charger}
    done = [r for r in results(run, charger) if r.get("unique_id") is not None]
    assert len(done) > len(script.CS_TO_CP)
    for result in done:
        call, reply = frames[("in", result["unique_id"])], frames[("out", result["unique_id"])]
        assert (call.message_type, call.action) == (2, result["action"])
        if result["error"] is None:
            assert (reply.message_type, reply.payload) == (3, result["response"])
        else:  # what the peer got is what the charger sent
            assert (reply.message_type, reply.message[2]) == (4, result["error"]["code"])


def test_a_charger_without_a_profile_answers_its_actions_not_supported(run: ProfilesRun) -> None:
    """A group's ``profiles`` leave the others out: their actions are answered with a
    CALLERROR NotSupported, every action of the listed ones with a CALLRESULT."""
    done = results(run, CORE_ONLY)
    keys = {k["key"]: k.get("value") for k in
            answer(run, CORE_ONLY, "GetConfiguration")["configurationKey"]}
    assert keys["SupportedFeatureProfiles"].split(",") == list(CORE_PROFILES)
    profile_of = script_profiles()
    kept = {a for a in script.CS_TO_CP if profile_of[a] in CORE_PROFILES}
    assert {r["action"] for r in done if r["error"] is None} == kept
    refused = {r["action"]: r["error"]["code"] for r in done if r["error"] is not None}
    assert refused == {a: "NotSupported" for a in script.CS_TO_CP if a not in kept}


def test_the_peer_sends_every_cs_to_cp_action_of_the_protocol() -> None:
    """The peer's list (written from the spec) and the simulator's registry agree."""
    from simulator.ocpp.plugin import Direction
    from simulator.ocpp.v16 import ACTIONS

    assert sorted(script.CS_TO_CP) == sorted(
        action for action, spec in ACTIONS.items()
        if spec.direction in (Direction.CS_TO_CP, Direction.BOTH))


def script_profiles() -> dict[str, str]:
    """Each CS→CP action's feature profile, as the protocol registry gives it."""
    from simulator.ocpp.v16 import ACTIONS

    return {action: str(ACTIONS[action].profile) for action in script.CS_TO_CP}


# --- Core and RemoteTrigger --------------------------------------------------------------------


@PER_CHARGER
def test_every_feature_profile_is_supported(run: ProfilesRun, charger: str) -> None:
    keys = {k["key"]: k.get("value") for k in
            answer(run, charger, "GetConfiguration")["configurationKey"]}
    assert set(keys["SupportedFeatureProfiles"].split(",")) >= {
        "Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
        "SmartCharging", "RemoteTrigger"}
    assert status(run, charger, "ClearCache") == "Accepted"
    assert status(run, charger, "Reset") == "Accepted"


@PER_CHARGER
def test_an_authorization_key_and_a_raised_security_profile_take_effect(
    run: ProfilesRun, charger: str,
) -> None:
    """ChangeConfiguration 1 and 2 (after LocalAuthListEnabled) set the AuthorizationKey and
    raise SecurityProfile to 1: every later connection presents HTTP Basic as the charger,
    through the reboots too, and the key is never read back."""
    assert [status(run, charger, "ChangeConfiguration", i) for i in (1, 2)] == ["Accepted"] * 2
    assert script.AUTHORIZATION_KEY not in json.dumps(answer(run, charger, "GetConfiguration", 1))
    users = [r["basic_user"] for r in run.records
             if r["kind"] == "connected" and r["charger"] == charger]
    assert users[0] is None and len(users) >= 2, users
    assert set(users[1:]) == {charger}, users


def test_the_authorization_key_is_in_no_ledger_file(run: ProfilesRun) -> None:
    files = sorted(run.ledger_path.parent.glob(run.ledger_path.name + "*"))
    assert run.ledger_path in files
    for path in files:
        assert script.AUTHORIZATION_KEY.encode() not in path.read_bytes(), path


@PER_CHARGER
def test_every_trigger_is_accepted(run: ProfilesRun, charger: str) -> None:
    for action, count in (("TriggerMessage", len(script.TRIGGERED) + 1),
                          ("ExtendedTriggerMessage", len(script.EXTENDED_TRIGGERED) + 1)):
        assert len(results(run, charger, action)) == count, action
        assert [status(run, charger, action, i) for i in range(count)] == ["Accepted"] * count


# --- LocalAuthListManagement and Reservation ---------------------------------------------------


@PER_CHARGER
def test_the_local_list_takes_a_full_then_a_differential_update(
    run: ProfilesRun, charger: str,
) -> None:
    assert [status(run, charger, "SendLocalList", i) for i in (0, 1)] == ["Accepted"] * 2
    assert answer(run, charger, "GetLocalListVersion") == {"listVersion": 2}


@PER_CHARGER
def test_a_reservation_makes_the_connector_reserved_until_cancelled(
    run: ProfilesRun, charger: str,
) -> None:
    assert status(run, charger, "ReserveNow") == "Accepted"
    assert status(run, charger, "CancelReservation") == "Accepted"
    reserved, cancelled = received(run, charger, "ReserveNow"), received(
        run, charger, "CancelReservation")
    connector = script.RESERVED_CONNECTOR
    while_reserved = [p["status"] for p in sent(run, charger, "StatusNotification",
                                                reserved.seq, cancelled.seq)
                      if p["connectorId"] == connector]
    assert while_reserved[:1] == ["Reserved"]
    after = [p["status"] for p in sent(run, charger, "StatusNotification", cancelled.seq)
             if p["connectorId"] == connector]
    assert after[:1] == ["Available"]


# --- SmartCharging -----------------------------------------------------------------------------


def power_samples(meter_values: list[dict[str, Any]]) -> list[float]:
    """Every Power.Active.Import value (W) of these MeterValues payloads."""
    return [float(sample["value"]) for payload in meter_values
            for meter_value in payload["meterValue"] for sample in meter_value["sampledValue"]
            if sample.get("measurand") == "Power.Active.Import"]


@PER_CHARGER
def test_a_charging_profile_caps_the_power_the_meter_values_show(
    run: ProfilesRun, charger: str,
) -> None:
    assert status(run, charger, "SetChargingProfile") == "Accepted"
    for index in (0, 1):  # before and during the transaction
        composite = answer(run, charger, "GetCompositeSchedule", index)
        assert composite["status"] == "Accepted", composite
        schedule = composite["chargingSchedule"]
        assert schedule["chargingRateUnit"] == "W"
        assert [p["limit"] for p in schedule["chargingSchedulePeriod"]][:1] == [LIMIT_W]
    stop = results(run, charger, "RemoteStopTransaction")
    assert [status(run, charger, "RemoteStopTransaction")] == ["Accepted"]
    transaction_id = stop[0]["request"]["transaction_id"]
    meter_values = [p for p in sent(run, charger, "MeterValues")
                    if p.get("transactionId") == transaction_id]
    power = power_samples(meter_values)
    assert len(power) >= script.METER_SAMPLES, meter_values
    assert max(power) <= LIMIT_W * (1 + NOISE) + 0.05, power  # (values have one decimal)
    assert max(power) > 0, power  # it did charge
    assert status(run, charger, "ClearChargingProfile") == "Accepted"


# --- Security: certificates --------------------------------------------------------------------


@PER_CHARGER
def test_the_certificate_round_trip_installs_the_signed_chain(
    run: ProfilesRun, charger: str,
) -> None:
    assert [status(run, charger, "InstallCertificate", i) for i in range(3)] == ["Accepted"] * 3
    hashes, = [r for r in run.records if r["kind"] == "certificate_hash_data"
               and r["charger"] == charger]
    assert hashes["matched"], hashes  # the charger's hash data are the peer's own computation
    assert status(run, charger, "DeleteCertificate") == "Accepted"
    same = script.peer_crypto.same_hash_data
    left = answer(run, charger, "GetInstalledCertificateIds", 1).get("certificateHashData", [])
    assert not any(same(entry, hashes["ours"]) for entry in left), left
    assert any(same(entry, hashes["central"]) for entry in left), left  # the chain's root
    csr, = [r for r in run.records if r["kind"] == "csr_received" and r["charger"] == charger]
    assert (csr["organization"], csr["signature_valid"]) == (CPO_NAME, True)
    assert status(run, charger, "CertificateSigned") == "Accepted"
    issued, = [r for r in run.records if r["kind"] == "certificate_issued"
               and r["charger"] == charger]
    installed = [data["data"]["certificate"] for _, _, c, _, data in run.ledger.kinds("note")
                 if c == charger and data["what"] == "client_certificate_installed"]
    assert [c["serial"] for c in installed] == [issued["serial"]], installed
    manufacturer = answer(run, charger, "GetInstalledCertificateIds", 2)
    assert manufacturer["status"] == "Accepted"
    assert any(same(entry, hashes["manufacturer"])
               for entry in manufacturer["certificateHashData"]), manufacturer
    events = [p["type"] for p in sent(run, charger, "SecurityEventNotification")]
    assert "InvalidChargePointCertificate" not in events


# --- FirmwareManagement and the security extension's jobs --------------------------------------


def job_statuses(run: ProfilesRun, charger: str, command: str, notification: str) -> list[str]:
    """The statuses of ``notification`` that ``charger`` sent after ``command`` (Idle, the
    answer to a trigger, left out)."""
    after = received(run, charger, command).seq
    return [p["status"] for p in sent(run, charger, notification, after)
            if p["status"] != "Idle"]


@PER_CHARGER
def test_diagnostics_and_log_uploads_report_their_progress(
    run: ProfilesRun, charger: str,
) -> None:
    assert in_order(job_statuses(run, charger, "GetDiagnostics", "DiagnosticsStatusNotification"),
                    ("Uploading", "Uploaded"))
    assert status(run, charger, "GetLog") == "Accepted"
    after = received(run, charger, "GetLog").seq
    logs = [(p["status"], p.get("requestId")) for p in sent(run, charger,
                                                             "LogStatusNotification", after)
            if p["status"] != "Idle"]
    assert in_order(logs, (("Uploading", script.LOG_REQUEST_ID),
                           ("Uploaded", script.LOG_REQUEST_ID)))


def boots_after(run: ProfilesRun, charger: str, command: str) -> list[dict[str, Any]]:
    return sent(run, charger, "BootNotification", received(run, charger, command).seq)


@PER_CHARGER
def test_a_signed_firmware_update_is_verified_installed_and_rebooted_into(
    run: ProfilesRun, charger: str,
) -> None:
    assert status(run, charger, "SignedUpdateFirmware") == "Accepted"
    statuses = job_statuses(run, charger, "SignedUpdateFirmware",
                            "SignedFirmwareStatusNotification")
    assert in_order(statuses, ("Downloading", "Downloaded", "SignatureVerified", "Installing",
                               "Installed")), statuses
    assert "InvalidSignature" not in statuses
    rebooted = boots_after(run, charger, "SignedUpdateFirmware")
    assert rebooted and rebooted[0].get("firmwareVersion") not in (None, FIRMWARE_BEFORE)
    events = [p["type"] for p in sent(run, charger, "SecurityEventNotification")]
    assert "InvalidFirmwareSignature" not in events
    assert "InvalidFirmwareSigningCertificate" not in events


@PER_CHARGER
def test_a_reset_reboots_the_charger(run: ProfilesRun, charger: str) -> None:
    assert status(run, charger, "Reset") == "Accepted"
    assert boots_after(run, charger, "Reset")


@PER_CHARGER
def test_a_firmware_update_ends_in_a_reboot_with_the_new_version(
    run: ProfilesRun, charger: str,
) -> None:
    assert answer(run, charger, "UpdateFirmware") == {}
    statuses = job_statuses(run, charger, "UpdateFirmware", "FirmwareStatusNotification")
    assert in_order(statuses, ("Downloading", "Downloaded", "Installing", "Installed")), statuses
    before = sent(run, charger, "BootNotification", 0, received(run, charger, "UpdateFirmware").seq)
    after = boots_after(run, charger, "UpdateFirmware")
    assert before and after
    assert before[-1].get("firmwareVersion") != after[0].get("firmwareVersion"), (before, after)
    assert after[0].get("firmwareVersion")

