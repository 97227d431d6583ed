"""Authorization of idTags: the authorization cache, the local authorization list, and the decision.

:class:`AuthorizationCache` remembers every ``IdTagInfo`` the central system sent (Authorize,
StartTransaction and StopTransaction results). :class:`LocalAuthList` is the list the central
system manages with SendLocalList (Full and Differential updates, versions, size limits) and
reports with GetLocalListVersion. :func:`decide` is the pure decision table a charger applies when
an idTag is presented: accept locally, reject locally, ask the central system (Authorize), or start
offline for an unknown id, from the online state and the keys ``LocalPreAuthorize``,
``LocalAuthorizeOffline``, ``AllowOfflineTxForUnknownId``, ``AuthorizationCacheEnabled`` and
``LocalAuthListEnabled``. IdTags are case-insensitive (OCPP CiString): lookups ignore case.
Expiry compares ``expiryDate`` with the charger's wall clock, passed in as an aware ``datetime``.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol

import msgspec

from simulator.ocpp.v16 import (
    AuthorizationData,
    AuthorizationStatus,
    IdTagInfo,
    SendLocalListRequest,
    UpdateStatus,
    UpdateType,
)

#: Entries an authorization cache keeps before evicting the least recently updated one.
DEFAULT_CACHE_SIZE: Final = 1000


def _norm(id_tag: str) -> str:
    return id_tag.casefold()


def same_id_tag(a: str, b: str) -> bool:
    """True if two idTags are the same token (case-insensitive): a stop presented with the tag
    that started the transaction needs no Authorize."""
    return _norm(a) == _norm(b)


def _as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware datetime; a naive one (a CSMS may send ``expiryDate`` without a zone) is taken
    as UTC, so comparing never raises."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def effective_info(info: IdTagInfo, wall: dt.datetime) -> IdTagInfo:
    """``info`` as it stands at ``wall``: an Accepted entry whose ``expiry_date`` has passed is
    Expired. An ``expiry_date`` without a zone is read as UTC."""
    if (
        info.status == AuthorizationStatus.ACCEPTED
        and info.expiry_date is not None
        and _as_utc(info.expiry_date) <= _as_utc(wall)
    ):
        return IdTagInfo(
            status=AuthorizationStatus.EXPIRED,
            expiry_date=info.expiry_date,
            parent_id_tag=info.parent_id_tag,
        )
    return info


def is_valid(info: IdTagInfo, wall: dt.datetime) -> bool:
    """True if ``info`` authorizes a charge at ``wall`` (Accepted and not expired)."""
    return effective_info(info, wall).status == AuthorizationStatus.ACCEPTED


class AuthorizationCache:
    """idTag → the last ``IdTagInfo`` the central system gave for it, at most ``max_entries``
    (the least recently updated entry is evicted first). The charger feeds it only while
    ``AuthorizationCacheEnabled`` is true; ClearCache empties it."""

    def __init__(self, *, max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: dict[str, IdTagInfo] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def update(self, id_tag: str, info: IdTagInfo) -> None:
        """Remember ``info`` for ``id_tag`` (replacing any older entry)."""
        key = _norm(id_tag)
        self._entries.pop(key, None)
        self._entries[key] = info
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]

    def lookup(self, id_tag: str, wall: dt.datetime) -> IdTagInfo | None:
        """The cached entry as it stands at ``wall`` (see :func:`effective_info`), or None."""
        info = self._entries.get(_norm(id_tag))
        return None if info is None else effective_info(info, wall)

    def clear(self) -> None:
        """Forget every entry (ClearCache)."""
        self._entries.clear()


class LocalListSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A local authorization list as persisted across reboots."""

    version: int
    entries: tuple[AuthorizationData, ...] = ()


class LocalAuthList:
    """The local authorization list. ``supported`` False means the charge point lacks the
    LocalAuthListManagement profile (version -1, every update NotSupported). A new list has
    version 0 and no entries; ``restored`` brings back a :meth:`snapshot`."""

    def __init__(
        self, *, supported: bool = True, restored: LocalListSnapshot | None = None
    ) -> None:
        self.supported = supported
        self._version = 0
        self._entries: dict[str, AuthorizationData] = {}
        if restored is not None:
            self._version = restored.version
            self._entries = {_norm(e.id_tag): e for e in restored.entries}

    def __len__(self) -> int:
        return len(self._entries)

    def list_version(self) -> int:
        """The GetLocalListVersion answer: -1 when not supported, 0 for no list, else the
        version of the last accepted update."""
        return self._version if self.supported else -1

    def lookup(self, id_tag: str, wall: dt.datetime) -> IdTagInfo | None:
        """The list entry for ``id_tag`` as it stands at ``wall``, or None."""
        entry = self._entries.get(_norm(id_tag))
        if entry is None or entry.id_tag_info is None:
            return None
        return effective_info(entry.id_tag_info, wall)

    def conflicts_with(self, id_tag: str, info: IdTagInfo, wall: dt.datetime) -> bool:
        """True if the central system's ``info`` contradicts the list's entry for ``id_tag``
        (the charger then reports the LocalListConflict error code)."""
        listed = self.lookup(id_tag, wall)
        return listed is not None and listed.status != effective_info(info, wall).status

    def apply(
        self,
        request: SendLocalListRequest,
        *,
        enabled: bool,
        max_length: int,
        send_max_length: int,
    ) -> UpdateStatus:
        """Answer SendLocalList and apply it, all or nothing.

        NotSupported when the profile is missing or ``LocalAuthListEnabled`` is false. Failed
        when the request carries more than ``send_max_length`` (``SendLocalListMaxLength``)
        entries, names an idTag twice, has a negative version, would leave more than
        ``max_length`` (``LocalAuthListMaxLength``) entries, or would leave entries under
        version 0 (which means "no list"). VersionMismatch for a Differential update whose
        version is not above the current one. A Full update replaces the list (entries without
        ``idTagInfo`` are left out); a Differential one adds or replaces entries and removes
        those without ``idTagInfo``. On Accepted the list takes the request's version.
        """
        if not self.supported or not enabled:
            return UpdateStatus.NOT_SUPPORTED
        changes = request.local_authorization_list or ()
        keys = [_norm(e.id_tag) for e in changes]
        if len(changes) > send_max_length or len(set(keys)) != len(keys):
            return UpdateStatus.FAILED
        if request.list_version < 0:
            return UpdateStatus.FAILED
        if request.update_type == UpdateType.DIFFERENTIAL:
            if request.list_version <= self._version:
                return UpdateStatus.VERSION_MISMATCH
            entries = dict(self._entries)
        else:
            entries = {}
        for key, entry in zip(keys, changes, strict=True):
            if entry.id_tag_info is None:
                entries.pop(key, None)
            else:
                entries[key] = entry
        if len(entries) > max_length or (entries and request.list_version == 0):
            return UpdateStatus.FAILED
        self._entries = entries
        self._version = request.list_version
        return UpdateStatus.ACCEPTED

    def entries(self) -> Mapping[str, AuthorizationData]:
        """The current entries, keyed by case-folded idTag (read-only view)."""
        return MappingProxyType(dict(self._entries))

    def snapshot(self) -> LocalListSnapshot:
        """Version and entries, for restoring after a reboot."""
        return LocalListSnapshot(version=self._version, entries=tuple(self._entries.values()))


# --- the decision ------------------------------------------------------------------------------


class _BoolSource(Protocol):
    def get_bool(self, key: str) -> bool: ...


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The configuration keys that govern authorization (defaults are the store's defaults)."""

    local_pre_authorize: bool = False
    local_authorize_offline: bool = True
    allow_offline_tx_for_unknown_id: bool = False
    authorization_cache_enabled: bool = True
    local_auth_list_enabled: bool = True

    @classmethod
    def from_configuration(cls, store: _BoolSource) -> AuthSettings:
        """Read the five keys from a :class:`~simulator.machines.configuration.ConfigurationStore`
        (anything with ``get_bool``)."""
        return cls(
            local_pre_authorize=store.get_bool("LocalPreAuthorize"),
            local_authorize_offline=store.get_bool("LocalAuthorizeOffline"),
            allow_offline_tx_for_unknown_id=store.get_bool("AllowOfflineTxForUnknownId"),
            authorization_cache_enabled=store.get_bool("AuthorizationCacheEnabled"),
            local_auth_list_enabled=store.get_bool("LocalAuthListEnabled"),
        )


class Decision(StrEnum):
    """What to do with a presented idTag."""

    ACCEPT = "accept"  # authorized locally: start without asking
    REJECT = "reject"  # refused locally: no transaction
    ASK = "ask"  # send Authorize and act on the answer
    START_OFFLINE = "start_offline"  # offline and unknown, but unknown ids may start


class Source(StrEnum):
    """Where the entry that decided came from."""

    LOCAL_LIST = "local_list"
    CACHE = "cache"
    NONE = "none"


class AuthOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The decision, the entry that led to it (as it stands now), and where that came from."""

    decision: Decision
    source: Source = Source.NONE
    info: IdTagInfo | None = None


def find_entry(
    id_tag: str,
    *,
    wall: dt.datetime,
    settings: AuthSettings,
    local_list: LocalAuthList,
    cache: AuthorizationCache,
) -> tuple[IdTagInfo | None, Source]:
    """The entry for ``id_tag``: the local list first (when enabled), then the cache (when
    enabled)."""
    if settings.local_auth_list_enabled:
        info = local_list.lookup(id_tag, wall)
        if info is not None:
            return info, Source.LOCAL_LIST
    if settings.authorization_cache_enabled:
        info = cache.lookup(id_tag, wall)
        if info is not None:
            return info, Source.CACHE
    return None, Source.NONE


def decide(
    id_tag: str,
    *,
    online: bool,
    wall: dt.datetime,
    settings: AuthSettings,
    local_list: LocalAuthList,
    cache: AuthorizationCache,
) -> AuthOutcome:
    """Decide what to do with ``id_tag`` presented at ``wall``.

    Online: ACCEPT if ``LocalPreAuthorize`` and a valid local entry; otherwise ASK (an invalid
    local entry is asked about too: the central system may know better). Offline: REJECT for a
    known entry that is not valid; ACCEPT for a valid one if ``LocalAuthorizeOffline``; otherwise
    (unknown, or local authorization off) START_OFFLINE if ``AllowOfflineTxForUnknownId``, else
    REJECT.
    """
    info, source = find_entry(
        id_tag, wall=wall, settings=settings, local_list=local_list, cache=cache
    )
    valid = info is not None and info.status == AuthorizationStatus.ACCEPTED
    if online:
        if valid and settings.local_pre_authorize:
            return AuthOutcome(decision=Decision.ACCEPT, source=source, info=info)
        return AuthOutcome(decision=Decision.ASK, source=source, info=info)
    if info is not None and not valid:
        return AuthOutcome(decision=Decision.REJECT, source=source, info=info)
    if valid and settings.local_authorize_offline:
        return AuthOutcome(decision=Decision.ACCEPT, source=source, info=info)
    if settings.allow_offline_tx_for_unknown_id:
        return AuthOutcome(decision=Decision.START_OFFLINE, source=source, info=info)
    return AuthOutcome(decision=Decision.REJECT, source=source, info=info)


def remember(
    cache: AuthorizationCache, settings: AuthSettings, id_tag: str, info: IdTagInfo
) -> bool:
    """Record an ``IdTagInfo`` from the central system (Authorize, StartTransaction or
    StopTransaction result) if the cache is enabled; return whether it was recorded."""
    if not settings.authorization_cache_enabled:
        return False
    cache.update(id_tag, info)
    return True
