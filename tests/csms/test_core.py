"""The reference CSMS's sans-IO core: answers, tag rules, transactions, anomalies, CALLERRORs.

Synchronous and table-driven: frames go in as JSON text with an explicit ``now``; answers are
checked against the official 1.6 schemas (``tests.oracle``) and against the expected business
outcome.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from simulator.csms.core import CONNECTION_LOST, TIMEOUT, CallRefused, CentralSystem
from simulator.csms.options import BootStatus, CsmsOptions
from simulator.csms.records import AnomalyKind, Reply
from simulator.csms.rules import (
    admission_status,
    energy_reading,
    parse_basic_auth,
    tag_status,
    timestamp_anomalies,
)
from simulator.events import CsmsFrameIn, CsmsNote
from simulator.ocpp.v16 import (
    ACTIONS,
    AvailabilityType,
    BootNotificationRequest,
    ChangeAvailabilityRequest,
    Direction,
    Measurand,
    Phase,
    ResetRequest,
    ResetResponse,
    ResetStatus,
    ResetType,
    SampledValue,
    UnitOfMeasure,
)
from simulator.seeds import counter_ids
from tests.oracle import ORACLE

EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
"""Wall time at now == 0."""
TS = "2026-01-01T00:00:00Z"
CP = "CP-1"


def make(**options: Any) -> CentralSystem:
    return CentralSystem(CsmsOptions(**options), wall_epoch=EPOCH, new_id=counter_ids("cs"))


class Wire:
    """A tiny charge point talking to a core: numbered CALLs, parsed answers."""

    def __init__(self, csms: CentralSystem, identity: str = CP) -> None:
        self.csms = csms
        self.identity = identity
        self.session = csms.connect(identity, 0.0).session
        self.n = 0
        self.reply: Reply | None = None

    def send(self, frame: Any, now: float = 1.0) -> list[Any]:
        """Send a frame (JSON-serialisable, or raw text); the answers, parsed."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self.reply = self.csms.receive(self.identity, text, now)
        return [json.loads(out.data) for out in self.reply.frames]

    def call(self, action: str, payload: dict[str, Any], now: float = 1.0) -> list[Any]:
        """Send a CALL and return the single answer frame."""
        self.n += 1
        answers = self.send([2, f"c{self.n}", action, payload], now)
        assert len(answers) == 1
        assert answers[0][1] == f"c{self.n}"
        return list(answers[0])

    def result(self, action: str, payload: dict[str, Any], now: float = 1.0) -> dict[str, Any]:
        """Send a CALL that must get a schema-valid CALLRESULT; its payload."""
        answer = self.call(action, payload, now)
        assert answer[0] == 3, answer
        assert ORACLE.errors(action, "response", answer[2]) == []
        out: dict[str, Any] = answer[2]
        return out

    def boot(self) -> dict[str, Any]:
        return self.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})

    def start(self, tag: str = "T1", connector: int = 1, meter: int = 0, ts: str = TS) -> int:
        answer = self.result(
            "StartTransaction",
            {"connectorId": connector, "idTag": tag, "meterStart": meter, "timestamp": ts},
        )
        transaction_id: int = answer["transactionId"]
        return transaction_id

    def anomalies(self) -> list[str]:
        state = self.csms.charger_state(self.identity)
        assert state is not None
        return [str(a.kind) for a in state.anomalies]


def sample(value: str, **extra: str) -> dict[str, Any]:
    return {"timestamp": TS, "sampledValue": [{"value": value, **extra}]}


# --- every CP → CS action gets a schema-valid answer -------------------------------------------

CP_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("Authorize", {"idTag": "T1"}),
    ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M",
                          "firmwareVersion": "1.0"}),
    ("DataTransfer", {"vendorId": "Acme", "messageId": "x", "data": "hello"}),
    ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
    ("FirmwareStatusNotification", {"status": "Installed"}),
    ("Heartbeat", {}),
    ("MeterValues", {"connectorId": 1, "meterValue": [sample("10")]}),
    ("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": TS}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available",
                            "timestamp": TS}),
    ("StopTransaction", {"transactionId": 1, "meterStop": 10, "timestamp": TS, "idTag": "T1",
                         "reason": "Local"}),
    ("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": TS}),
    ("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 1}),
    ("SignedFirmwareStatusNotification", {"status": "SignatureVerified", "requestId": 2}),
]


def test_the_table_covers_every_cp_to_cs_action() -> None:
    expected = {name for name, spec in ACTIONS.items() if spec.direction.charge_point_sends}
    assert {action for action, _ in CP_CALLS} == expected


@pytest.mark.parametrize(("action", "payload"), CP_CALLS, ids=[a for a, _ in CP_CALLS])
def test_every_cp_action_is_answered_with_a_valid_result(
    action: str, payload: dict[str, Any]
) -> None:
    assert ORACLE.errors(action, "request", payload) == []
    wire = Wire(make())
    wire.boot()
    if action in ("StopTransaction", "MeterValues"):
        wire.start("T9")
    answer = wire.call(action, payload)
    assert answer[0] == 3, answer
    assert ORACLE.errors(action, "response", answer[2]) == []
    assert wire.reply is not None
    assert ORACLE.check_frame_out(wire.reply.frames[0].data, {answer[1]: action}) == []
    event = wire.reply.events[0]
    assert isinstance(event, CsmsFrameIn)
    assert (event.charger, event.action, event.violations) == (CP, action, [])


def test_the_answers_carry_what_the_rules_say() -> None:
    wire = Wire(make(data_transfer_vendors=("Acme",), sign_certificate_accepted=False))
    assert wire.boot()["status"] == "Accepted"
    assert wire.result("DataTransfer", {"vendorId": "Acme"})["status"] == "Accepted"
    assert wire.result("DataTransfer", {"vendorId": "Other"})["status"] == "UnknownVendorId"
    assert wire.result("SignCertificate", {"csr": "x"})["status"] == "Rejected"
    wire.result("StatusNotification", {"connectorId": 2, "errorCode": "GroundFailure",
                                       "status": "Faulted", "info": "oops"})
    wire.result("FirmwareStatusNotification", {"status": "Downloading"})
    wire.result("DiagnosticsStatusNotification", {"status": "Uploading"})
    state = wire.csms.charger_state(CP)
    assert state is not None
    assert state.connectors[2].status == "Faulted"
    assert state.connectors[2].error_code == "GroundFailure"
    assert state.connectors[2].info == "oops"
    assert (state.firmware_status, state.diagnostics_status) == ("Downloading", "Uploading")
    assert (state.vendor, state.model, state.boots) == ("V", "M", 1)


def test_current_time_is_the_injected_wall_clock_in_utc() -> None:
    wire = Wire(make())
    assert wire.result("Heartbeat", {}, now=10.0) == {"currentTime": "2026-01-01T00:00:10Z"}
    assert wire.boot()["currentTime"] == "2026-01-01T00:00:01Z"
    assert wire.result("Heartbeat", {}, now=0.25)["currentTime"] == "2026-01-01T00:00:00.250000Z"


# --- boot -------------------------------------------------------------------------------------

BOOTS: list[tuple[dict[str, Any], list[tuple[str, int]]]] = [
    ({}, [("Accepted", 60), ("Accepted", 60)]),
    ({"heartbeat_interval": 300}, [("Accepted", 300)]),
    ({"boot_status": BootStatus.PENDING, "boot_retry_interval": 7}, [("Pending", 7)]),
    ({"boot_status": BootStatus.REJECTED, "boot_retry_interval": 0}, [("Rejected", 0)]),
    ({"pending_then_accept_after": 2, "boot_retry_interval": 5},
     [("Pending", 5), ("Pending", 5), ("Accepted", 60), ("Accepted", 60)]),
    ({"pending_then_accept_after": 0, "boot_status": BootStatus.REJECTED}, [("Accepted", 60)]),
]


@pytest.mark.parametrize(("options", "answers"), BOOTS)
def test_boot_answers(options: dict[str, Any], answers: list[tuple[str, int]]) -> None:
    wire = Wire(make(**options))
    got = [(r["status"], r["interval"]) for r in (wire.boot() for _ in answers)]
    assert got == answers
    state = wire.csms.charger_state(CP)
    assert state is not None
    assert state.boot_status == answers[-1][0]
    assert wire.csms.statistics().boots == len(answers)


def test_calls_before_an_accepted_boot_are_anomalies_or_refused() -> None:
    wire = Wire(make(boot_status=BootStatus.PENDING))
    assert wire.result("Heartbeat", {}) is not None
    wire.boot()
    wire.result("Heartbeat", {})
    assert wire.anomalies() == ["call_before_boot", "call_before_boot"]
    strict = Wire(make(refuse_before_boot=True))
    assert strict.call("Heartbeat", {})[2] == "SecurityError"
    strict.boot()
    assert strict.call("Heartbeat", {})[0] == 3


# --- idTags -----------------------------------------------------------------------------------

TAGS: list[tuple[dict[str, Any], str, str]] = [
    ({}, "ANY-TAG", "Accepted"),
    ({}, "BLOCKED-1", "Blocked"),
    ({}, "EXPIRED-7", "Expired"),
    ({"accepted_tags": ("TAG-*",)}, "TAG-1", "Accepted"),
    ({"accepted_tags": ("TAG-*",)}, "OTHER", "Invalid"),
    ({"accepted_tags": ("TAG-*",), "blocked_tags": ("TAG-9",)}, "TAG-9", "Blocked"),
    ({"blocked_tags": (), "expired_tags": ()}, "BLOCKED-1", "Accepted"),
    ({"expired_tags": ("OLD?",)}, "OLD1", "Expired"),
    ({}, "blocked-1", "Accepted"),
]


@pytest.mark.parametrize(("options", "tag", "status"), TAGS)
def test_tag_rules(options: dict[str, Any], tag: str, status: str) -> None:
    assert tag_status(CsmsOptions(**options), tag) == status
    wire = Wire(make(**options))
    wire.boot()
    assert wire.result("Authorize", {"idTag": tag}) == {"idTagInfo": {"status": status}}
    start = wire.result(
        "StartTransaction", {"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": TS}
    )
    assert start["idTagInfo"] == {"status": status}


# --- transactions -----------------------------------------------------------------------------


def test_transaction_ids_count_up_per_charger_and_are_unique_across_chargers() -> None:
    csms = make(first_transaction_id=100)
    a, b = Wire(csms, "A"), Wire(csms, "B")
    a.boot()
    b.boot()
    ids = [a.start("T1", 1), b.start("T2", 1), a.start("T3", 2), b.start("T4", 2)]
    assert len(set(ids)) == 4
    assert all(100 <= i <= 2**31 - 1 for i in ids)
    assert ids[2] == ids[0] + 1 and ids[3] == ids[1] + 1
    assert [t.charger for t in csms.transactions()] == ["A", "B", "A", "B"]
    assert [t.transaction_id for t in csms.transactions("B")] == [ids[1], ids[3]]
    assert csms.statistics().transactions_running == 4


def _ids_of(order: str, identities: tuple[str, ...] = ("A", "B", "C")) -> dict[str, list[int]]:
    """The transaction ids each charger gets when their starts interleave as ``order``
    (one letter per StartTransaction)."""
    csms = make()
    wires = {i: Wire(csms, i) for i in identities}
    for wire in wires.values():
        wire.boot()
    seen: dict[str, list[int]] = {i: [] for i in identities}
    for n, who in enumerate(order):
        seen[who].append(wires[who].start(f"T{n}", 1 + n % 2, meter=n))
    return seen


def test_the_ids_a_charger_sees_do_not_depend_on_the_other_chargers() -> None:
    one = _ids_of("AABBCCABC")
    other = _ids_of("CBACBACBA")
    assert one == other
    alone = _ids_of("AAA", ("A",))
    assert alone["A"] == one["A"]


def test_a_charger_that_fills_its_block_moves_to_another_and_ids_stay_unique() -> None:
    csms = make()
    wire = Wire(csms, "A")
    wire.boot()
    ids = [wire.start(f"T{n}", 1, meter=n) for n in range(1001)]
    assert len(set(ids)) == 1001
    assert ids[999] == ids[0] + 999  # one block of 1000, from its start
    assert (ids[0] - 1) % 1000 == 0
    assert ids[1000] == ids[0] + 1000  # the next block, free here


def test_two_identities_that_share_a_home_block_get_disjoint_ids() -> None:
    # first_transaction_id this high leaves room for three blocks only: collisions are certain
    csms = make(first_transaction_id=2**31 - 3000)
    wires = [Wire(csms, f"CP-{n}") for n in range(3)]
    ids: list[int] = []
    for wire in wires:
        wire.boot()
        ids += [wire.start("T", 1, meter=m) for m in range(3)]
    assert len(set(ids)) == 9
    assert all(2**31 - 3000 <= i <= 2**31 - 1 for i in ids)
    extra = Wire(csms, "CP-9")
    extra.boot()
    answer = extra.call(
        "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}
    )
    assert answer[:3] == [4, "c2", "InternalError"]  # every block taken: exhausted


def test_concurrent_tx_until_the_first_transaction_stops() -> None:
    csms = make()
    a, b = Wire(csms, "A"), Wire(csms, "B")
    a.boot()
    b.boot()
    first = a.start("T1")
    answer = b.result(
        "StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 5, "timestamp": TS}
    )
    assert answer["idTagInfo"] == {"status": "ConcurrentTx"}
    assert answer["transactionId"] != first
    assert b.anomalies() == ["concurrent_tx"]
    a.result("StopTransaction", {"transactionId": first, "meterStop": 10, "timestamp": TS})
    third = b.start("T1", connector=2, ts="2026-01-01T00:01:00Z")
    record = csms.transaction(third)
    assert record is not None
    assert record.status == "Accepted"


def test_a_transaction_from_start_to_stop() -> None:
    csms = make()
    wire = Wire(csms)
    wire.boot()
    tx = wire.start("T1", connector=1, meter=1000)
    wire.result("MeterValues", {"connectorId": 1, "transactionId": tx,
                                "meterValue": [sample("1500"), sample("2.0", unit="kWh")]})
    running = csms.transaction(tx)
    assert running is not None
    assert (running.running, running.last_register, running.energy_wh) == (True, 2000, 1000)
    assert running.meter_value_count == 2
    state = csms.charger_state(CP)
    assert state is not None
    assert state.open_transactions == (tx,)
    stop = {"transactionId": tx, "meterStop": 2500, "timestamp": TS, "idTag": "T1",
            "reason": "EVDisconnected"}
    answer = wire.result("StopTransaction", stop, now=9.0)
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    done = csms.transaction(tx)
    assert done is not None
    assert (done.running, done.meter_stop, done.energy_wh, done.stop_reason, done.stopped_at) == (
        False, 2500, 1500, "EVDisconnected", 9.0
    )
    state = csms.charger_state(CP)
    assert state is not None
    assert state.open_transactions == ()
    assert wire.anomalies() == []
    stats = csms.statistics()
    assert (stats.transactions_started, stats.transactions_stopped) == (1, 1)


def test_a_replayed_start_gets_the_same_transaction_id() -> None:
    csms = make()
    wire = Wire(csms)
    wire.boot()
    first = wire.start("T1", meter=42)
    assert wire.start("T1", meter=42) == first
    assert wire.anomalies() == ["duplicate_start"]
    assert len(csms.transactions()) == 1
    other = wire.start("T2", connector=2, meter=42)
    assert other != first


def test_a_start_on_a_busy_connector_is_an_anomaly() -> None:
    wire = Wire(make())
    wire.boot()
    wire.start("T1", connector=1)
    wire.start("T2", connector=1)
    assert wire.anomalies() == ["connector_busy"]


STOPS: list[tuple[int, list[str]]] = [
    (999, ["unknown_transaction"]),
    (-1, ["invalid_transaction_id"]),
    (0, ["invalid_transaction_id"]),
]


@pytest.mark.parametrize(("transaction_id", "anomalies"), STOPS)
def test_a_stop_is_always_accepted_but_a_bad_id_is_recorded(
    transaction_id: int, anomalies: list[str]
) -> None:
    wire = Wire(make())
    wire.boot()
    answer = wire.result(
        "StopTransaction",
        {"transactionId": transaction_id, "meterStop": 1, "timestamp": TS, "idTag": "BLOCKED-1"},
    )
    assert answer == {"idTagInfo": {"status": "Blocked"}}
    assert wire.result("StopTransaction", {"transactionId": transaction_id, "meterStop": 1,
                                           "timestamp": TS}) == {}
    assert wire.anomalies() == anomalies * 2


def test_meter_value_anomalies() -> None:
    csms = make()
    wire, other = Wire(csms), Wire(csms, "CP-2")
    wire.boot()
    other.boot()
    tx = wire.start("T1", meter=100)
    foreign = other.start("T2")

    def meter(transaction_id: int | None, *values: dict[str, Any], connector: int = 1) -> None:
        payload: dict[str, Any] = {"connectorId": connector, "meterValue": list(values)}
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        wire.result("MeterValues", payload)

    meter(tx, sample("500"))
    meter(tx, sample("400"))                       # register went down
    meter(tx, sample("abc", measurand="Voltage"))  # not a decimal
    meter(tx, sample("900"), connector=2)          # the transaction is on connector 1
    meter(foreign, sample("1"))                    # another charger's transaction
    meter(777, sample("1"))
    meter(None, sample("NaN"))
    wire.result("StopTransaction", {"transactionId": tx, "meterStop": 300, "timestamp": TS})
    meter(tx, sample("1000"))
    wire.result("StopTransaction", {"transactionId": tx, "meterStop": 1000, "timestamp": TS})
    assert wire.anomalies() == [
        "register_decreased", "bad_meter_value", "foreign_transaction", "foreign_transaction",
        "unknown_transaction", "bad_meter_value", "register_decreased",
        "meter_values_after_stop", "duplicate_stop",
    ]
    record = csms.transaction(tx)
    assert record is not None
    assert (record.last_register, record.meter_stop, record.energy_wh) == (400, 300, 200)
    assert csms.statistics().anomalies["register_decreased"] == 2
    notes = [e for e in wire.reply.events if isinstance(e, CsmsNote)] if wire.reply else []
    assert [n.data["anomaly"] for n in notes] == ["duplicate_stop"]


def test_transaction_data_in_a_stop_is_checked() -> None:
    csms = make()
    wire = Wire(csms)
    wire.boot()
    tx = wire.start(meter=100)
    wire.result("StopTransaction", {"transactionId": tx, "meterStop": 150, "timestamp": TS,
                                    "transactionData": [sample("200"), sample("120")]})
    assert wire.anomalies() == ["register_decreased"]
    record = csms.transaction(tx)
    assert record is not None
    assert record.meter_value_count == 2


TIMESTAMPS: list[tuple[str, list[str]]] = [
    ("2026-01-01T00:00:00Z", []),
    ("2025-06-01T00:00:00+02:00", []),
    ("1970-01-01T00:00:00Z", ["timestamp_ancient"]),
    ("2026-01-01T01:00:00Z", ["timestamp_in_future"]),
    ("2026-01-01T00:04:00Z", []),
    ("2026-01-01T00:00:00", ["timestamp_without_zone"]),
    ("1970-01-01T00:00:00", ["timestamp_without_zone", "timestamp_ancient"]),
]


@pytest.mark.parametrize(("timestamp", "anomalies"), TIMESTAMPS)
def test_odd_timestamps_are_anomalies(timestamp: str, anomalies: list[str]) -> None:
    wire = Wire(make())
    wire.boot()
    wire.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                       "status": "Available", "timestamp": timestamp})
    assert wire.anomalies() == anomalies


def test_rules_on_their_own() -> None:
    wall = datetime(2026, 1, 1, tzinfo=UTC)
    assert timestamp_anomalies(datetime(1999, 12, 31, tzinfo=UTC), wall, 1.0) == [
        AnomalyKind.TIMESTAMP_ANCIENT
    ]
    reading = energy_reading([
        SampledValue(value="230", measurand=Measurand.VOLTAGE),
        SampledValue(value="7", phase=Phase.L1),
        SampledValue(value="1.5", unit=UnitOfMeasure.KWH),
        SampledValue(value="99"),
    ])
    assert (reading.wh, list(reading.bad_values)) == (1500, [])
    assert energy_reading([SampledValue(value="x")]).bad_values == ["x"]
    assert energy_reading([SampledValue(value="5", unit=UnitOfMeasure.W)]).wh is None


# --- bad frames -------------------------------------------------------------------------------

BAD_FRAMES: list[tuple[str, str | None]] = [
    ("not json", None),
    ('{"a": 1}', None),
    ("[]", None),
    ('[7, "x", "Heartbeat", {}]', None),
    ('[2, 5, "Heartbeat", {}]', None),
    ('[2, "x", "Heartbeat"]', "FormationViolation"),
    ('[2, "x", "Heartbeat", []]', "FormationViolation"),
    ('[2, "x", 7, {}]', "TypeConstraintViolation"),
    (f'[2, "{"x" * 37}", "Heartbeat", {{}}]', "TypeConstraintViolation"),
    ('[2, "x", "NoSuchAction", {}]', "NotImplemented"),
    ('[2, "x", "heartbeat", {}]', "NotImplemented"),
    ('[2, "x", "Reset", {"type": "Hard"}]', "NotSupported"),
    ('[2, "x", "RemoteStartTransaction", {"idTag": "T"}]', "NotSupported"),
    ('[2, "x", "BootNotification", {"chargePointVendor": "V"}]', "OccurenceConstraintViolation"),
    ('[2, "x", "Heartbeat", {"extra": 1}]', "FormationViolation"),
    ('[2, "x", "Authorize", {"idTag": 5}]', "TypeConstraintViolation"),
    ('[2, "x", "Authorize", {"idTag": "123456789012345678901"}]', "TypeConstraintViolation"),
    ('[2, "x", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
     '"status": "Sleeping"}]', "PropertyConstraintViolation"),
    ('[3, "nobody", {}]', None),
    ('[4, "nobody", "GenericError", "", {}]', None),
    ('[3, "x"]', None),
    # ten thousand levels deep: RecursionError escaped receive() (it must never raise)
    ('[2, "x", "Heartbeat", ' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "]",
     "FormationViolation"),
    ("[" * 10_000, None),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
def test_bad_frames_get_the_right_callerror_or_none(raw: str, code: str | None) -> None:
    wire = Wire(make())
    wire.boot()
    answers = wire.send(raw)
    assert wire.reply is not None
    if code is None:
        assert answers == []
    else:
        assert len(answers) == 1
        assert answers[0][0] == 4
        assert answers[0][2] == code
        if len(answers[0][1]) <= 36:  # an over-long id is echoed: the CP must match its CALL
            assert ORACLE.check_frame_out(wire.reply.frames[0].data, {}) == []
    event = wire.reply.events[0]
    assert isinstance(event, CsmsFrameIn)
    assert event.raw == raw
    assert event.violations or raw.startswith(("[3", "[4"))


def test_unsolicited_results_are_anomalies_and_errors_are_counted() -> None:
    csms = make()
    wire = Wire(csms)
    wire.boot()
    wire.send('[3, "nobody", {}]')
    wire.send('[2, "x", "Foo", {}]')
    wire.send('[2, "y", "Foo", {}]')
    assert wire.anomalies() == ["unsolicited_result"]
    stats = csms.statistics()
    assert stats.call_errors_out == {"NotImplemented": 2}
    assert stats.calls_in == {"BootNotification": 1, "Foo": 2}
    assert (stats.frames_in, stats.frames_out) == (4, 3)


def test_a_reused_message_id_is_an_anomaly() -> None:
    wire = Wire(make())
    wire.boot()
    wire.send([2, "same", "Heartbeat", {}])
    wire.send([2, "same", "Heartbeat", {}])
    assert wire.anomalies() == ["duplicate_message_id"]


def test_without_validation_a_broken_payload_is_answered_anyway() -> None:
    wire = Wire(make(validate=False))
    boot = wire.result("BootNotification", {"chargePointVendor": "V", "bogus": True})
    assert boot["status"] == "Accepted"
    assert wire.result("Authorize", {"idTag": 5}) == {"idTagInfo": {"status": "Invalid"}}
    start = wire.result("StartTransaction", {"connectorId": "one"})
    assert start["idTagInfo"] == {"status": "Invalid"}
    assert start["transactionId"] >= 1
    assert wire.result("StopTransaction", {"transactionId": "x"}) == {
        "idTagInfo": {"status": "Invalid"}
    }
    assert wire.result("DataTransfer", {})["status"] == "Rejected"
    assert wire.result("SignCertificate", {})["status"] == "Rejected"
    assert wire.result("Heartbeat", {"x": 1})["currentTime"]
    assert wire.result("StatusNotification", {"connectorId": 1}) == {}
    assert wire.anomalies() == ["schema_violation"] * 8
    assert wire.reply is not None
    event = wire.reply.events[0]
    assert isinstance(event, CsmsFrameIn)
    assert event.violations


def test_a_handler_failure_becomes_an_internal_error() -> None:
    wire = Wire(make(first_transaction_id=2**31 - 1))
    wire.boot()
    assert wire.start("T1") == 2**31 - 1
    answer = wire.call(
        "StartTransaction", {"connectorId": 2, "idTag": "T2", "meterStart": 0, "timestamp": TS}
    )
    assert answer[:3] == [4, "c3", "InternalError"]
    assert wire.reply is not None
    notes = [e for e in wire.reply.events if isinstance(e, CsmsNote)]
    assert [n.what for n in notes] == ["internal_error"]
    assert "OverflowError" in notes[0].data["error"]
    assert wire.result("Heartbeat", {})  # still serving


# --- sessions and CS → CP calls ---------------------------------------------------------------


def test_a_second_session_replaces_the_first() -> None:
    csms = make()
    first = csms.connect(CP, 0.0)
    second = csms.connect(CP, 1.0)
    assert (first.replaced, second.replaced) == (False, True)
    assert [e.what for e in second.events if isinstance(e, CsmsNote)] == ["replaced", "connected"]
    old = csms.disconnect(CP, first.session, 2.0)
    assert old.outcome is None
    assert csms.is_current(CP, second.session)
    state = csms.charger_state(CP)
    assert state is not None
    assert (state.connected, state.connections, state.replaced) == (True, 2, 1)
    csms.disconnect(CP, second.session, 3.0)
    assert not csms.is_current(CP, second.session)
    stats = csms.statistics()
    assert (stats.connected, stats.connections, stats.replaced_connections) == (0, 2, 1)


def test_cs_to_cp_call_and_result() -> None:
    csms = make()
    wire = Wire(csms)
    data = csms.call(CP, ResetRequest(type=ResetType.SOFT), now=5.0)
    assert json.loads(data) == [2, "cs1", "Reset", {"type": "Soft"}]
    assert ORACLE.check_frame_out(data, {}) == []
    with pytest.raises(CallRefused, match="outstanding"):
        csms.call(CP, ResetRequest(type=ResetType.HARD), now=5.0)
    wire.send([3, "cs1", {"status": "Accepted"}], now=5.5)
    assert wire.reply is not None
    outcome = wire.reply.outcome
    assert outcome is not None
    assert outcome.ok
    assert outcome.response == ResetResponse(status=ResetStatus.ACCEPTED)
    assert (outcome.action, outcome.latency) == ("Reset", 0.5)
    event = wire.reply.events[0]
    assert isinstance(event, CsmsFrameIn)
    assert event.action == "Reset"


CALL_ENDINGS: list[tuple[str, str, list[str]]] = [
    ('[4, "cs1", "NotSupported", "no", {}]', "NotSupported", []),
    ('[3, "cs1", {"status": "Maybe"}]', "PropertyConstraintViolation", []),
    ('[3, "other", {"status": "Accepted"}]', "", ["unsolicited_result"]),
]


@pytest.mark.parametrize(("frame", "code", "anomalies"), CALL_ENDINGS)
def test_cs_to_cp_call_failures(frame: str, code: str, anomalies: list[str]) -> None:
    csms = make()
    wire = Wire(csms)
    csms.call(CP, ResetRequest(type=ResetType.SOFT), now=1.0)
    wire.send(frame, now=2.0)
    assert wire.reply is not None
    outcome = wire.reply.outcome
    if code:
        assert outcome is not None
        assert (outcome.ok, outcome.error_code) == (False, code)
    else:
        assert outcome is None
    assert wire.anomalies() == anomalies


def test_abandoned_and_lost_calls() -> None:
    csms = make()
    wire = Wire(csms)
    csms.call(CP, ResetRequest(type=ResetType.SOFT), now=1.0)
    timeout = csms.abandon_call(CP, 31.0)
    assert timeout is not None
    assert timeout.error_code == TIMEOUT
    assert csms.abandon_call(CP, 31.0) is None
    wire.send('[3, "cs1", {"status": "Accepted"}]')  # too late
    assert wire.anomalies() == ["unsolicited_result"]
    csms.call(CP, ResetRequest(type=ResetType.SOFT), now=40.0)
    lost = csms.disconnect(CP, wire.session, 41.0)
    assert lost.outcome is not None
    assert lost.outcome.error_code == CONNECTION_LOST
    with pytest.raises(CallRefused, match="not connected"):
        csms.call(CP, ResetRequest(type=ResetType.SOFT), now=42.0)
    Wire(csms)
    with pytest.raises(CallRefused, match="charge point only"):
        csms.call(CP, BootNotificationRequest(charge_point_vendor="V", charge_point_model="M"),
                  now=43.0)
    request = ChangeAvailabilityRequest(connector_id=0, type=AvailabilityType.INOPERATIVE)
    replaced = csms.call(CP, request, now=44.0)
    assert json.loads(replaced)[2] == "ChangeAvailability"
    again = csms.connect(CP, 45.0)
    assert again.abandoned is not None
    assert again.abandoned.error_code == CONNECTION_LOST


def test_every_cs_to_cp_action_is_refused_when_sent_to_the_csms() -> None:
    cs_only = sorted(name for name, spec in ACTIONS.items() if spec.direction == Direction.CS_TO_CP)
    assert len(cs_only) == 39 - len(CP_CALLS)
    wire = Wire(make())
    wire.boot()
    for action in cs_only:
        assert wire.call(action, {})[2] == "NotSupported"


# --- admission (pure half of the server's handshake check) ----------------------------------

BASIC = b"Basic " + base64.b64encode(b"CP-1:0123456789abcdef")
ADMISSIONS: list[tuple[dict[str, Any], str, bytes | None, int | None]] = [
    ({}, "CP-1", None, None),
    ({}, "", None, 404),
    ({"allowed_chargers": ("AC-*",)}, "CP-1", None, 404),
    ({"allowed_chargers": ("AC-*",)}, "AC-7", None, None),
    ({"passwords": {"CP-1": "0123456789abcdef"}}, "CP-1", BASIC, None),
    ({"passwords": {"CP-1": "0123456789abcdef"}}, "CP-1", b"basic " + BASIC[6:], None),
    ({"passwords": {"CP-1": "0123456789abcdef"}}, "CP-1", None, 401),
    ({"passwords": {"CP-1": "wrong-key-000000"}}, "CP-1", BASIC, 401),
    ({"passwords": {"CP-2": "0123456789abcdef"}}, "CP-1", BASIC, 401),
    ({"passwords": {"CP-1": "0123456789abcdef"}}, "CP-1", b"Bearer abc", 401),
    ({"passwords": {"CP-1": "0123456789abcdef"}}, "CP-1", b"Basic !!!", 401),
]


@pytest.mark.parametrize(("options", "identity", "header", "status"), ADMISSIONS)
def test_admission(
    options: dict[str, Any], identity: str, header: bytes | None, status: int | None
) -> None:
    assert admission_status(CsmsOptions(**options), identity, header) == status


def test_basic_auth_parsing_and_a_password_free_repr() -> None:
    assert parse_basic_auth(BASIC) == ("CP-1", "0123456789abcdef")
    assert parse_basic_auth(b"Basic " + base64.b64encode(b"nocolon")) is None
    options = CsmsOptions(passwords={"CP-1": "0123456789abcdef"})
    assert "0123456789abcdef" not in repr(options)
    assert msgspec.convert({"heartbeat_interval": 5}, CsmsOptions).heartbeat_interval == 5
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"heartbeat_interval": -1}, CsmsOptions)
