"""The configuration store of one charge point: every standard OCPP 1.6 key, typed and validated.

:data:`KEYS` is the table of known keys (OCPP 1.6 core spec §9): type, access, default, range
and whether a change needs a reboot. :class:`ConfigurationStore` holds the values as wire
strings (``"true"``, ``"60"``, comma lists), answers GetConfiguration
(:meth:`~ConfigurationStore.get`) and ChangeConfiguration (:meth:`~ConfigurationStore.change`),
gives the charger typed getters (a value is parsed once, when it is set, so the charger may
read it on every step), and exports a :class:`ConfigurationSnapshot` that survives a reboot.
``AuthorizationKey`` is write-only: its value never leaves the store except in the snapshot
(which must never reach the ledger); use :func:`redact` for anything logged.

Reboot policy: every key takes effect at once (Accepted), including ``WebSocketPingInterval``,
which the transport reads before each ping, and ``SecurityProfile``, after which the charger
reconnects with the new profile as the security whitepaper requires (raising it to 1 or 2 is
Rejected until an ``AuthorizationKey`` is set). A fleet can name keys that
answer RebootRequired instead (``reboot_required_keys``): the new value is then held pending and
applied by :meth:`~ConfigurationStore.reboot`, to exercise that path of a CSMS.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.machines.measurands import (
    MeasurandSpec,
    UnsupportedMeasurand,
    parse_measurand_list,
)
from simulator.ocpp.v16 import ConfigurationStatus, KeyValue

#: What GetConfiguration may put in a value (CiString500).
MAX_VALUE_LENGTH: Final = 500
#: Shown instead of a write-only value in anything logged.
REDACTED: Final = "***"
#: The feature profiles this simulator implements (the default ``SupportedFeatureProfiles``).
DEFAULT_FEATURE_PROFILES: Final = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
_PHASE_ROTATIONS: Final = frozenset(
    {"NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR"}
)
_RATE_UNITS: Final = frozenset({"Current", "Power"})
#: A decimal integer as OCPP peers write it: ASCII digits, optional sign (``int()`` alone would
#: also take ``1_000`` and non-ASCII digits such as ``٣``).
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


class KeyType(StrEnum):
    """How a key's value is written: ``true``/``false``, a decimal integer, a comma-separated
    list, or free text."""

    BOOL = "bool"
    INT = "int"
    CSL = "csl"
    STRING = "string"


class Access(StrEnum):
    """Who may touch a key over OCPP: read-only, read-write, or write-only (never read back)."""

    R = "R"
    RW = "RW"
    W = "W"


class KeySpec(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration key. ``default`` is the wire string; ``minimum``/``maximum`` bound INT
    keys; ``check`` further validates a normalized value (returns an error text or None);
    ``derived`` keys are set by the store from the charger's facts, not by fleet overrides."""

    name: str
    type: KeyType
    access: Access
    default: str
    minimum: int | None = None
    maximum: int | None = None
    reboot_required: bool = False
    derived: bool = False
    check: Callable[[str], str | None] | None = None


def _check_measurands(value: str) -> str | None:
    try:
        parse_measurand_list(value)
    except UnsupportedMeasurand as exc:
        return str(exc)
    return None


def _check_phase_rotation(value: str) -> str | None:
    for item in _csl(value):
        connector, dot, rotation = item.rpartition(".")
        if dot and not connector.isdigit():
            return f"bad connector id in {item!r}"
        if rotation not in _PHASE_ROTATIONS:
            return f"unknown phase rotation in {item!r}"
    return None


def _check_rate_units(value: str) -> str | None:
    bad = [item for item in _csl(value) if item not in _RATE_UNITS]
    return f"unknown charging rate units {bad}" if bad else None


def _check_authorization_key(value: str) -> str | None:
    return None if len(value) >= 16 else "AuthorizationKey must be at least 16 characters"


def _key(
    name: str,
    type_: KeyType,
    access: Access,
    default: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    derived: bool = False,
    check: Callable[[str], str | None] | None = None,
) -> KeySpec:
    return KeySpec(
        name=name,
        type=type_,
        access=access,
        default=default,
        minimum=minimum,
        maximum=maximum,
        derived=derived,
        check=check,
    )


_B, _I, _C, _T = KeyType.BOOL, KeyType.INT, KeyType.CSL, KeyType.STRING
_R, _RW, _W = Access.R, Access.RW, Access.W

_DAY: Final = 86_400
"""Seconds: the longest interval a charger takes (sampling, timeouts, retries, pings)."""
_WEEK: Final = 7 * _DAY
"""Seconds: the longest heartbeat interval a charger takes."""
_COUNT: Final = 1_000
"""The largest count or length a charger takes (attempts, retries, list lengths, levels)."""
_INT32: Final = 2**31 - 1
"""The schemas' integer: the largest energy (Wh) or list size a charger takes."""

#: Every key the store knows, in GetConfiguration order. Every integer key has a range, so that
#: nothing a central system sets can overflow a deadline or a counter: intervals are 0 to a day
#: (``HeartbeatInterval`` a week; ``ClockAlignedDataInterval`` is aligned to midnight), counts
#: and lengths 0 (or 1) to 1,000, energies and list sizes within int32;
#: ``TransactionMessageAttempts`` is at least 1; ``SecurityProfile`` is 0-3 and may only rise.
KEYS: Final[Mapping[str, KeySpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            # Core
            _key("AllowOfflineTxForUnknownId", _B, _RW, "false"),
            _key("AuthorizationCacheEnabled", _B, _RW, "true"),
            _key("AuthorizeRemoteTxRequests", _B, _RW, "true"),
            _key("ClockAlignedDataInterval", _I, _RW, "900", minimum=0, maximum=86400),
            _key("ConnectionTimeOut", _I, _RW, "120", minimum=0, maximum=_DAY),
            _key("ConnectorPhaseRotation", _C, _RW, "NotApplicable", check=_check_phase_rotation),
            _key("GetConfigurationMaxKeys", _I, _R, "0", minimum=1, maximum=_COUNT, derived=True),
            _key("HeartbeatInterval", _I, _RW, "300", minimum=0, maximum=_WEEK),
            _key("LocalAuthorizeOffline", _B, _RW, "true"),
            _key("LocalPreAuthorize", _B, _RW, "false"),
            _key("MaxEnergyOnInvalidId", _I, _RW, "0", minimum=0, maximum=_INT32),
            _key(
                "MeterValuesAlignedData",
                _C,
                _RW,
                "Energy.Active.Import.Register",
                check=_check_measurands,
            ),
            _key("MeterValuesAlignedDataMaxLength", _I, _R, "20", minimum=0, maximum=_COUNT),
            _key(
                "MeterValuesSampledData",
                _C,
                _RW,
                "Energy.Active.Import.Register",
                check=_check_measurands,
            ),
            _key("MeterValuesSampledDataMaxLength", _I, _R, "20", minimum=0, maximum=_COUNT),
            _key("MeterValueSampleInterval", _I, _RW, "60", minimum=0, maximum=_DAY),
            _key("MinimumStatusDuration", _I, _RW, "0", minimum=0, maximum=_DAY),
            _key("NumberOfConnectors", _I, _R, "1", minimum=1, maximum=_COUNT, derived=True),
            _key("ResetRetries", _I, _RW, "1", minimum=0, maximum=_COUNT),
            _key("StopTransactionOnEVSideDisconnect", _B, _RW, "true"),
            _key("StopTransactionOnInvalidId", _B, _RW, "true"),
            _key("StopTxnAlignedData", _C, _RW, "", check=_check_measurands),
            _key("StopTxnAlignedDataMaxLength", _I, _R, "20", minimum=0, maximum=_COUNT),
            _key("StopTxnSampledData", _C, _RW, "", check=_check_measurands),
            _key("StopTxnSampledDataMaxLength", _I, _R, "20", minimum=0, maximum=_COUNT),
            _key(
                "SupportedFeatureProfiles",
                _C,
                _R,
                ",".join(DEFAULT_FEATURE_PROFILES),
                derived=True,
            ),
            _key("TransactionMessageAttempts", _I, _RW, "3", minimum=1, maximum=_COUNT),
            _key("TransactionMessageRetryInterval", _I, _RW, "60", minimum=0, maximum=_DAY),
            _key("UnlockConnectorOnEVSideDisconnect", _B, _RW, "true"),
            _key("WebSocketPingInterval", _I, _RW, "0", minimum=0, maximum=_DAY),
            # Local authorization list management
            _key("LocalAuthListEnabled", _B, _RW, "true"),
            _key("LocalAuthListMaxLength", _I, _R, "1000", minimum=0, maximum=_INT32),
            _key("SendLocalListMaxLength", _I, _R, "100", minimum=0, maximum=_INT32),
            # Reservation
            _key("ReserveConnectorZeroSupported", _B, _R, "false"),
            # Smart charging
            _key("ChargeProfileMaxStackLevel", _I, _R, "10", minimum=0, maximum=_COUNT),
            _key(
                "ChargingScheduleAllowedChargingRateUnit",
                _C,
                _R,
                "Current,Power",
                check=_check_rate_units,
            ),
            _key("ChargingScheduleMaxPeriods", _I, _R, "24", minimum=1, maximum=_COUNT),
            _key("MaxChargingProfilesInstalled", _I, _R, "10", minimum=1, maximum=_COUNT),
            # Security whitepaper
            _key("SecurityProfile", _I, _RW, "0", minimum=0, maximum=3),
            _key("AuthorizationKey", _T, _W, "", check=_check_authorization_key),
            _key("CpoName", _T, _RW, ""),
            _key("CertificateSignedMaxChainSize", _I, _R, "10000", minimum=1, maximum=10000),
            _key("CertificateStoreMaxLength", _I, _R, "10", minimum=1, maximum=_COUNT),
        )
    }
)

#: Measurand-list keys and the read-only key bounding their number of entries.
_LIST_LIMITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "MeterValuesAlignedData": "MeterValuesAlignedDataMaxLength",
        "MeterValuesSampledData": "MeterValuesSampledDataMaxLength",
        "StopTxnAlignedData": "StopTxnAlignedDataMaxLength",
        "StopTxnSampledData": "StopTxnSampledDataMaxLength",
    }
)


class ConfigurationError(ValueError):
    """A configuration value given at start-up (fleet file or snapshot) is not acceptable."""


class UnknownConfigurationKey(ConfigurationError):
    """A key the store does not know; ``key`` names it."""

    def __init__(self, key: str) -> None:
        super().__init__(f"unknown OCPP configuration key {key!r}")
        self.key = key


class InvalidConfigurationValue(ConfigurationError):
    """A known key with a value it cannot take; ``key``, ``value`` and ``reason`` say why."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        shown = REDACTED if _is_secret(key) else value
        super().__init__(f"configuration key {key!r} cannot be {shown!r}: {reason}")
        self.key = key
        self.value = shown
        self.reason = reason


class ConfigurationSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The stored values (wire strings) and changes pending a reboot. Contains
    ``AuthorizationKey`` in clear: keep it in memory, never in the ledger or the logs."""

    values: dict[str, str]
    pending: dict[str, str] = {}


def _is_secret(key: str) -> bool:
    spec = KEYS.get(key)
    return spec is not None and spec.access == Access.W


def redact(key: str, value: str) -> str:
    """The value as it may appear in events and logs: :data:`REDACTED` for write-only keys."""
    return REDACTED if _is_secret(key) else value


def _csl(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def to_wire(value: str | int | bool) -> str:
    """A Python value as a configuration string (``True`` → ``"true"``, ``60`` → ``"60"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize(spec: KeySpec, value: str) -> str:
    """Check ``value`` against ``spec`` and return its canonical wire form (booleans lower case,
    integers without sign or padding, lists without spaces); raises
    :class:`InvalidConfigurationValue`. Range, checks and list length are all applied here except
    the ``*MaxLength`` bounds, which depend on the store."""
    text = value.strip()
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidConfigurationValue(spec.name, value, "longer than 500 characters")
    match spec.type:
        case KeyType.BOOL:
            if text.lower() not in ("true", "false"):
                raise InvalidConfigurationValue(spec.name, value, "expected true or false")
            text = text.lower()
        case KeyType.INT:
            if _INTEGER.fullmatch(text) is None:
                raise InvalidConfigurationValue(spec.name, value, "expected an integer")
            number = int(text, 10)
            if spec.minimum is not None and number < spec.minimum:
                raise InvalidConfigurationValue(spec.name, value, f"below {spec.minimum}")
            if spec.maximum is not None and number > spec.maximum:
                raise InvalidConfigurationValue(spec.name, value, f"above {spec.maximum}")
            text = str(number)
        case KeyType.CSL:
            text = ",".join(_csl(text))
        case KeyType.STRING:
            text = value
    if spec.check is not None:
        problem = spec.check(text)
        if problem is not None:
            raise InvalidConfigurationValue(spec.name, value, problem)
    return text


class ConfigurationStore:
    """The configuration of one charge point.

    ``overrides`` (from the fleet file) replace defaults; any key, read-only ones included, may be
    overridden except the derived ones (``NumberOfConnectors`` comes from ``number_of_connectors``,
    ``SupportedFeatureProfiles`` from ``feature_profiles``, ``GetConfigurationMaxKeys`` defaults
    to the number of keys). ``restored`` brings back a :meth:`snapshot` after a reboot: its values
    win over overrides, and its pending changes are applied. Raises
    :class:`UnknownConfigurationKey` / :class:`InvalidConfigurationValue` (both ``ValueError``)
    for bad overrides. ``reboot_required_keys`` answer RebootRequired to ChangeConfiguration.
    """

    def __init__(
        self,
        overrides: Mapping[str, str | int | bool] | None = None,
        *,
        number_of_connectors: int,
        feature_profiles: Sequence[str] = DEFAULT_FEATURE_PROFILES,
        reboot_required_keys: Collection[str] = (),
        restored: ConfigurationSnapshot | None = None,
    ) -> None:
        if number_of_connectors < 1:
            raise InvalidConfigurationValue(
                "NumberOfConnectors", str(number_of_connectors), "at least one connector"
            )
        for key in reboot_required_keys:
            if key not in KEYS:
                raise UnknownConfigurationKey(key)
        self._reboot_required = frozenset(reboot_required_keys)
        self._values: dict[str, str] = {}
        """Every current value as its wire string."""
        self._ints: dict[str, int] = {}
        self._bools: dict[str, bool] = {}
        self._measurands: dict[str, tuple[MeasurandSpec, ...]] = {}
        """The INT and BOOL keys' values and the measurand lists, parsed by :meth:`_set`."""
        for name, spec in KEYS.items():
            self._set(name, spec.default)
        self._set("NumberOfConnectors", str(number_of_connectors))
        self._set("SupportedFeatureProfiles", ",".join(feature_profiles))
        self._set("GetConfigurationMaxKeys", str(len(KEYS)))
        self._pending: dict[str, str] = {}
        for key, raw in (overrides or {}).items():
            spec = self._spec(key)
            if spec.derived and key != "GetConfigurationMaxKeys":
                raise InvalidConfigurationValue(
                    key, to_wire(raw), "set by the charger itself, not by configuration"
                )
            self._set(key, normalize(spec, to_wire(raw)))
        if restored is not None:
            for key, raw in {**restored.values, **restored.pending}.items():
                spec = self._spec(key)
                if spec.access == Access.W and raw == "":
                    # A write-only key never set (AuthorizationKey's default) stays unset.
                    self._set(key, raw)
                elif not spec.derived or key == "GetConfigurationMaxKeys":
                    self._set(key, normalize(spec, raw))
        for key in _LIST_LIMITS:
            problem = self._list_length_problem(key, self._values[key])
            if problem is not None:
                raise InvalidConfigurationValue(key, self._values[key], problem)

    def _set(self, key: str, text: str) -> None:
        """Make ``text`` (a checked, normalized wire value) the current value of ``key``, and
        keep its parsed form for the typed getters. Every change of a current value goes
        through here, so a getter never answers with a value that has since changed."""
        self._values[key] = text
        match KEYS[key].type:
            case KeyType.INT:
                self._ints[key] = int(text)
            case KeyType.BOOL:
                self._bools[key] = text == "true"
        if key in _LIST_LIMITS:
            self._measurands[key] = parse_measurand_list(text)

    @staticmethod
    def _spec(key: str) -> KeySpec:
        spec = KEYS.get(key)
        if spec is None:
            raise UnknownConfigurationKey(key)
        return spec

    def _list_length_problem(self, key: str, value: str) -> str | None:
        limit_key = _LIST_LIMITS.get(key)
        if limit_key is None:
            return None
        limit = self._ints[limit_key]
        count = len(_csl(value))
        return f"{count} entries, at most {limit}" if count > limit else None

    # --- OCPP operations ---------------------------------------------------------------------

    @property
    def max_keys(self) -> int:
        """``GetConfigurationMaxKeys``: how many requested keys one GetConfiguration answers."""
        return self._ints["GetConfigurationMaxKeys"]

    def get(self, keys: Sequence[str] | None = None) -> tuple[list[KeyValue], list[str]]:
        """Answer GetConfiguration: (configurationKey, unknownKey).

        ``None`` or empty asks for every key. Only the first ``GetConfigurationMaxKeys`` distinct
        requested keys are answered; the rest are ignored. Write-only keys are listed without a
        value. Values are the current ones (a change pending a reboot is not shown yet).
        """
        if not keys:
            return [self._key_value(name) for name in KEYS], []
        known: list[KeyValue] = []
        unknown: list[str] = []
        for key in list(dict.fromkeys(keys))[: self.max_keys]:
            if key in KEYS:
                known.append(self._key_value(key))
            else:
                unknown.append(key)
        return known, unknown

    def _key_value(self, key: str) -> KeyValue:
        spec = KEYS[key]
        value = None if spec.access == Access.W else self._values[key][:MAX_VALUE_LENGTH]
        return KeyValue(key=key, readonly=spec.access == Access.R, value=value)

    def change(self, key: str, value: str) -> ConfigurationStatus:
        """Answer ChangeConfiguration and apply it: NotSupported for an unknown key; Rejected for
        a read-only key, a bad format or range, an unsupported measurand, a list longer than its
        ``*MaxLength`` or a lower ``SecurityProfile`` (nothing changes); RebootRequired for the
        keys named at construction (the value waits for :meth:`reboot`); otherwise Accepted."""
        spec = KEYS.get(key)
        if spec is None:
            return ConfigurationStatus.NOT_SUPPORTED
        if spec.access == Access.R:
            return ConfigurationStatus.REJECTED
        try:
            text = normalize(spec, value)
        except InvalidConfigurationValue:
            return ConfigurationStatus.REJECTED
        if self._list_length_problem(key, text) is not None:
            return ConfigurationStatus.REJECTED
        if key == "SecurityProfile" and not self._may_set_security_profile(int(text)):
            return ConfigurationStatus.REJECTED
        if key in self._reboot_required:
            self._pending[key] = text
            return ConfigurationStatus.REBOOT_REQUIRED
        self._set(key, text)
        return ConfigurationStatus.ACCEPTED

    def _may_set_security_profile(self, profile: int) -> bool:
        """The profile may only rise, and profiles 1 and 2 (HTTP Basic) need an
        ``AuthorizationKey`` set first."""
        if profile < self.get_int("SecurityProfile"):
            return False
        return profile not in (1, 2) or bool(self._values["AuthorizationKey"])

    def set_internal(self, key: str, value: str | int | bool) -> None:
        """Set a key as the charger itself (any access, no reboot), e.g. ``HeartbeatInterval``
        from a BootNotification ``interval``; raises like the constructor on bad values."""
        spec = self._spec(key)
        text = normalize(spec, to_wire(value))
        problem = self._list_length_problem(key, text)
        if problem is not None:
            raise InvalidConfigurationValue(key, text, problem)
        self._set(key, text)

    def reboot(self) -> tuple[str, ...]:
        """Apply the changes pending a reboot; return the keys that changed."""
        applied = tuple(self._pending)
        for key, text in self._pending.items():
            self._set(key, text)
        self._pending.clear()
        return applied

    # --- typed getters -----------------------------------------------------------------------

    def get_str(self, key: str) -> str:
        """The current wire value of ``key`` (including write-only ones: for the charger only)."""
        self._spec(key)
        return self._values[key]

    def get_int(self, key: str) -> int:
        """The current value of an INT key; raises ``TypeError`` for another type."""
        value = self._ints.get(key)
        if value is None:
            self._spec(key)
            raise TypeError(f"{key} is not an integer key")
        return value

    def get_bool(self, key: str) -> bool:
        """The current value of a BOOL key; raises ``TypeError`` for another type."""
        value = self._bools.get(key)
        if value is None:
            self._spec(key)
            raise TypeError(f"{key} is not a boolean key")
        return value

    def get_measurands(self, key: str) -> tuple[MeasurandSpec, ...]:
        """The entries of a measurand-list key (``MeterValuesSampledData``,
        ``MeterValuesAlignedData``, ``StopTxnSampledData``, ``StopTxnAlignedData``); the store
        only ever holds supported ones. Raises ``TypeError`` for another key."""
        value = self._measurands.get(key)
        if value is None:
            self._spec(key)
            raise TypeError(f"{key} is not a measurand list key")
        return value

    def get_csl(self, key: str) -> tuple[str, ...]:
        """The entries of a CSL key (empty tuple for ``""``); raises ``TypeError`` otherwise."""
        if self._spec(key).type != KeyType.CSL:
            raise TypeError(f"{key} is not a comma-separated list key")
        return tuple(_csl(self._values[key]))

    # --- views -------------------------------------------------------------------------------

    def pending(self) -> Mapping[str, str]:
        """Changes accepted with RebootRequired, waiting for :meth:`reboot` (read-only view)."""
        return MappingProxyType(dict(self._pending))

    def redacted(self) -> dict[str, str]:
        """Every current value, write-only ones replaced by :data:`REDACTED` (safe to log)."""
        return {key: redact(key, value) for key, value in self._values.items()}

    def entries(self) -> tuple[tuple[str, str | None, bool], ...]:
        """Every key as ``(key, value, readonly)``, in the catalog's order, the value of a
        write-only key (``AuthorizationKey``) withheld as None (safe to show; a read)."""
        return tuple((key, None if _is_secret(key) else value, KEYS[key].access == Access.R)
                     for key, value in self._values.items())

    def snapshot(self) -> ConfigurationSnapshot:
        """Every value and pending change, for restoring after a reboot (contains secrets)."""
        return ConfigurationSnapshot(values=dict(self._values), pending=dict(self._pending))
