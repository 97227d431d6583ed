"""The Reservation profile in the charger machine: ReserveNow, CancelReservation, the Reserved
status, and how a reservation ends (OCPP 1.6 §5.13, §5.3; tests/machines/pair.py checks every
frame against the official schemas and every status change against the transition table)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from simulator.events import Note
from simulator.machines.reservations import Reservation, Reservations, as_utc
from simulator.ocpp.v16 import ChargePointErrorCode
from tests.machines.pair import EPOCH, CsCall, FakeCentralSystem, MachinePair, iso

E = ChargePointErrorCode
TAG, OTHER = "TAG-1", "OTHER-1"


def reserve(pair: MachinePair, connector_id: int = 1, tag: str = TAG, reservation_id: int = 1,
            *, expires_in: float = 600.0, parent: str | None = None) -> CsCall:
    """ReserveNow from the CS, expiring ``expires_in`` seconds from now on the CS's clock."""
    payload: dict[str, Any] = {
        "connectorId": connector_id, "idTag": tag, "reservationId": reservation_id,
        "expiryDate": iso(EPOCH + pair.cs.clock_offset + pair.now + expires_in),
    }
    if parent is not None:
        payload["parentIdTag"] = parent
    return pair.cs_call("ReserveNow", payload)


def notes(pair: MachinePair, what: str) -> list[Note]:
    return [n for n in pair.events_of(Note) if n.what == what]


def ended(pair: MachinePair) -> list[tuple[int, str]]:
    """(reservationId, reason) of every reservation that ended, in order."""
    return [(n.data["reservation_id"], n.data["reason"]) for n in notes(pair, "reservation_ended")]


def starts(pair: MachinePair) -> list[dict[str, Any]]:
    return [r.payload for r in pair.cs.of("StartTransaction")]


# --- ReserveNow: the answer ---------------------------------------------------------------------


def fault(cid: int) -> Callable[[MachinePair], None]:
    def apply(pair: MachinePair) -> None:
        pair.machine.hardware_error(cid, E.GROUND_FAILURE, pair.now)
        pair.drain()
    return apply


def inoperative(cid: int) -> Callable[[MachinePair], None]:
    def apply(pair: MachinePair) -> None:
        assert pair.cs_call("ChangeAvailability",
                            {"connectorId": cid, "type": "Inoperative"}).status == "Accepted"
    return apply


def charging(cid: int, tag: str = OTHER) -> Callable[[MachinePair], None]:
    def apply(pair: MachinePair) -> None:
        pair.plug(cid)
        pair.tag(tag, cid)
    return apply


def plugged(cid: int) -> Callable[[MachinePair], None]:
    return lambda pair: pair.plug(cid)


def waiting_tag(cid: int) -> Callable[[MachinePair], None]:
    return lambda pair: pair.tag(OTHER, cid)


def finishing(cid: int) -> Callable[[MachinePair], None]:
    def apply(pair: MachinePair) -> None:
        charging(cid)(pair)
        pair.stop_local(cid)
    return apply


def reserved(cid: int, tag: str = OTHER, rid: int = 9) -> Callable[[MachinePair], None]:
    def apply(pair: MachinePair) -> None:
        assert reserve(pair, cid, tag, rid).status == "Accepted"
    return apply


def nothing(pair: MachinePair) -> None:
    del pair


ZERO = {"ReserveConnectorZeroSupported": True}

RESERVE_CASES = [
    # id, config, situation before, connectorId, expires in (s), status, connector 1 after
    ("free", {}, nothing, 1, 600, "Accepted", "Reserved"),
    ("unknown connector", {}, nothing, 3, 600, "Rejected", "Available"),
    ("connector 0 not supported", {}, nothing, 0, 600, "Rejected", "Available"),
    ("connector 0 supported", ZERO, nothing, 0, 600, "Accepted", "Available"),
    ("already expired", {}, nothing, 1, -1, "Rejected", "Available"),
    ("expires now", {}, nothing, 1, 0, "Rejected", "Available"),
    ("connector faulted", {}, fault(1), 1, 600, "Faulted", "Faulted"),
    ("charge point faulted", {}, fault(0), 1, 600, "Faulted", "Unavailable"),
    ("connector inoperative", {}, inoperative(1), 1, 600, "Unavailable", "Unavailable"),
    ("charge point inoperative", {}, inoperative(0), 1, 600, "Unavailable", "Unavailable"),
    ("transaction", {}, charging(1), 1, 600, "Occupied", "Charging"),
    ("EV plugged in", {}, plugged(1), 1, 600, "Occupied", "Preparing"),
    ("tag waiting for a cable", {}, waiting_tag(1), 1, 600, "Occupied", "Preparing"),
    ("cable left after a transaction", {}, finishing(1), 1, 600, "Occupied", "Finishing"),
    ("reserved by another id", {}, reserved(1), 1, 600, "Occupied", "Reserved"),
    ("reserved by another id, same tag", {}, reserved(1, TAG), 1, 600, "Occupied", "Reserved"),
    ("other connector reserved", {}, reserved(2), 1, 600, "Accepted", "Reserved"),
    ("needed by a connector-0 reservation", ZERO,
     lambda p: (charging(2)(p), reserved(0)(p)), 1, 600, "Occupied", "Reserved"),
    ("connector 0, one free left", ZERO, charging(2), 0, 600, "Accepted", "Reserved"),
    ("connector 0, EVs without tags claim nothing", ZERO,
     lambda p: (plugged(1)(p), plugged(2)(p)), 0, 600, "Accepted", "Preparing"),
    ("connector 0, none free", ZERO, lambda p: (charging(1)(p), charging(2, "OTHER-2")(p)), 0,
     600, "Occupied", "Charging"),
    ("connector 0, the only free one kept", ZERO, lambda p: (charging(2)(p), reserved(0)(p)),
     0, 600, "Occupied", "Reserved"),
    ("connector 0, charge point faulted", ZERO, fault(0), 0, 600, "Faulted", "Unavailable"),
    ("connector 0, every connector faulted", ZERO, lambda p: (fault(1)(p), fault(2)(p)), 0, 600,
     "Faulted", "Faulted"),
    ("connector 0, charge point inoperative", ZERO, inoperative(0), 0, 600, "Unavailable",
     "Unavailable"),
    ("connector 0, every connector inoperative", ZERO,
     lambda p: (inoperative(1)(p), inoperative(2)(p)), 0, 600, "Unavailable", "Unavailable"),
]


@pytest.mark.parametrize(("config", "situation", "cid", "expires_in", "status", "after"),
                         [case[1:] for case in RESERVE_CASES],
                         ids=[case[0] for case in RESERVE_CASES])
def test_reserve_now(config: dict[str, Any], situation: Callable[[MachinePair], None], cid: int,
                     expires_in: float, status: str, after: str) -> None:
    pair = MachinePair(connectors=2, config=config)
    situation(pair)
    call = reserve(pair, cid, expires_in=expires_in)
    assert call.status == status
    pair.advance(1)
    assert pair.status(1) == after
    assert (pair.notified(1)[-1] == "Reserved") is (after == "Reserved")
    refused = notes(pair, "reservation_refused")
    assert [n.data["status"] for n in refused][-1:] == ([] if status == "Accepted" else [status])


def test_reserve_now_answers_first_then_the_connector_reports_reserved() -> None:
    pair = MachinePair()
    call = reserve(pair)
    assert call.result == {"status": "Accepted"}
    answered = [i for i, (_, send) in enumerate(pair.sent) if send.data.startswith(b'[3,"cs-1"')]
    reported = [i for i, (_, send) in enumerate(pair.sent)
                if b'"Reserved"' in send.data and send.data.startswith(b"[2,")]
    assert answered and reported and answered[0] < reported[0]
    assert pair.statuses(1) == ["Reserved"]


def test_the_same_reservation_id_replaces_the_old_reservation() -> None:
    pair = MachinePair(connectors=2)
    assert reserve(pair, 1, TAG, 5).status == "Accepted"
    assert reserve(pair, 2, OTHER, 5).status == "Accepted"  # moved to connector 2, another tag
    assert (pair.status(1), pair.status(2)) == ("Available", "Reserved")
    assert ended(pair) == [(5, "Replaced")]
    assert reserve(pair, 2, TAG, 5).status == "Accepted"  # same connector: judged without itself
    assert pair.status(2) == "Reserved"
    pair.plug(2)
    pair.tag(OTHER, 2)  # the replaced reservation's tag no longer counts
    assert starts(pair) == []
    pair.tag(TAG, 2)
    assert [s.get("reservationId") for s in starts(pair)] == [5]


def test_a_refused_replacement_leaves_the_old_reservation() -> None:
    pair = MachinePair(connectors=2)
    assert reserve(pair, 1, TAG, 5).status == "Accepted"
    pair.plug(2)
    assert reserve(pair, 2, TAG, 5).status == "Occupied"
    assert pair.status(1) == "Reserved"
    assert pair.cs_call("CancelReservation", {"reservationId": 5}).status == "Accepted"


# --- CancelReservation and expiry -----------------------------------------------------------------


def test_cancel_reservation() -> None:
    pair = MachinePair()
    assert pair.cs_call("CancelReservation", {"reservationId": 1}).status == "Rejected"
    assert reserve(pair).status == "Accepted"
    assert pair.cs_call("CancelReservation", {"reservationId": 2}).status == "Rejected"
    assert pair.cs_call("CancelReservation", {"reservationId": 1}).status == "Accepted"
    pair.advance(1)
    assert pair.notified(1)[-2:] == ["Reserved", "Available"]
    assert ended(pair) == [(1, "Cancelled")]
    assert pair.cs_call("CancelReservation", {"reservationId": 1}).status == "Rejected"


@pytest.mark.parametrize("cs_ahead", [0.0, 3600.0, -86_400.0])
def test_a_reservation_expires_at_its_expiry_date_on_the_chargers_clock(cs_ahead: float) -> None:
    # The charger's clock follows the CS's currentTime (boot): the expiry is read on it.
    pair = MachinePair(cs=FakeCentralSystem(clock_offset=cs_ahead))
    pair.advance(10)
    assert reserve(pair, expires_in=120).status == "Accepted"
    assert pair.machine.next_deadline() is not None
    pair.advance(119.9)
    assert pair.status(1) == "Reserved"
    pair.advance(0.1)
    assert pair.status(1) == "Available"
    assert ended(pair) == [(1, "Expired")]
    last = pair.cs.of("StatusNotification")[-1]
    assert (last.payload["status"], last.t) == ("Available", 130.0)
    pair.tag(OTHER)
    pair.plug()
    assert len(starts(pair)) == 1  # anyone may charge again


def test_a_naive_expiry_date_is_read_as_utc() -> None:
    pair = MachinePair()
    naive = iso(EPOCH + 60).removesuffix("Z")
    call = pair.cs_call("ReserveNow", {"connectorId": 1, "idTag": TAG, "reservationId": 1,
                                       "expiryDate": naive})
    assert call.status == "Accepted"
    pair.advance(60)
    assert pair.status(1) == "Available"


def test_reservations_survive_a_reboot_and_still_expire() -> None:
    pair = MachinePair()
    assert reserve(pair, expires_in=300).status == "Accepted"
    assert pair.cs_call("Reset", {"type": "Soft"}).status == "Accepted"
    pair.advance(30)
    assert len(pair.reboots) == 1 and pair.cs.actions().count("BootNotification") == 2
    assert pair.status(1) == "Reserved"
    assert pair.notified(1)[-1] == "Reserved"  # reported again after the boot
    pair.advance(300)
    assert pair.status(1) == "Available"
    assert ended(pair) == [(1, "Expired")]


# --- what a reservation does to tags and transactions ---------------------------------------------


@pytest.mark.parametrize("plug_first", [True, False])
def test_the_reserved_tag_starts_and_ends_the_reservation(plug_first: bool) -> None:
    pair = MachinePair()
    assert reserve(pair, reservation_id=42).status == "Accepted"
    if plug_first:
        pair.plug()
        assert pair.status(1) == "Reserved"  # an EV alone does not take a reserved connector
        pair.tag(TAG.lower())  # idTags compare case-insensitively
    else:
        pair.tag(TAG.lower())
        assert pair.status(1) == "Preparing"
        pair.plug()
    [start] = starts(pair)
    assert start["reservationId"] == 42
    assert pair.statuses(1) == ["Reserved", "Preparing", "Charging"]
    assert ended(pair) == [(42, "Used")]
    assert pair.cs_call("CancelReservation", {"reservationId": 42}).status == "Rejected"


def test_a_reserved_connector_refuses_other_tags_without_asking() -> None:
    pair = MachinePair()
    assert reserve(pair).status == "Accepted"
    pair.plug()
    pair.tag(OTHER)
    pair.advance(5)
    assert "Authorize" not in pair.cs.actions() and starts(pair) == []
    assert pair.status(1) == "Reserved"
    [refused] = notes(pair, "authorization_refused")
    assert refused.data == {"id_tag": OTHER, "status": "Reserved", "reservation_id": 1}
    remote = pair.cs_call("RemoteStartTransaction", {"idTag": OTHER, "connectorId": 1})
    assert remote.status == "Rejected"  # reserved for another tag
    assert starts(pair) == []
    pair.tag(TAG)
    assert [s["idTag"] for s in starts(pair)] == [TAG]


def test_the_reserved_tag_on_another_connector_keeps_the_reservation() -> None:
    pair = MachinePair(connectors=2)
    assert reserve(pair, 1).status == "Accepted"
    charging(2, TAG)(pair)
    [start] = starts(pair)
    assert start["connectorId"] == 2 and "reservationId" not in start
    assert pair.status(1) == "Reserved"


PARENT_CASES = [
    # id, Authorize answer's parentIdTag for the incoming tag, starts
    ("the parent matches", "FLEET", True),
    ("another parent", "ELSEWHERE", False),
    ("no parent", None, False),
]


@pytest.mark.parametrize(("parent", "started"), [c[1:] for c in PARENT_CASES],
                         ids=[c[0] for c in PARENT_CASES])
def test_a_tag_with_the_reservations_parent_is_admitted_after_authorize(
        parent: str | None, started: bool) -> None:
    cs = FakeCentralSystem()
    info: dict[str, Any] = {"status": "Accepted"}
    if parent is not None:
        info["parentIdTag"] = parent
    cs.answer("Authorize", {"idTagInfo": info})
    pair = MachinePair(cs=cs)
    assert reserve(pair, parent="FLEET", reservation_id=3).status == "Accepted"
    pair.plug()
    pair.tag("CARD-2")
    assert pair.cs.actions().count("Authorize") == 1  # the parent is learnt from the CS
    assert [s.get("reservationId") for s in starts(pair)] == ([3] if started else [])
    assert pair.status(1) == ("Charging" if started else "Reserved")


def test_the_parent_tag_itself_is_admitted() -> None:
    pair = MachinePair()
    assert reserve(pair, parent="FLEET").status == "Accepted"
    pair.plug()
    pair.tag("fleet")
    assert [s.get("reservationId") for s in starts(pair)] == [1]


@pytest.mark.parametrize(("parent", "started", "asked"), [("FLEET", True, False),
                                                          ("ELSEWHERE", False, False)])
def test_the_parent_known_from_the_local_list_decides_without_authorize(
        parent: str, started: bool, asked: bool) -> None:
    pair = MachinePair(config={"LocalPreAuthorize": True})
    sent = pair.cs_call("SendLocalList", {"listVersion": 1, "updateType": "Full",
                                          "localAuthorizationList": [
                                              {"idTag": "CARD-2", "idTagInfo": {
                                                  "status": "Accepted", "parentIdTag": parent}}]})
    assert sent.status == "Accepted"
    assert reserve(pair, parent="FLEET").status == "Accepted"
    pair.plug()
    pair.tag("CARD-2")
    assert ("Authorize" in pair.cs.actions()) is asked
    assert [s.get("reservationId") for s in starts(pair)] == ([1] if started else [])


def test_an_offline_start_by_the_reserved_tag_carries_the_reservation_id() -> None:
    pair = MachinePair(config={"AllowOfflineTxForUnknownId": True})
    assert reserve(pair, reservation_id=8).status == "Accepted"
    pair.disconnect()
    pair.plug()
    pair.tag(OTHER)  # unknown offline start, but not on a connector reserved for another tag
    pair.tag(TAG)
    pair.connect()
    pair.advance(1)
    assert [(s["idTag"], s.get("reservationId")) for s in starts(pair)] == [(TAG, 8)]


# --- a reservation ends on Faulted and Unavailable ------------------------------------------------


def test_a_fault_ends_the_reservation() -> None:
    pair = MachinePair()
    assert reserve(pair).status == "Accepted"
    pair.machine.hardware_error(1, E.GROUND_FAILURE, pair.now)
    pair.drain()
    assert ended(pair) == [(1, "Faulted")]
    pair.machine.hardware_error(1, E.NO_ERROR, pair.now)
    pair.drain()
    pair.advance(1)
    assert pair.status(1) == "Available"  # the reservation does not come back
    assert pair.notified(1)[-3:] == ["Reserved", "Faulted", "Available"]


def test_a_warning_keeps_the_reservation() -> None:
    pair = MachinePair()
    assert reserve(pair).status == "Accepted"
    pair.machine.hardware_error(1, E.HIGH_TEMPERATURE, pair.now)
    pair.drain()
    assert pair.status(1) == "Reserved" and ended(pair) == []


@pytest.mark.parametrize("cid", [1, 0])
def test_unavailable_ends_the_reservation(cid: int) -> None:
    pair = MachinePair()
    assert reserve(pair).status == "Accepted"
    inoperative(cid)(pair)
    assert ended(pair) == [(1, "Unavailable")]
    pair.cs_call("ChangeAvailability", {"connectorId": cid, "type": "Operative"})
    assert pair.status(1) == "Available"


@pytest.mark.parametrize("how", ["fault", "inoperative"])
def test_the_charge_point_going_faulted_or_unavailable_ends_connector_0_reservations(
        how: str) -> None:
    pair = MachinePair(connectors=2, config=ZERO)
    assert reserve(pair, 0).status == "Accepted"
    (fault(0) if how == "fault" else inoperative(0))(pair)
    assert ended(pair) == [(1, "Faulted" if how == "fault" else "Unavailable")]


# --- connector 0 ----------------------------------------------------------------------------------


def test_a_connector_0_reservation_keeps_one_connector_free_for_its_tag() -> None:
    pair = MachinePair(connectors=2, config=ZERO)
    assert reserve(pair, 0, reservation_id=7).status == "Accepted"
    assert (pair.status(1), pair.status(2)) == ("Available", "Available")  # two free for one
    charging(1, OTHER)(pair)  # another tag takes one of them
    assert pair.status(2) == "Reserved"  # the last free connector is kept
    pair.plug(2)
    assert pair.status(2) == "Preparing"  # (Preparing may not go back to Reserved)
    pair.tag("THIRD", 2)
    assert pair.status(2) == "Preparing" and len(starts(pair)) == 1
    assert [n.data["reservation_id"] for n in notes(pair, "authorization_refused")] == [7]
    pair.tag(TAG, 2)
    assert [(s["connectorId"], s.get("reservationId")) for s in starts(pair)] == \
        [(1, None), (2, 7)]
    assert ended(pair) == [(7, "Used")]


@pytest.mark.parametrize("cid", [1, 2])
def test_a_connector_0_reservation_is_used_on_any_connector(cid: int) -> None:
    pair = MachinePair(connectors=2, config=ZERO)
    assert reserve(pair, 0, reservation_id=7).status == "Accepted"
    pair.plug(1)  # an EV without a tag claims nothing: two free connectors for one
    assert (pair.status(1), pair.status(2)) == ("Preparing", "Available")
    charging(cid, TAG)(pair)
    assert [s.get("reservationId") for s in starts(pair)] == [7]
    charging(3 - cid, OTHER)(pair)  # the reservation is used: anyone may take the other
    assert len(starts(pair)) == 2
    assert "Reserved" not in pair.statuses(1) + pair.statuses(2)


def test_a_connector_0_reservation_expires() -> None:
    pair = MachinePair(connectors=1, config=ZERO)
    assert reserve(pair, 0, expires_in=60).status == "Accepted"
    assert pair.status(1) == "Reserved"  # the only connector
    pair.advance(60)
    assert pair.status(1) == "Available"
    assert ended(pair) == [(1, "Expired")]


def test_reserve_connector_zero_supported_is_read_only_over_ocpp() -> None:
    pair = MachinePair()
    call = pair.cs_call("ChangeConfiguration",
                        {"key": "ReserveConnectorZeroSupported", "value": "true"})
    assert call.status == "Rejected"
    assert reserve(pair, 0).status == "Rejected"


def test_a_charger_without_the_profile_answers_not_supported() -> None:
    pair = MachinePair(profiles=("Core",))
    assert reserve(pair).error == "NotSupported"
    assert pair.cs_call("CancelReservation", {"reservationId": 1}).error == "NotSupported"
    supported = pair.cs_call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert supported.result is not None
    assert supported.result["configurationKey"][0]["value"] == "Core"


# --- the book itself ------------------------------------------------------------------------------


def test_reservation_matching_rules() -> None:
    expiry = as_utc(iso_datetime(EPOCH + 60))
    plain = Reservation(reservation_id=1, connector_id=1, id_tag="A", expiry=expiry)
    fleet = Reservation(reservation_id=1, connector_id=1, id_tag="A", expiry=expiry,
                        parent_id_tag="P")
    assert plain.admits("a", None) and not plain.admits("B", "A") and not plain.admits("B", None)
    assert fleet.admits("B", "p") and fleet.admits("P", None) and not fleet.admits("B", "Q")
    book = Reservations()
    assert book.place(plain) is None
    assert book.place(fleet) == plain and len(book) == 1
    assert book.next_expiry() == EPOCH + 60
    assert book.expire(EPOCH, 59.999) == [] and book.expire(EPOCH, 60.0) == [fleet]


def iso_datetime(seconds: float) -> dt.datetime:
    """A naive datetime of Unix ``seconds`` in UTC (as_utc reads it as UTC)."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(tzinfo=None)


def test_the_reserved_tag_that_never_plugs_in_leaves_the_connector_reserved() -> None:
    pair = MachinePair(config={"ConnectionTimeOut": 30})
    assert reserve(pair).status == "Accepted"
    pair.tag(TAG)
    assert pair.status(1) == "Preparing"
    pair.advance(30)
    # Preparing may not go to Reserved: the connector passes through Available.
    assert pair.statuses(1) == ["Reserved", "Preparing", "Available", "Reserved"]
    assert ended(pair) == []


def test_an_expiry_while_offline_is_reported_on_reconnect() -> None:
    pair = MachinePair()
    assert reserve(pair, expires_in=60).status == "Accepted"
    pair.disconnect()
    pair.advance(120)
    assert pair.status(1) == "Available"
    pair.connect()
    pair.advance(1)
    assert pair.notified(1)[-2:] == ["Reserved", "Available"]


def test_cancelling_a_connector_0_reservation_frees_the_kept_connector() -> None:
    pair = MachinePair(connectors=2, config=ZERO)
    charging(1, OTHER)(pair)
    assert reserve(pair, 0, reservation_id=4).status == "Accepted"
    assert pair.status(2) == "Reserved"
    assert pair.cs_call("CancelReservation", {"reservationId": 4}).status == "Accepted"
    assert pair.status(2) == "Available"
    assert ended(pair) == [(4, "Cancelled")]


def test_a_remote_start_for_another_tag_on_a_reserved_connector_is_rejected() -> None:
    pair = MachinePair(connectors=2)
    assert reserve(pair, connector_id=1).status == "Accepted"
    refused = pair.cs_call("RemoteStartTransaction", {"idTag": OTHER, "connectorId": 1})
    assert refused.status == "Rejected"
    [note] = notes(pair, "remote_start_refused")
    assert note.connector == 1 and note.data["reservation_id"] == 1
    assert pair.status(1) == "Reserved"


def test_a_remote_start_without_connector_skips_a_connector_reserved_for_another_tag() -> None:
    pair = MachinePair(connectors=2)
    assert reserve(pair, connector_id=1).status == "Accepted"
    started = pair.cs_call("RemoteStartTransaction", {"idTag": OTHER})
    assert started.status == "Accepted"
    pair.plug(2)
    pair.advance(5)
    [start] = starts(pair)
    assert start["connectorId"] == 2 and "reservationId" not in start
    assert pair.status(1) == "Reserved"


def test_a_remote_start_for_the_reserved_tag_uses_the_reservation() -> None:
    pair = MachinePair()
    assert reserve(pair, reservation_id=7).status == "Accepted"
    assert pair.cs_call("RemoteStartTransaction", {"idTag": TAG, "connectorId": 1}).status \
        == "Accepted"
    pair.plug()
    pair.advance(5)
    [start] = starts(pair)
    assert start["reservationId"] == 7
