"""Authorization: the cache, the local list, and the decision table of the 1.6 core spec §3.3
(local list and cache first; LocalPreAuthorize, LocalAuthorizeOffline,
AllowOfflineTxForUnknownId)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from simulator.machines.auth import (
    AuthorizationCache,
    AuthOutcome,
    AuthSettings,
    Decision,
    LocalAuthList,
    LocalListSnapshot,
    Source,
    decide,
    effective_info,
    find_entry,
    is_valid,
    remember,
    same_id_tag,
)
from simulator.machines.configuration import ConfigurationStore
from simulator.ocpp.v16 import (
    AuthorizationData,
    AuthorizationStatus,
    AuthorizeResponse,
    IdTagInfo,
    SendLocalListRequest,
    UpdateStatus,
    UpdateType,
    decode_response,
)

A = AuthorizationStatus
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
PAST = NOW - dt.timedelta(hours=1)
FUTURE = NOW + dt.timedelta(hours=1)
PLUS_2 = dt.timezone(dt.timedelta(hours=2))


def info(status: AuthorizationStatus, expiry: dt.datetime | None = None) -> IdTagInfo:
    return IdTagInfo(status=status, expiry_date=expiry)


def entry(id_tag: str, status: AuthorizationStatus | None = A.ACCEPTED) -> AuthorizationData:
    return AuthorizationData(id_tag=id_tag, id_tag_info=None if status is None else info(status))


def send_list(
    version: int, update: UpdateType, *entries: AuthorizationData
) -> SendLocalListRequest:
    return SendLocalListRequest(
        list_version=version,
        update_type=update,
        local_authorization_list=entries or None,
    )


def apply(lst: LocalAuthList, request: SendLocalListRequest, **limits: Any) -> UpdateStatus:
    options: dict[str, Any] = {"enabled": True, "max_length": 5, "send_max_length": 3}
    options.update(limits)
    return lst.apply(request, **options)


# --- expiry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (info(A.ACCEPTED), A.ACCEPTED),
        (info(A.ACCEPTED, FUTURE), A.ACCEPTED),
        (info(A.ACCEPTED, NOW), A.EXPIRED),  # expiry is inclusive
        (info(A.ACCEPTED, PAST), A.EXPIRED),
        (info(A.ACCEPTED, dt.datetime(2026, 3, 1, 11, 0)), A.EXPIRED),  # no zone: read as UTC
        (info(A.ACCEPTED, dt.datetime(2026, 3, 1, 13, 0)), A.ACCEPTED),
        (info(A.ACCEPTED, dt.datetime(2026, 3, 1, 13, 30, tzinfo=PLUS_2)), A.EXPIRED),  # 11:30Z
        (info(A.BLOCKED, FUTURE), A.BLOCKED),
        (info(A.BLOCKED, PAST), A.BLOCKED),
        (info(A.INVALID), A.INVALID),
        (info(A.CONCURRENT_TX), A.CONCURRENT_TX),
        (info(A.EXPIRED, FUTURE), A.EXPIRED),
    ],
)
def test_effective_info(given: IdTagInfo, expected: AuthorizationStatus) -> None:
    got = effective_info(given, NOW)
    assert got.status == expected
    assert got.expiry_date == given.expiry_date
    assert is_valid(given, NOW) is (expected == A.ACCEPTED)


def test_naive_expiry_from_the_wire_never_raises() -> None:
    # A CSMS that sends expiryDate without a zone must not crash the charger.
    response = decode_response(
        "Authorize", b'{"idTagInfo":{"status":"Accepted","expiryDate":"2026-03-01T11:59:59"}}'
    )
    assert isinstance(response, AuthorizeResponse)
    cache = AuthorizationCache()
    cache.update("TAG", response.id_tag_info)
    looked_up = cache.lookup("TAG", NOW)
    assert looked_up is not None and looked_up.status == A.EXPIRED


def test_id_tags_are_case_insensitive() -> None:
    assert same_id_tag("tag-1", "TAG-1")
    assert not same_id_tag("TAG-1", "TAG-2")


# --- the cache ------------------------------------------------------------------------------------


def test_cache_keeps_the_latest_info_per_tag() -> None:
    cache = AuthorizationCache()
    assert cache.lookup("TAG-1", NOW) is None
    cache.update("TAG-1", info(A.ACCEPTED))
    cache.update("tag-1", info(A.BLOCKED))  # same token, other case: replaces
    assert len(cache) == 1
    got = cache.lookup("Tag-1", NOW)
    assert got is not None and got.status == A.BLOCKED


def test_cache_entry_expires_with_the_wall_clock() -> None:
    cache = AuthorizationCache()
    cache.update("TAG", info(A.ACCEPTED, FUTURE))
    before = cache.lookup("TAG", NOW)
    after = cache.lookup("TAG", FUTURE + dt.timedelta(seconds=1))
    assert before is not None and before.status == A.ACCEPTED
    assert after is not None and after.status == A.EXPIRED
    # The stored entry is not rewritten by a lookup: an earlier wall still sees it valid.
    again = cache.lookup("TAG", NOW)
    assert again is not None and again.status == A.ACCEPTED


def test_clear_cache() -> None:
    cache = AuthorizationCache()
    for tag in ("A", "B", "C"):
        cache.update(tag, info(A.ACCEPTED))
    cache.clear()
    assert len(cache) == 0
    assert all(cache.lookup(tag, NOW) is None for tag in ("A", "B", "C"))


def test_cache_capacity_evicts_the_least_recently_updated() -> None:
    cache = AuthorizationCache(max_entries=3)
    for tag in ("A", "B", "C"):
        cache.update(tag, info(A.ACCEPTED))
    cache.update("A", info(A.BLOCKED))  # A is now the most recent
    cache.update("D", info(A.ACCEPTED))  # evicts B
    assert len(cache) == 3
    assert cache.lookup("B", NOW) is None
    assert [cache.lookup(t, NOW) is not None for t in ("A", "C", "D")] == [True, True, True]
    cache.update("E", info(A.ACCEPTED))  # evicts C
    assert cache.lookup("C", NOW) is None
    assert len(cache) == 3


@pytest.mark.parametrize("size", [0, -1])
def test_cache_needs_room(size: int) -> None:
    with pytest.raises(ValueError):
        AuthorizationCache(max_entries=size)


# Every result that carries an idTagInfo, as it comes off the wire.
RESULTS = [
    ("Authorize", b'{"idTagInfo":{"status":"Accepted","expiryDate":"2026-03-02T00:00:00Z"}}',
     A.ACCEPTED),
    ("Authorize", b'{"idTagInfo":{"status":"Blocked"}}', A.BLOCKED),
    ("StartTransaction", b'{"idTagInfo":{"status":"Invalid"},"transactionId":7}', A.INVALID),
    ("StartTransaction", b'{"idTagInfo":{"status":"ConcurrentTx"},"transactionId":8}',
     A.CONCURRENT_TX),
    ("StopTransaction", b'{"idTagInfo":{"status":"Expired"}}', A.EXPIRED),
    ("StopTransaction", b'{"idTagInfo":{"status":"Accepted","parentIdTag":"P"}}', A.ACCEPTED),
]


@pytest.mark.parametrize(("action", "raw", "status"), RESULTS)
def test_cache_is_updated_from_every_id_tag_info(
    action: str, raw: bytes, status: AuthorizationStatus
) -> None:
    cache = AuthorizationCache()
    cache.update("TAG", info(A.ACCEPTED) if status != A.ACCEPTED else info(A.BLOCKED))
    tag_info = getattr(decode_response(action, raw), "id_tag_info")  # noqa: B009
    assert remember(cache, AuthSettings(), "TAG", tag_info) is True
    got = cache.lookup("TAG", NOW)
    assert got is not None and got.status == status
    assert got == tag_info

    disabled = AuthorizationCache()
    settings = AuthSettings(authorization_cache_enabled=False)
    assert remember(disabled, settings, "TAG", tag_info) is False
    assert len(disabled) == 0


# --- the local list -------------------------------------------------------------------------------


def test_a_new_list_is_empty_with_version_zero() -> None:
    lst = LocalAuthList()
    assert lst.list_version() == 0
    assert len(lst) == 0
    assert LocalAuthList(supported=False).list_version() == -1


LIST_UPDATES = [
    # (version, type, entries) applied in order to a fresh list; status of the last one,
    # expected version afterwards, expected tags afterwards
    ([(3, UpdateType.FULL, ("A", "B"))], UpdateStatus.ACCEPTED, 3, {"a", "b"}),
    ([(3, UpdateType.FULL, ("A", "B")), (1, UpdateType.FULL, ("C",))],
     UpdateStatus.ACCEPTED, 1, {"c"}),  # Full replaces, whatever the version
    ([(3, UpdateType.FULL, ("A",)), (4, UpdateType.DIFFERENTIAL, ("B",))],
     UpdateStatus.ACCEPTED, 4, {"a", "b"}),
    ([(3, UpdateType.FULL, ("A", "B")), (4, UpdateType.DIFFERENTIAL, ("-A",))],
     UpdateStatus.ACCEPTED, 4, {"b"}),  # no idTagInfo: removed
    ([(3, UpdateType.FULL, ("A",)), (3, UpdateType.DIFFERENTIAL, ("B",))],
     UpdateStatus.VERSION_MISMATCH, 3, {"a"}),
    ([(3, UpdateType.FULL, ("A",)), (2, UpdateType.DIFFERENTIAL, ("B",))],
     UpdateStatus.VERSION_MISMATCH, 3, {"a"}),
    ([(3, UpdateType.FULL, ("A", "B", "C", "D"))], UpdateStatus.FAILED, 0, set()),  # > 3 sent
    ([(3, UpdateType.FULL, ("A", "a"))], UpdateStatus.FAILED, 0, set()),  # same tag twice
    ([(-1, UpdateType.FULL, ("A",))], UpdateStatus.FAILED, 0, set()),
    ([(0, UpdateType.FULL, ("A",))], UpdateStatus.FAILED, 0, set()),  # 0 means "no list"
    ([(2, UpdateType.FULL, ("A", "B", "C")), (3, UpdateType.DIFFERENTIAL, ("D", "E", "F"))],
     UpdateStatus.FAILED, 2, {"a", "b", "c"}),  # would hold 6 > 5
    ([(2, UpdateType.FULL, ("A", "-B"))], UpdateStatus.ACCEPTED, 2, {"a"}),
    ([(2, UpdateType.FULL, ("A",)), (5, UpdateType.FULL, ())], UpdateStatus.ACCEPTED, 5, set()),
]


@pytest.mark.parametrize(("updates", "status", "version", "tags"), LIST_UPDATES)
def test_send_local_list(
    updates: list[tuple[int, UpdateType, tuple[str, ...]]],
    status: UpdateStatus,
    version: int,
    tags: set[str],
) -> None:
    lst = LocalAuthList()
    got = None
    for list_version, update_type, names in updates:
        entries = [entry(n[1:], None) if n.startswith("-") else entry(n) for n in names]
        got = apply(lst, send_list(list_version, update_type, *entries))
    assert got == status
    assert lst.list_version() == version
    assert set(lst.entries()) == tags


@pytest.mark.parametrize(
    ("supported", "enabled"), [(False, True), (True, False), (False, False)]
)
def test_send_local_list_not_supported(supported: bool, enabled: bool) -> None:
    lst = LocalAuthList(supported=supported)
    status = apply(lst, send_list(1, UpdateType.FULL, entry("A")), enabled=enabled)
    assert status == UpdateStatus.NOT_SUPPORTED
    assert len(lst) == 0


def test_local_list_lookup_snapshot_and_conflict() -> None:
    lst = LocalAuthList()
    expiring = AuthorizationData(id_tag="OLD", id_tag_info=info(A.ACCEPTED, PAST))
    status = apply(lst, send_list(7, UpdateType.FULL, entry("Tag-1"), entry("BAD", A.BLOCKED),
                                  expiring))
    assert status == UpdateStatus.ACCEPTED
    found = lst.lookup("TAG-1", NOW)
    assert found is not None and found.status == A.ACCEPTED
    old = lst.lookup("old", NOW)
    assert old is not None and old.status == A.EXPIRED
    assert lst.lookup("nobody", NOW) is None

    assert lst.conflicts_with("tag-1", info(A.BLOCKED), NOW)
    assert not lst.conflicts_with("tag-1", info(A.ACCEPTED), NOW)
    assert not lst.conflicts_with("OLD", info(A.EXPIRED), NOW)
    assert lst.conflicts_with("OLD", info(A.ACCEPTED), NOW)  # the list says it expired
    assert not lst.conflicts_with("nobody", info(A.BLOCKED), NOW)

    restored = LocalAuthList(restored=lst.snapshot())
    assert restored.list_version() == 7
    assert restored.entries() == lst.entries()
    assert restored.snapshot() == LocalListSnapshot(version=7, entries=lst.snapshot().entries)


# --- the decision ---------------------------------------------------------------------------------

# Where the tag is known: (local list status, cache status); None = not there. Statuses with a
# "+past" suffix are Accepted entries whose expiryDate has passed.
ACC, BLK, INV, EXP, CTX = "Accepted", "Blocked", "Invalid", "Expired", "ConcurrentTx"
PAST_ACC = "Accepted+past"
DEFAULTS: dict[str, bool] = {}
LPA = {"local_pre_authorize": True}
NO_LAO = {"local_authorize_offline": False}
AOT = {"allow_offline_tx_for_unknown_id": True}
NO_CACHE = {"authorization_cache_enabled": False}
NO_LIST = {"local_auth_list_enabled": False}

D, S = Decision, Source
DECISIONS = [
    # online, settings, (list, cache), decision, source
    # -- online: ask the CS unless LocalPreAuthorize finds a valid local entry
    (True, DEFAULTS, (None, None), D.ASK, S.NONE),
    (True, AOT, (None, None), D.ASK, S.NONE),
    (True, DEFAULTS, (None, ACC), D.ASK, S.CACHE),
    (True, DEFAULTS, (ACC, None), D.ASK, S.LOCAL_LIST),
    (True, LPA, (None, ACC), D.ACCEPT, S.CACHE),
    (True, LPA, (ACC, None), D.ACCEPT, S.LOCAL_LIST),
    (True, LPA, (ACC, BLK), D.ACCEPT, S.LOCAL_LIST),  # the list first
    (True, LPA, (BLK, ACC), D.ASK, S.LOCAL_LIST),
    (True, LPA, (None, BLK), D.ASK, S.CACHE),  # invalid: the CS may know better
    (True, LPA, (None, INV), D.ASK, S.CACHE),
    (True, LPA, (None, EXP), D.ASK, S.CACHE),
    (True, LPA, (None, PAST_ACC), D.ASK, S.CACHE),
    (True, {**LPA, **NO_CACHE}, (None, ACC), D.ASK, S.NONE),
    (True, {**LPA, **NO_LIST}, (ACC, None), D.ASK, S.NONE),
    (True, {**LPA, **NO_LIST}, (BLK, ACC), D.ACCEPT, S.CACHE),
    # -- offline: a known invalid tag is refused; a valid one accepted with LocalAuthorizeOffline;
    #    an unknown one starts only with AllowOfflineTxForUnknownId
    (False, DEFAULTS, (None, None), D.REJECT, S.NONE),
    (False, AOT, (None, None), D.START_OFFLINE, S.NONE),
    (False, DEFAULTS, (None, ACC), D.ACCEPT, S.CACHE),
    (False, DEFAULTS, (ACC, None), D.ACCEPT, S.LOCAL_LIST),
    (False, DEFAULTS, (ACC, BLK), D.ACCEPT, S.LOCAL_LIST),
    (False, DEFAULTS, (BLK, ACC), D.REJECT, S.LOCAL_LIST),
    (False, {**NO_LIST}, (BLK, ACC), D.ACCEPT, S.CACHE),
    (False, AOT, (None, BLK), D.REJECT, S.CACHE),  # known and blocked: never an offline start
    (False, AOT, (None, INV), D.REJECT, S.CACHE),
    (False, AOT, (None, EXP), D.REJECT, S.CACHE),
    (False, AOT, (None, CTX), D.REJECT, S.CACHE),
    (False, AOT, (None, PAST_ACC), D.REJECT, S.CACHE),
    (False, AOT, (PAST_ACC, None), D.REJECT, S.LOCAL_LIST),
    (False, DEFAULTS, (None, BLK), D.REJECT, S.CACHE),
    (False, NO_LAO, (None, ACC), D.REJECT, S.CACHE),
    (False, {**NO_LAO, **AOT}, (None, ACC), D.START_OFFLINE, S.CACHE),
    (False, NO_CACHE, (None, ACC), D.REJECT, S.NONE),
    (False, {**NO_CACHE, **AOT}, (None, BLK), D.START_OFFLINE, S.NONE),
    (False, LPA, (None, ACC), D.ACCEPT, S.CACHE),
]


def _stored(status: str) -> IdTagInfo:
    if status == PAST_ACC:
        return info(A.ACCEPTED, PAST)
    return info(A(status))


@pytest.mark.parametrize(("online", "settings", "known", "decision", "source"), DECISIONS)
def test_decide(
    online: bool,
    settings: dict[str, bool],
    known: tuple[str | None, str | None],
    decision: Decision,
    source: Source,
) -> None:
    listed, cached = known
    lst = LocalAuthList()
    if listed is not None:
        data = AuthorizationData(id_tag="TAG-7", id_tag_info=_stored(listed))
        assert apply(lst, send_list(1, UpdateType.FULL, data)) == UpdateStatus.ACCEPTED
    cache = AuthorizationCache()
    if cached is not None:
        cache.update("TAG-7", _stored(cached))
    outcome = decide(
        "tag-7", online=online, wall=NOW, settings=AuthSettings(**settings),
        local_list=lst, cache=cache,
    )
    assert isinstance(outcome, AuthOutcome)
    assert (outcome.decision, outcome.source) == (decision, source)
    expected = {S.LOCAL_LIST: listed, S.CACHE: cached, S.NONE: None}[source]
    if expected is None:
        assert outcome.info is None
    else:
        # The entry as it stands now: a passed expiry shows as Expired.
        want = A.EXPIRED if expected == PAST_ACC else A(expected)
        assert outcome.info is not None and outcome.info.status == want


def test_settings_from_the_configuration_store() -> None:
    store = ConfigurationStore(number_of_connectors=1)
    assert AuthSettings.from_configuration(store) == AuthSettings()
    changes = {
        "LocalPreAuthorize": "true",
        "LocalAuthorizeOffline": "false",
        "AllowOfflineTxForUnknownId": "true",
        "AuthorizationCacheEnabled": "false",
        "LocalAuthListEnabled": "false",
    }
    for key, value in changes.items():
        store.change(key, value)
    assert AuthSettings.from_configuration(store) == AuthSettings(
        local_pre_authorize=True,
        local_authorize_offline=False,
        allow_offline_tx_for_unknown_id=True,
        authorization_cache_enabled=False,
        local_auth_list_enabled=False,
    )


def test_the_entry_found_carries_its_parent_id_tag() -> None:
    # A reservation with a parentIdTag admits a tag whose parent the list or the cache knows.
    lst, cache = LocalAuthList(), AuthorizationCache()
    listed = AuthorizationData(id_tag="CARD-1", id_tag_info=IdTagInfo(
        status=A.ACCEPTED, parent_id_tag="FLEET"))
    assert apply(lst, send_list(1, UpdateType.FULL, listed)) == UpdateStatus.ACCEPTED
    cache.update("CARD-2", IdTagInfo(status=A.ACCEPTED, parent_id_tag="OTHER"))
    settings = AuthSettings()
    found = [find_entry(tag, wall=NOW, settings=settings, local_list=lst, cache=cache)
             for tag in ("card-1", "CARD-2", "CARD-3")]
    assert [(i.parent_id_tag if i else None, s) for i, s in found] == \
        [("FLEET", S.LOCAL_LIST), ("OTHER", S.CACHE), (None, S.NONE)]
