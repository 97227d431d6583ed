"""The LocalAuthListManagement profile in the charger machine: SendLocalList, GetLocalListVersion,
the list in authorization (online and offline) and the LocalListConflict status (OCPP 1.6
§5.15, §5.11, §3.5; tests/machines/pair.py checks every frame against the official schemas and
every status change against the transition table). The list's own rules are unit-tested in
tests/machines/test_auth.py."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.events import Note
from tests.machines.pair import EPOCH, CsCall, FakeCentralSystem, MachinePair, iso

TAG = "TAG-1"


def entry(id_tag: str, status: str | None = "Accepted", **info: Any) -> dict[str, Any]:
    """One localAuthorizationList entry (None status: no idTagInfo, i.e. remove)."""
    if status is None:
        return {"idTag": id_tag}
    return {"idTag": id_tag, "idTagInfo": {"status": status, **info}}


def send_list(pair: MachinePair, version: int, update: str = "Full",
              *entries: dict[str, Any]) -> CsCall:
    payload: dict[str, Any] = {"listVersion": version, "updateType": update}
    if entries:
        payload["localAuthorizationList"] = list(entries)
    return pair.cs_call("SendLocalList", payload)


def list_version(pair: MachinePair) -> int:
    call = pair.cs_call("GetLocalListVersion", {})
    assert call.result is not None, call.error
    return int(call.result["listVersion"])


def starts(pair: MachinePair) -> list[str]:
    return [r.payload["idTag"] for r in pair.cs.of("StartTransaction")]


def charge(pair: MachinePair, tag: str = TAG, connector_id: int = 1) -> None:
    pair.plug(connector_id)
    pair.tag(tag, connector_id)


# --- SendLocalList and GetLocalListVersion --------------------------------------------------------

SMALL = {"SendLocalListMaxLength": 2, "LocalAuthListMaxLength": 3}
UPDATES = [
    # id, config, updates (version, type, entries), last status, version after
    ("full", {}, [(3, "Full", ("A", "B"))], "Accepted", 3),
    ("full replaces, any version", {}, [(3, "Full", ("A",)), (1, "Full", ("C",))], "Accepted", 1),
    ("differential, higher", {}, [(3, "Full", ("A",)), (4, "Differential", ("B",))],
     "Accepted", 4),
    ("differential, equal", {}, [(3, "Full", ("A",)), (3, "Differential", ("B",))],
     "VersionMismatch", 3),
    ("differential, lower", {}, [(3, "Full", ("A",)), (2, "Differential", ("B",))],
     "VersionMismatch", 3),
    ("differential on no list", {}, [(1, "Differential", ("A",))], "Accepted", 1),
    ("request too long", SMALL, [(1, "Full", ("A", "B", "C"))], "Failed", 0),
    ("list too long", SMALL, [(1, "Full", ("A", "B")), (2, "Differential", ("C", "D"))],
     "Failed", 1),
    ("list at its limit", SMALL, [(1, "Full", ("A", "B")), (2, "Differential", ("C", "-A"))],
     "Accepted", 2),
    ("disabled", {"LocalAuthListEnabled": False}, [(1, "Full", ("A",))], "NotSupported", -1),
    ("empty full", {}, [(2, "Full", ("A",)), (5, "Full", ())], "Accepted", 5),
]


@pytest.mark.parametrize(("config", "updates", "status", "version"), [c[1:] for c in UPDATES],
                         ids=[c[0] for c in UPDATES])
def test_send_local_list(config: dict[str, Any], updates: list[tuple[int, str, tuple[str, ...]]],
                         status: str, version: int) -> None:
    pair = MachinePair(config=config)
    assert list_version(pair) == (0 if config.get("LocalAuthListEnabled", True) else -1)
    call = None
    for list_version_, update, names in updates:
        entries = [entry(n[1:], None) if n.startswith("-") else entry(n) for n in names]
        call = send_list(pair, list_version_, update, *entries)
    assert call is not None and call.status == status
    assert list_version(pair) == version
    [last] = [n for n in pair.events_of(Note) if n.what == "local_list_update"][-1:]
    assert last.data["status"] == status


def test_a_differential_entry_without_id_tag_info_removes_the_tag() -> None:
    pair = MachinePair(config={"LocalPreAuthorize": True})
    assert send_list(pair, 1, "Full", entry("A"), entry("B")).status == "Accepted"
    assert send_list(pair, 2, "Differential", entry("A", None)).status == "Accepted"
    pair.disconnect()
    charge(pair, "A", 1)
    assert pair.status(1) == "Preparing"  # refused offline: A is no longer listed
    pair.tag("B", 1)
    assert pair.status(1) == "Charging"


def test_get_local_list_version_follows_local_auth_list_enabled() -> None:
    pair = MachinePair()
    assert send_list(pair, 4, "Full", entry("A")).status == "Accepted"
    pair.cs_call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "false"})
    assert list_version(pair) == -1
    assert send_list(pair, 5, "Full", entry("B")).status == "NotSupported"
    pair.cs_call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "true"})
    assert list_version(pair) == 4  # kept while not in use


def test_a_charger_without_the_profile_answers_not_supported() -> None:
    pair = MachinePair(profiles=("Core",))
    assert pair.cs_call("GetLocalListVersion", {}).error == "NotSupported"
    assert send_list(pair, 1, "Full", entry("A")).error == "NotSupported"


def test_the_list_survives_a_reboot_but_not_a_crash() -> None:
    pair = MachinePair(config={"LocalPreAuthorize": True})
    assert send_list(pair, 9, "Full", entry(TAG)).status == "Accepted"
    assert pair.cs_call("Reset", {"type": "Hard"}).status == "Accepted"
    pair.advance(30)
    assert len(pair.reboots) == 1 and list_version(pair) == 9
    charge(pair)
    assert "Authorize" not in pair.cs.actions() and starts(pair) == [TAG]
    crashed = MachinePair(memory=pair.memory, config={"LocalPreAuthorize": True})
    assert list_version(crashed) == 0  # not part of the charger's memory


# --- the list in authorization --------------------------------------------------------------------

AUTHORIZATIONS = [
    # id, config, list status of TAG (None: not listed), online, Authorize sent, starts
    ("online, pre-authorize", {"LocalPreAuthorize": True}, "Accepted", True, False, True),
    ("online, no pre-authorize", {}, "Accepted", True, True, True),
    ("online, listed blocked: ask", {"LocalPreAuthorize": True}, "Blocked", True, True, True),
    ("online, list disabled", {"LocalPreAuthorize": True, "LocalAuthListEnabled": False},
     "Accepted", True, True, True),
    ("offline, authorize offline", {}, "Accepted", False, False, True),
    ("offline, not authorize offline", {"LocalAuthorizeOffline": False}, "Accepted", False,
     False, False),
    ("offline, listed blocked", {"AllowOfflineTxForUnknownId": True}, "Blocked", False, False,
     False),
    ("offline, listed expired", {}, "Accepted+past", False, False, False),
    ("offline, unlisted", {}, None, False, False, False),
    ("offline, list disabled", {"LocalAuthListEnabled": False}, "Accepted", False, False, False),
]


@pytest.mark.parametrize(("config", "listed", "online", "asked", "started"),
                         [c[1:] for c in AUTHORIZATIONS], ids=[c[0] for c in AUTHORIZATIONS])
def test_the_local_list_in_authorization(config: dict[str, Any], listed: str | None,
                                         online: bool, asked: bool, started: bool) -> None:
    pair = MachinePair(config={**config, "LocalAuthListEnabled": True})
    if listed is not None:
        info: dict[str, Any] = {}
        if listed == "Accepted+past":
            listed, info = "Accepted", {"expiryDate": iso(EPOCH - 1)}
        assert send_list(pair, 1, "Full", entry(TAG, listed, **info)).status == "Accepted"
    if "LocalAuthListEnabled" in config:
        pair.cs_call("ChangeConfiguration", {"key": "LocalAuthListEnabled",
                                             "value": str(config["LocalAuthListEnabled"]).lower()})
    if not online:
        pair.disconnect()
    charge(pair)
    if not online:
        pair.connect()
        pair.advance(1)
    assert ("Authorize" in pair.cs.actions()) is asked
    assert (starts(pair) == [TAG]) is started


@pytest.mark.parametrize(("listed", "cached", "started"), [("Accepted", "Blocked", True),
                                                           ("Blocked", "Accepted", False)])
def test_the_list_comes_before_the_cache(listed: str, cached: str, started: bool) -> None:
    cs = FakeCentralSystem()
    cs.id_tags[TAG] = cached
    pair = MachinePair(cs=cs)
    pair.tag(TAG)  # the CS's answer goes into the cache
    pair.advance(200)  # (a tag accepted but never plugged in times out)
    assert send_list(pair, 1, "Full", entry(TAG, listed)).status == "Accepted"
    pair.disconnect()
    charge(pair)
    pair.connect()
    pair.advance(1)
    assert (starts(pair) == [TAG]) is started


# --- LocalListConflict ----------------------------------------------------------------------------


def zero_reports(pair: MachinePair) -> list[tuple[str, str]]:
    return [(r.payload["status"], r.payload["errorCode"])
            for r in pair.cs.of("StatusNotification") if r.payload["connectorId"] == 0]


@pytest.mark.parametrize(("pre_authorize", "via"), [(False, "Authorize"),
                                                    (True, "StartTransaction")])
def test_a_cs_answer_contradicting_the_list_reports_local_list_conflict(
        pre_authorize: bool, via: str) -> None:
    cs = FakeCentralSystem()
    cs.id_tags[TAG] = "Blocked"
    pair = MachinePair(cs=cs, config={"LocalPreAuthorize": pre_authorize})
    assert send_list(pair, 1, "Full", entry(TAG)).status == "Accepted"
    charge(pair)
    pair.advance(1)
    assert zero_reports(pair) == [("Available", "NoError"), ("Available", "LocalListConflict")]
    [note] = [n for n in pair.events_of(Note) if n.what == "local_list_conflict"]
    assert note.data == {"id_tag": TAG, "central_system": "Blocked", "local_list": "Accepted"}
    assert pair.cs.of(via)  # (the answer that told)
    assert pair.status(1) != "Faulted" and pair.status(0) == "Available"  # a warning only
    # the CS sends its list again: the warning is cleared
    assert send_list(pair, 2, "Full", entry(TAG, "Blocked")).status == "Accepted"
    pair.advance(1)
    assert zero_reports(pair)[-1] == ("Available", "NoError")


def test_an_agreeing_answer_is_no_conflict() -> None:
    pair = MachinePair()
    assert send_list(pair, 1, "Full", entry(TAG)).status == "Accepted"
    charge(pair)
    pair.advance(1)
    assert zero_reports(pair) == [("Available", "NoError")]


def test_no_conflict_while_the_list_is_disabled() -> None:
    cs = FakeCentralSystem()
    cs.id_tags[TAG] = "Blocked"
    pair = MachinePair(cs=cs)
    assert send_list(pair, 1, "Full", entry(TAG)).status == "Accepted"
    pair.cs_call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "false"})
    charge(pair)
    pair.advance(1)
    assert zero_reports(pair) == [("Available", "NoError")]
