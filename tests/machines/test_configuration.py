"""The configuration store: every key of the 1.6 core spec §9, GetConfiguration,
ChangeConfiguration, validation, RebootRequired, the write-only AuthorizationKey and per-group
overrides."""

from __future__ import annotations

import pytest

from simulator.machines.configuration import (
    KEYS,
    REDACTED,
    Access,
    ConfigurationSnapshot,
    ConfigurationStore,
    InvalidConfigurationValue,
    KeyType,
    UnknownConfigurationKey,
    redact,
)
from simulator.ocpp.v16 import ConfigurationStatus, GetConfigurationResponse, encode_payload
from tests.oracle import ORACLE

ACCEPTED = ConfigurationStatus.ACCEPTED
REJECTED = ConfigurationStatus.REJECTED
NOT_SUPPORTED = ConfigurationStatus.NOT_SUPPORTED
REBOOT_REQUIRED = ConfigurationStatus.REBOOT_REQUIRED
SECRET = "0123456789abcdef-secret"

# OCPP 1.6 core spec §9, transcribed independently of the module: key -> (type, access).
# "R/RW" keys may be either; the store makes them RW.
SPEC_KEYS: dict[str, tuple[str, str]] = {
    "AllowOfflineTxForUnknownId": ("bool", "RW"),
    "AuthorizationCacheEnabled": ("bool", "RW"),
    "AuthorizeRemoteTxRequests": ("bool", "R/RW"),
    "ClockAlignedDataInterval": ("int", "RW"),
    "ConnectionTimeOut": ("int", "RW"),
    "ConnectorPhaseRotation": ("csl", "RW"),
    "GetConfigurationMaxKeys": ("int", "R"),
    "HeartbeatInterval": ("int", "RW"),
    "LocalAuthorizeOffline": ("bool", "RW"),
    "LocalPreAuthorize": ("bool", "RW"),
    "MaxEnergyOnInvalidId": ("int", "RW"),
    "MeterValuesAlignedData": ("csl", "RW"),
    "MeterValuesSampledData": ("csl", "RW"),
    "MeterValueSampleInterval": ("int", "RW"),
    "MinimumStatusDuration": ("int", "RW"),
    "NumberOfConnectors": ("int", "R"),
    "ResetRetries": ("int", "RW"),
    "StopTransactionOnEVSideDisconnect": ("bool", "RW"),
    "StopTransactionOnInvalidId": ("bool", "RW"),
    "StopTxnAlignedData": ("csl", "RW"),
    "StopTxnSampledData": ("csl", "RW"),
    "SupportedFeatureProfiles": ("csl", "R"),
    "TransactionMessageAttempts": ("int", "RW"),
    "TransactionMessageRetryInterval": ("int", "RW"),
    "UnlockConnectorOnEVSideDisconnect": ("bool", "RW"),
    "WebSocketPingInterval": ("int", "RW"),
    "LocalAuthListEnabled": ("bool", "RW"),
    "LocalAuthListMaxLength": ("int", "R"),
    "SendLocalListMaxLength": ("int", "R"),
    "ReserveConnectorZeroSupported": ("bool", "R"),
    "ChargeProfileMaxStackLevel": ("int", "R"),
    "ChargingScheduleMaxPeriods": ("int", "R"),
    "MaxChargingProfilesInstalled": ("int", "R"),
    "ChargingScheduleAllowedChargingRateUnit": ("csl", "R"),
    "SecurityProfile": ("int", "RW"),
    "AuthorizationKey": ("string", "W"),
    "CpoName": ("string", "RW"),
}

# The "typical" column of §5 where it names a value.
SPEC_DEFAULTS: dict[str, str] = {
    "AllowOfflineTxForUnknownId": "false",
    "AuthorizationCacheEnabled": "true",
    "AuthorizeRemoteTxRequests": "true",
    "ClockAlignedDataInterval": "900",
    "ConnectionTimeOut": "120",
    "ConnectorPhaseRotation": "NotApplicable",
    "LocalAuthorizeOffline": "true",
    "LocalPreAuthorize": "false",
    "MeterValuesAlignedData": "Energy.Active.Import.Register",
    "MeterValuesSampledData": "Energy.Active.Import.Register",
    "MeterValueSampleInterval": "60",
    "MinimumStatusDuration": "0",
    "ResetRetries": "1",
    "StopTransactionOnEVSideDisconnect": "true",
    "StopTransactionOnInvalidId": "true",
    "StopTxnAlignedData": "",
    "StopTxnSampledData": "",
    "SupportedFeatureProfiles": "Core,FirmwareManagement,LocalAuthListManagement,Reservation,"
    "SmartCharging,RemoteTrigger",
    "TransactionMessageAttempts": "3",
    "TransactionMessageRetryInterval": "60",
    "UnlockConnectorOnEVSideDisconnect": "true",
    "WebSocketPingInterval": "0",
    "ReserveConnectorZeroSupported": "false",
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "SecurityProfile": "0",
}

READ_ONLY = sorted(k for k, (_, access) in SPEC_KEYS.items() if access == "R")


def store(**kwargs: object) -> ConfigurationStore:
    kwargs.setdefault("number_of_connectors", 2)
    return ConfigurationStore(**kwargs)  # type: ignore[arg-type]


def response_errors(s: ConfigurationStore, keys: list[str] | None = None) -> list[str]:
    known, unknown = s.get(keys)
    payload = encode_payload(
        GetConfigurationResponse(configuration_key=tuple(known), unknown_key=tuple(unknown) or None)
    )
    return ORACLE.errors("GetConfiguration", "response", payload)


# --- the key table ---------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "type_", "access"), [(k, *v) for k, v in SPEC_KEYS.items()])
def test_every_spec_key_has_its_type_and_access(key: str, type_: str, access: str) -> None:
    spec = KEYS[key]
    assert spec.type == KeyType(type_)
    assert spec.access.value in access.split("/")


@pytest.mark.parametrize(("key", "default"), sorted(SPEC_DEFAULTS.items()))
def test_typical_defaults(key: str, default: str) -> None:
    assert store().get_str(key) == default


def test_get_all_lists_every_key_readable_as_its_type() -> None:
    s = store()
    known, unknown = s.get()
    assert unknown == []
    by_key = {kv.key: kv for kv in known}
    assert set(SPEC_KEYS) <= set(by_key)
    assert len(by_key) == len(known) == len(KEYS)
    assert s.max_keys >= len(known)
    for key, (type_, access) in SPEC_KEYS.items():
        kv = by_key[key]
        assert kv.readonly is (access == "R"), key
        if access == "W":
            assert kv.value is None
            continue
        assert kv.value is not None
        match type_:
            case "bool":
                assert kv.value in ("true", "false")
                assert s.get_bool(key) is (kv.value == "true")
            case "int":
                assert kv.value.isdigit()
                assert s.get_int(key) == int(kv.value)
            case "csl":
                assert s.get_csl(key) == tuple(x for x in kv.value.split(",") if x)
    assert response_errors(s) == []


def test_derived_keys_come_from_the_charger() -> None:
    s = store(number_of_connectors=3, feature_profiles=("Core", "RemoteTrigger"))
    assert s.get_int("NumberOfConnectors") == 3
    assert s.get_csl("SupportedFeatureProfiles") == ("Core", "RemoteTrigger")
    with pytest.raises(InvalidConfigurationValue):
        store(number_of_connectors=0)


@pytest.mark.parametrize(
    ("getter", "key"),
    [("get_int", "LocalPreAuthorize"), ("get_bool", "HeartbeatInterval"),
     ("get_csl", "CpoName"), ("get_bool", "MeterValuesSampledData")],
)
def test_typed_getter_refuses_another_type(getter: str, key: str) -> None:
    with pytest.raises(TypeError):
        getattr(store(), getter)(key)


# --- ChangeConfiguration -----------------------------------------------------------------------


@pytest.mark.parametrize("key", READ_ONLY)
def test_read_only_keys_are_rejected_and_unchanged(key: str) -> None:
    s = store()
    before = s.get_str(key)
    # Even a well-formed value (the current one, or another valid one) is refused.
    for value in (before, "5" if SPEC_KEYS[key][0] == "int" else before):
        assert s.change(key, value) == REJECTED
    assert s.get_str(key) == before


@pytest.mark.parametrize(
    "key", ["Foo", "HeartbeatIntervalX", "", "MeterValuesSampledDataMaxLengthX", "x" * 50]
)
def test_unknown_keys_are_not_supported(key: str) -> None:
    s = store()
    before = s.snapshot()
    assert s.change(key, "1") == NOT_SUPPORTED
    assert s.snapshot() == before


CHANGES = [
    # key, value, expected status, stored value afterwards (None: unchanged)
    ("HeartbeatInterval", "30", ACCEPTED, "30"),
    ("HeartbeatInterval", " 45 ", ACCEPTED, "45"),
    ("HeartbeatInterval", "007", ACCEPTED, "7"),
    ("HeartbeatInterval", "0", ACCEPTED, "0"),
    ("HeartbeatInterval", "-1", REJECTED, None),
    ("HeartbeatInterval", "abc", REJECTED, None),
    ("HeartbeatInterval", "", REJECTED, None),
    ("HeartbeatInterval", "1.5", REJECTED, None),
    ("HeartbeatInterval", "1e3", REJECTED, None),
    ("HeartbeatInterval", "1_000", REJECTED, None),
    ("HeartbeatInterval", "\u0663", REJECTED, None),  # ARABIC-INDIC DIGIT THREE
    ("HeartbeatInterval", "true", REJECTED, None),
    ("WebSocketPingInterval", "-5", REJECTED, None),
    ("WebSocketPingInterval", "20", ACCEPTED, "20"),
    ("ClockAlignedDataInterval", "86400", ACCEPTED, "86400"),
    ("ClockAlignedDataInterval", "86401", REJECTED, None),
    ("TransactionMessageAttempts", "0", REJECTED, None),
    ("TransactionMessageAttempts", "5", ACCEPTED, "5"),
    ("TransactionMessageRetryInterval", "-60", REJECTED, None),
    ("MaxEnergyOnInvalidId", "5000", ACCEPTED, "5000"),
    ("LocalPreAuthorize", "true", ACCEPTED, "true"),
    ("LocalPreAuthorize", "TRUE", ACCEPTED, "true"),
    ("AllowOfflineTxForUnknownId", "False", ACCEPTED, "false"),
    ("AuthorizationCacheEnabled", "false", ACCEPTED, "false"),
    ("LocalPreAuthorize", "1", REJECTED, None),
    ("LocalPreAuthorize", "yes", REJECTED, None),
    ("LocalPreAuthorize", "", REJECTED, None),
    ("StopTransactionOnInvalidId", "0", REJECTED, None),
    # measurand lists
    ("MeterValuesSampledData", "Voltage.L1, SoC", ACCEPTED, "Voltage.L1,SoC"),
    ("MeterValuesSampledData", "Power.Active.Import,Current.Import.N", ACCEPTED,
     "Power.Active.Import,Current.Import.N"),
    ("MeterValuesSampledData", "Foo", REJECTED, None),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Foo", REJECTED, None),
    ("MeterValuesSampledData", "energy.active.import.register", REJECTED, None),
    ("MeterValuesSampledData", "SoC.L1", REJECTED, None),  # a phase SoC cannot have
    ("MeterValuesSampledData", "Voltage.L4", REJECTED, None),
    ("MeterValuesAlignedData", "Energy.Active.Import.Interval", ACCEPTED,
     "Energy.Active.Import.Interval"),
    ("MeterValuesAlignedData", "Temperature.Body", REJECTED, None),
    ("StopTxnSampledData", "", ACCEPTED, ""),
    ("StopTxnSampledData", "Energy.Active.Import.Register", ACCEPTED,
     "Energy.Active.Import.Register"),
    ("StopTxnAlignedData", "Bogus.Measurand", REJECTED, None),
    ("MeterValuesSampledData", ",".join(["Voltage"] * 21), REJECTED, None),  # > MaxLength 20
    ("MeterValuesSampledData", ",".join(["Voltage"] * 20), ACCEPTED, ",".join(["Voltage"] * 20)),
    # other lists and strings
    ("ConnectorPhaseRotation", "0.RST,1.RST,2.RTS", ACCEPTED, "0.RST,1.RST,2.RTS"),
    ("ConnectorPhaseRotation", "Unknown", ACCEPTED, "Unknown"),
    ("ConnectorPhaseRotation", "1.RST,2.Foo", REJECTED, None),
    ("ConnectorPhaseRotation", "x.RST", REJECTED, None),
    ("CpoName", "ACME Charging", ACCEPTED, "ACME Charging"),
    ("CpoName", "x" * 500, ACCEPTED, "x" * 500),
    ("CpoName", "x" * 501, REJECTED, None),
    # security profile: 0-3, only upwards, 1 and 2 need an AuthorizationKey first
    ("SecurityProfile", "1", REJECTED, None),
    ("SecurityProfile", "2", REJECTED, None),
    ("SecurityProfile", "3", ACCEPTED, "3"),
    ("SecurityProfile", "4", REJECTED, None),
    ("SecurityProfile", "-1", REJECTED, None),
    ("AuthorizationKey", "short", REJECTED, None),
]


@pytest.mark.parametrize(("key", "value", "status", "stored"), CHANGES)
def test_change_configuration(
    key: str, value: str, status: ConfigurationStatus, stored: str | None
) -> None:
    s = store()
    before = s.snapshot()
    assert s.change(key, value) == status
    if stored is None:
        assert s.snapshot() == before, "a refused change must change nothing"
    else:
        assert s.get_str(key) == stored
        if KEYS[key].access != Access.W:
            [kv], [] = s.get([key])
            assert kv.value == stored
    assert response_errors(s) == []


def test_security_profile_rises_only_and_needs_a_key_for_basic_auth() -> None:
    s = store()
    assert s.change("SecurityProfile", "1") == REJECTED
    assert s.change("AuthorizationKey", SECRET) == ACCEPTED
    assert s.change("SecurityProfile", "1") == ACCEPTED
    assert s.change("SecurityProfile", "2") == ACCEPTED
    assert s.change("SecurityProfile", "1") == REJECTED
    assert s.change("SecurityProfile", "0") == REJECTED
    assert s.change("SecurityProfile", "2") == ACCEPTED  # the same profile again is fine
    assert s.get_int("SecurityProfile") == 2


def test_list_max_length_override_bounds_the_list() -> None:
    s = store(overrides={"MeterValuesSampledDataMaxLength": 2})
    assert s.change("MeterValuesSampledData", "Voltage,SoC,Temperature") == REJECTED
    assert s.change("MeterValuesSampledData", "Voltage,SoC") == ACCEPTED
    with pytest.raises(InvalidConfigurationValue):
        store(overrides={"StopTxnSampledDataMaxLength": 1, "StopTxnSampledData": "SoC,Voltage"})


# --- RebootRequired ------------------------------------------------------------------------------


def test_reboot_required_keys_wait_for_the_reboot() -> None:
    s = store(reboot_required_keys=("HeartbeatInterval", "MeterValuesSampledData"))
    assert s.change("HeartbeatInterval", "42") == REBOOT_REQUIRED
    assert s.change("MeterValuesSampledData", "Foo") == REJECTED  # validated all the same
    assert s.change("HeartbeatInterval", "nope") == REJECTED
    assert s.change("MeterValueSampleInterval", "10") == ACCEPTED  # not named: effective now
    assert s.get_int("HeartbeatInterval") == 300
    [kv], [] = s.get(["HeartbeatInterval"])
    assert kv.value == "300"
    assert dict(s.pending()) == {"HeartbeatInterval": "42"}
    assert s.get_int("MeterValueSampleInterval") == 10

    # The pending change survives a reboot through the snapshot.
    restored = store(restored=s.snapshot())
    assert restored.get_int("HeartbeatInterval") == 42

    assert s.reboot() == ("HeartbeatInterval",)
    assert s.get_int("HeartbeatInterval") == 42
    assert dict(s.pending()) == {}
    assert s.reboot() == ()


def test_reboot_required_key_must_exist() -> None:
    with pytest.raises(UnknownConfigurationKey):
        store(reboot_required_keys=("NoSuchKey",))


def test_default_policy_never_asks_for_a_reboot() -> None:
    s = store()
    for key, (type_, access) in SPEC_KEYS.items():
        if access in ("R", "W"):
            continue
        value = {"bool": "true", "int": "1", "csl": s.get_str(key), "string": "x"}[type_]
        if key == "SecurityProfile":
            value = "3"  # 1 and 2 need an AuthorizationKey first (tested above)
        assert s.change(key, value) == ACCEPTED, key


# --- AuthorizationKey ----------------------------------------------------------------------------


def test_authorization_key_is_write_only() -> None:
    s = store()
    assert s.change("AuthorizationKey", SECRET) == ACCEPTED
    assert s.get_str("AuthorizationKey") == SECRET  # the charger itself can read it
    for keys in (None, [], ["AuthorizationKey"], ["AuthorizationKey", "CpoName"]):
        known, _ = s.get(keys)
        [kv] = [kv for kv in known if kv.key == "AuthorizationKey"]
        assert kv.value is None
        assert kv.readonly is False
        payload = encode_payload(GetConfigurationResponse(configuration_key=tuple(known)))
        assert SECRET.encode() not in payload
        assert ORACLE.errors("GetConfiguration", "response", payload) == []
    assert s.redacted()["AuthorizationKey"] == REDACTED
    assert SECRET not in repr(s.redacted())
    assert redact("AuthorizationKey", SECRET) == REDACTED
    assert redact("CpoName", "ACME") == "ACME"


def test_a_bad_authorization_key_is_not_echoed_in_errors() -> None:
    with pytest.raises(InvalidConfigurationValue) as info:
        store(overrides={"AuthorizationKey": "tooShortSecret"})
    assert "tooShortSecret" not in str(info.value)
    assert info.value.value == REDACTED


# --- GetConfiguration ----------------------------------------------------------------------------


GETS = [
    # requested keys, expected known keys (in order), expected unknown keys
    (["HeartbeatInterval"], ["HeartbeatInterval"], []),
    (["Nope"], [], ["Nope"]),
    (["HeartbeatInterval", "Nope", "AuthorizationKey", "Nada"],
     ["HeartbeatInterval", "AuthorizationKey"], ["Nope", "Nada"]),
    (["HeartbeatInterval", "HeartbeatInterval", "Nope", "Nope"], ["HeartbeatInterval"], ["Nope"]),
    (["NumberOfConnectors", "SupportedFeatureProfiles"],
     ["NumberOfConnectors", "SupportedFeatureProfiles"], []),
]


@pytest.mark.parametrize(("keys", "known", "unknown"), GETS)
def test_get_configuration_with_keys(keys: list[str], known: list[str], unknown: list[str]) -> None:
    s = store()
    got_known, got_unknown = s.get(keys)
    assert [kv.key for kv in got_known] == known
    assert got_unknown == unknown
    assert response_errors(s, keys) == []


def test_get_configuration_answers_at_most_max_keys() -> None:
    s = store(overrides={"GetConfigurationMaxKeys": 2})
    assert s.max_keys == 2
    known, unknown = s.get(["HeartbeatInterval", "Nope", "CpoName"])
    assert [kv.key for kv in known] == ["HeartbeatInterval"]
    assert unknown == ["Nope"]
    # Asking for everything is not limited.
    assert len(s.get()[0]) == len(KEYS)


# --- per-group overrides and snapshots -----------------------------------------------------------


def test_per_group_overrides() -> None:
    street = store(overrides={"MeterValueSampleInterval": 30, "LocalPreAuthorize": True,
                              "LocalAuthListMaxLength": 50, "CpoName": "Street"})
    depot = store(overrides={"MeterValueSampleInterval": "15", "LocalPreAuthorize": "false"})
    assert street.get_str("MeterValueSampleInterval") == "30"
    assert street.get_bool("LocalPreAuthorize") is True
    assert street.get_int("LocalAuthListMaxLength") == 50  # read-only keys may be set by the fleet
    assert street.get_str("CpoName") == "Street"
    assert depot.get_int("MeterValueSampleInterval") == 15
    assert depot.get_bool("LocalPreAuthorize") is False
    assert depot.get_int("LocalAuthListMaxLength") == 1000
    assert depot.get_str("CpoName") == ""
    # Changing one store leaves the other (and the defaults) alone.
    assert street.change("HeartbeatInterval", "11") == ACCEPTED
    assert depot.get_int("HeartbeatInterval") == 300
    assert store().get_int("MeterValueSampleInterval") == 60


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"NoSuchKey": 1}, UnknownConfigurationKey),
        ({"HeartbeatInterval": "soon"}, InvalidConfigurationValue),
        ({"HeartbeatInterval": -1}, InvalidConfigurationValue),
        ({"LocalPreAuthorize": 1}, InvalidConfigurationValue),
        ({"MeterValuesSampledData": "Foo"}, InvalidConfigurationValue),
        ({"NumberOfConnectors": 4}, InvalidConfigurationValue),
        ({"SupportedFeatureProfiles": "Core"}, InvalidConfigurationValue),
    ],
)
def test_bad_overrides_raise(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        store(overrides=overrides)


def test_snapshot_round_trip_keeps_changes_over_overrides() -> None:
    s = store(overrides={"HeartbeatInterval": 60})
    assert s.change("HeartbeatInterval", "90") == ACCEPTED
    assert s.change("AuthorizationKey", SECRET) == ACCEPTED
    again = store(overrides={"HeartbeatInterval": 60}, restored=s.snapshot())
    assert again.get_int("HeartbeatInterval") == 90
    assert again.get_str("AuthorizationKey") == SECRET
    # Derived keys come from the charger, not from the snapshot.
    bigger = store(number_of_connectors=4, restored=s.snapshot())
    assert bigger.get_int("NumberOfConnectors") == 4


def test_a_default_store_survives_a_reboot() -> None:
    s = store()
    again = store(restored=s.snapshot())
    assert again.snapshot() == s.snapshot()
    assert again.get_str("AuthorizationKey") == ""
    assert again.change("SecurityProfile", "1") == REJECTED  # still no key


def test_snapshot_with_a_bad_value_is_refused() -> None:
    bad = ConfigurationSnapshot(values={"HeartbeatInterval": "-3"})
    with pytest.raises(InvalidConfigurationValue):
        store(restored=bad)


def test_set_internal_bypasses_access_but_not_validation() -> None:
    s = store()
    s.set_internal("HeartbeatInterval", 77)
    assert s.get_int("HeartbeatInterval") == 77
    s.set_internal("LocalAuthListMaxLength", 5)
    assert s.get_int("LocalAuthListMaxLength") == 5
    with pytest.raises(InvalidConfigurationValue):
        s.set_internal("HeartbeatInterval", -1)
    with pytest.raises(UnknownConfigurationKey):
        s.set_internal("Nope", 1)


def test_typed_getters_see_every_change_after_a_read() -> None:
    # The store keeps parsed values for its typed getters: a value read before a change must not
    # outlive it, whichever way the change comes.
    s = store(reboot_required_keys=("ConnectionTimeOut",))
    assert (s.get_int("HeartbeatInterval"), s.get_bool("LocalPreAuthorize")) == (300, False)
    assert s.change("HeartbeatInterval", "15") == ACCEPTED
    assert s.change("LocalPreAuthorize", "true") == ACCEPTED
    assert (s.get_int("HeartbeatInterval"), s.get_bool("LocalPreAuthorize")) == (15, True)
    s.set_internal("HeartbeatInterval", 20)
    assert s.get_int("HeartbeatInterval") == 20
    assert s.get_int("ConnectionTimeOut") == 120
    assert s.change("ConnectionTimeOut", "30") == REBOOT_REQUIRED
    assert s.get_int("ConnectionTimeOut") == 120
    s.reboot()
    assert s.get_int("ConnectionTimeOut") == 30
    with pytest.raises(TypeError):  # a cached read of one type does not open another getter
        s.get_bool("HeartbeatInterval")


def test_measurand_lists_are_read_as_changed() -> None:
    s = store(reboot_required_keys=("StopTxnSampledData",))
    assert [str(m) for m in s.get_measurands("MeterValuesSampledData")] == [
        "Energy.Active.Import.Register"]
    assert s.change("MeterValuesSampledData", " Voltage.L1-N , SoC ") == ACCEPTED
    assert [str(m) for m in s.get_measurands("MeterValuesSampledData")] == ["Voltage.L1-N", "SoC"]
    assert s.change("MeterValuesSampledData", "Voltage,Bogus") == REJECTED
    assert [str(m) for m in s.get_measurands("MeterValuesSampledData")] == ["Voltage.L1-N", "SoC"]
    s.set_internal("MeterValuesAlignedData", "")
    assert s.get_measurands("MeterValuesAlignedData") == ()
    assert s.change("StopTxnSampledData", "Power.Active.Import") == REBOOT_REQUIRED
    assert s.get_measurands("StopTxnSampledData") == ()
    s.reboot()
    assert [str(m) for m in s.get_measurands("StopTxnSampledData")] == ["Power.Active.Import"]
    with pytest.raises(TypeError):
        s.get_measurands("ConnectorPhaseRotation")
    with pytest.raises(UnknownConfigurationKey):
        s.get_measurands("Nope")


def test_typed_getters_read_overrides_and_a_restored_snapshot() -> None:
    s = store(overrides={"HeartbeatInterval": 5, "LocalPreAuthorize": True,
                         "StopTxnAlignedData": "Energy.Active.Import.Register"})
    assert (s.get_int("HeartbeatInterval"), s.get_bool("LocalPreAuthorize")) == (5, True)
    assert s.change("HeartbeatInterval", "9") == ACCEPTED
    restored = ConfigurationStore(number_of_connectors=1, restored=s.snapshot())
    assert restored.get_int("HeartbeatInterval") == 9
    assert restored.get_bool("LocalPreAuthorize") is True
    assert [str(m) for m in restored.get_measurands("StopTxnAlignedData")] == [
        "Energy.Active.Import.Register"]
    with pytest.raises(UnknownConfigurationKey):
        restored.get_int("Nope")
    with pytest.raises(UnknownConfigurationKey):
        restored.get_bool("Nope")
