"""A group's feature profiles, firmware behaviour, real transfers and security settings."""

from __future__ import annotations

import pytest

from simulator.config import ConfigError
from simulator.machines.parts import FirmwareSpec
from simulator.runtime import charger_specs
from tests.config.documents import GROUP, parse

WSS = '[csms]\nurl = "wss://csms.example/ocpp"\nsecurity_profile = 2\npassword = "fleet-password"\n'


def test_by_default_a_group_has_every_profile_simulated_transfers_and_the_fleet_security() -> None:
    group = parse(GROUP).groups[0]
    assert group.profiles is None
    assert group.firmware == FirmwareSpec()
    assert group.real_transfers is False
    assert group.security is None
    spec = charger_specs(group)[0]
    assert (spec.profiles, spec.firmware, spec.real_transfers) == (None, FirmwareSpec(), False)


def test_profiles_firmware_and_transfers_reach_every_charger_spec() -> None:
    text = GROUP + 'profiles = ["Core", "SmartCharging", "Core"]\nreal_transfers = true\n' \
        '[group.firmware]\ndownload = "1m"\ninstall = 30\nupload = "2s"\n' \
        'download_failure = 0.25\ninstall_failure = 1\n'
    group = parse(text).groups[0]
    assert group.profiles == ("Core", "SmartCharging")
    firmware = FirmwareSpec(download=60.0, install=30.0, upload=2.0, download_failure=0.25,
                            install_failure=1.0)
    assert group.firmware == firmware
    for spec in charger_specs(group):
        assert (spec.profiles, spec.firmware, spec.real_transfers) == (
            ("Core", "SmartCharging"), firmware, True)


@pytest.mark.parametrize(("lines", "expected"), [
    ('profiles = ["Core", "Smartcharging"]\n',
     "group[0].profiles[1]: unknown value \"Smartcharging\"; expected one of Core, "
     "FirmwareManagement"),
    ('profiles = ["SmartCharging"]\n',
     'group[0].profiles: every charger implements "Core"; list it with the others'),
    ('[group.firmware]\ndownload_failure = 1.5\n',
     "group[0].firmware.download_failure: must be <= 1, got 1.5"),
    ('[group.firmware]\ninstall = "soon"\n',
     'group[0].firmware.install: "soon" is not a duration'),
    ('[group.security]\nsecurity_profile = 3\n',
     "group[0].security.cert_file: security_profile 3 (mutual TLS) needs cert_file and key_file"),
])
def test_bad_group_settings_get_one_line_naming_the_field(lines: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(WSS + GROUP + lines)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_group_security_table_overrides_the_fleet_settings_one_by_one() -> None:
    text = WSS + GROUP + '[group.security]\nsecurity_profile = 3\ncert_file = "c.pem"\n' \
        'key_file = "k.pem"\n'
    fleet = parse(text)
    security = fleet.groups[0].security
    assert security is not None
    assert (security.security_profile, security.cert_file, security.key_file) == (
        3, "c.pem", "k.pem")
    assert security.password == "fleet-password"  # not overridden: the fleet's
    assert fleet.csms.security.security_profile == 2


def test_a_group_password_is_a_secret_kept_out_of_the_recorded_text() -> None:
    text = WSS + GROUP + '[group.security]\npassword = "group-secret-1234"\n'
    fleet = parse(text)
    security = fleet.groups[0].security
    assert security is not None and security.password == "group-secret-1234"
    assert "group-secret-1234" not in fleet.text
    assert "group-secret-1234" not in repr(security)


def test_a_group_cannot_ask_for_tls_of_a_plain_websocket_csms() -> None:
    text = '[csms]\nurl = "ws://csms.example/ocpp"\n' + GROUP \
        + '[group.security]\nsecurity_profile = 2\npassword = "x"\n'
    with pytest.raises(ConfigError, match=r"csms\.url: security_profile 2 needs TLS"):
        parse(text)


def test_a_csms_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as raised:
        parse('[csms]\nurl = "wss://cp:hunter2-secret@csms.example/ocpp"\n' + GROUP)
    assert "csms.url: must not hold a user name or password" in str(raised.value)
    assert "hunter2" not in str(raised.value)
