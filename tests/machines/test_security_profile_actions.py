"""The Security extension's certificate actions and security events on a charger machine
(simulator.machines.profiles.certificates), against the scripted central system of
:mod:`tests.machines.pair`, which checks every frame the charger sends against the official
schemas. The CS's own calls are checked against them too (:func:`call`), so each table row is a
call a real central system may send."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from simulator.events import MessageDropped, Note
from tests.machines.pair import (
    EPOCH,
    WITHHOLD,
    CallErrorAnswer,
    CsCall,
    FakeCentralSystem,
    MachinePair,
    Received,
    iso,
)
from tests.machines.pki import DAY, Authority, make_ca, pem, sign_csr
from tests.oracle import ORACLE

NOW = dt.datetime.fromtimestamp(EPOCH, tz=dt.UTC)
YEAR = 365 * DAY
CPO = "Acme CPO"
CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"


def call(pair: MachinePair, action: str, payload: dict[str, Any]) -> CsCall:
    """The CS sends ``action`` (its payload checked against the schema first)."""
    assert ORACLE.errors(action, "request", payload) == [], payload
    return pair.cs_call(action, payload)


def ca(name: str = "CSMS Root", issuer: Authority | None = None, **kwargs: Any) -> Authority:
    return make_ca(name, not_before=NOW - YEAR, not_after=NOW + YEAR, issuer=issuer, **kwargs)


def security_pair(**kwargs: Any) -> MachinePair:
    """A charger with a CpoName (its CS accepts certificate requests by default)."""
    config = {"CpoName": CPO, **kwargs.pop("config", {})}
    return MachinePair(config=config, **kwargs)


def request_certificate(pair: MachinePair, status: str = "Accepted") -> Received:
    """ExtendedTriggerMessage(SignChargePointCertificate); the CS answers the CSR ``status``."""
    pair.cs.answer("SignCertificate", {"status": status})
    trigger = call(pair, "ExtendedTriggerMessage",
                   {"requestedMessage": "SignChargePointCertificate"})
    assert trigger.status == "Accepted"
    return pair.cs.of("SignCertificate")[-1]


def signed_chain(csr: str, root: Authority, **validity: dt.datetime) -> tuple[str, Authority]:
    """The chain (leaf, intermediate) a CA under ``root`` makes from ``csr``."""
    inter = ca("CSMS Sub CA", issuer=root)
    leaf = sign_csr(csr, inter, not_before=validity.get("not_before", NOW - DAY),
                    not_after=validity.get("not_after", NOW + YEAR))
    return pem(leaf, inter.cert), inter


def security_events(pair: MachinePair) -> list[tuple[str, str | None]]:
    """(type, techInfo) of every SecurityEventNotification the CS got."""
    return [(r.payload["type"], r.payload.get("techInfo"))
            for r in pair.cs.of("SecurityEventNotification")]


def notes(pair: MachinePair, what: str) -> list[Note]:
    return [e for e in pair.events_of(Note) if e.what == what]


# --- the round trip ---------------------------------------------------------------------------


def test_a_certificate_round_trip_installs_the_chain_as_the_client_certificate() -> None:
    pair = security_pair()
    root = ca()
    assert call(pair, "InstallCertificate",
                {"certificateType": CS_ROOT, "certificate": root.pem}).status == "Accepted"
    trigger = call(pair, "ExtendedTriggerMessage",
                   {"requestedMessage": "SignChargePointCertificate"})
    assert trigger.status == "Accepted"
    [sign] = pair.cs.of("SignCertificate")
    # answer first, then the request
    frames = [json.loads(s.data) for _, s in pair.sent]
    answer_at = next(i for i, f in enumerate(frames) if f[0] == 3 and f[1] == trigger.unique_id)
    request_at = next(i for i, f in enumerate(frames) if f[0] == 2 and f[2] == "SignCertificate")
    assert answer_at < request_at
    csr = x509.load_pem_x509_csr(sign.payload["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == CPO
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "CP-1"

    chain, _ = signed_chain(sign.payload["csr"], root)
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Accepted"

    credentials = pair.machine.credentials()
    assert credentials.certificate_chain == chain
    assert credentials.private_key is not None
    key = serialization.load_pem_private_key(credentials.private_key.encode(), password=None)
    leaf = x509.load_pem_x509_certificate(chain.encode())
    assert key.public_key() == leaf.public_key() == csr.public_key()
    [used] = pair.credentials_used
    assert used.credentials.certificate_chain == chain and not used.reconnect
    assert security_events(pair) == [("StartupOfTheDevice", None)]
    assert [n.data["status"] for n in notes(pair, "certificate_request_answered")] == \
        ["Accepted"]
    # the private key is in no event and no frame
    secret = "".join(credentials.private_key.splitlines()[1:-1])
    assert all(secret[:40] not in repr(e) for e in pair.events)
    assert all(secret[:40].encode() not in bytes(s.data) for _, s in pair.sent)
    # the request is closed: the same chain again is refused
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Rejected"


def test_each_request_makes_a_new_key_pair_and_the_last_one_counts() -> None:
    pair = security_pair()
    first = request_certificate(pair)
    second = request_certificate(pair)
    assert first.payload["csr"] != second.payload["csr"]
    root = ca()
    old_chain, _ = signed_chain(first.payload["csr"], root)
    assert call(pair, "CertificateSigned", {"certificateChain": old_chain}).status == "Rejected"
    chain, _ = signed_chain(second.payload["csr"], root)
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Accepted"


def test_the_same_seed_requests_the_same_csr() -> None:
    one, two = security_pair(seed=11), security_pair(seed=11)
    assert request_certificate(one).payload == request_certificate(two).payload


def test_a_rejected_request_is_closed() -> None:
    pair = security_pair()
    sign = request_certificate(pair, status="Rejected")
    assert [n.data["status"] for n in notes(pair, "certificate_request_answered")] == \
        ["Rejected"]
    chain, _ = signed_chain(sign.payload["csr"], ca())
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Rejected"


def test_a_request_keeps_its_key_through_a_reboot() -> None:
    pair = security_pair()
    sign = request_certificate(pair)
    call(pair, "Reset", {"type": "Soft"})
    pair.advance(30)
    chain, _ = signed_chain(sign.payload["csr"], ca())
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Accepted"


# --- CertificateSigned refused ----------------------------------------------------------------


def _chain_for(case: str, pair: MachinePair, root: Authority) -> str:
    """The chain a CS sends in the rejection case ``case``."""
    if case == "no request":
        other = security_pair()
        return signed_chain(request_certificate(other).payload["csr"], root)[0]
    csr = request_certificate(pair).payload["csr"]
    inter = ca("CSMS Sub CA", issuer=root)
    match case:
        case "wrong key":
            other = security_pair(seed=99)
            return signed_chain(request_certificate(other).payload["csr"], root)[0]
        case "bad signature":
            impostor = ca("CSMS Sub CA")
            leaf = sign_csr(csr, inter, not_before=NOW - DAY, not_after=NOW + YEAR,
                            signer=impostor.key)
            return pem(leaf, inter.cert)
        case "expired":
            return signed_chain(csr, root, not_before=NOW - YEAR, not_after=NOW - DAY)[0]
        case "not yet valid":
            return signed_chain(csr, root, not_before=NOW + DAY, not_after=NOW + YEAR)[0]
        case "foreign root":
            return signed_chain(csr, ca("Some other root"))[0]
        case "not PEM":
            return "MIIB..."
        case "too long":
            return signed_chain(csr, root)[0]
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "reason"), [
    ("no request", "no certificate request is open"),
    ("wrong key", "not for the key pair"),
    ("bad signature", "is not signed by"),
    ("expired", "expired"),
    ("not yet valid", "not valid before"),
    ("foreign root", "CentralSystemRootCertificate"),
    ("not PEM", "no PEM certificate"),
    ("too long", "CertificateSignedMaxChainSize"),
])
def test_an_invalid_chain_is_rejected_with_a_security_event(case: str, reason: str) -> None:
    pair = security_pair(config={"CertificateSignedMaxChainSize": 100} if case == "too long"
                         else {})
    root = ca()
    call(pair, "InstallCertificate", {"certificateType": CS_ROOT, "certificate": root.pem})
    chain = _chain_for(case, pair, root)
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Rejected"
    pair.advance(1)
    [(kind, tech_info)] = security_events(pair)[1:]
    assert kind == "InvalidChargePointCertificate"
    assert tech_info is not None and reason in tech_info
    assert pair.machine.credentials().certificate_chain is None
    assert pair.credentials_used == []


def test_without_an_installed_root_a_consistent_chain_is_accepted() -> None:
    pair = security_pair()
    sign = request_certificate(pair)
    chain, _ = signed_chain(sign.payload["csr"], ca())
    assert call(pair, "CertificateSigned", {"certificateChain": chain}).status == "Accepted"


# --- ExtendedTriggerMessage -------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "status", "sent"), [
    ({"requestedMessage": "BootNotification"}, "Accepted", ["BootNotification"]),
    ({"requestedMessage": "Heartbeat"}, "Accepted", ["Heartbeat"]),
    ({"requestedMessage": "FirmwareStatusNotification"}, "Accepted",
     ["SignedFirmwareStatusNotification"]),
    ({"requestedMessage": "LogStatusNotification"}, "Accepted", ["LogStatusNotification"]),
    ({"requestedMessage": "MeterValues", "connectorId": 1}, "Accepted", ["MeterValues"]),
    ({"requestedMessage": "MeterValues"}, "Accepted", ["MeterValues", "MeterValues"]),
    ({"requestedMessage": "StatusNotification"}, "Accepted", ["StatusNotification"] * 3),
    ({"requestedMessage": "StatusNotification", "connectorId": 2}, "Accepted",
     ["StatusNotification"]),
    ({"requestedMessage": "StatusNotification", "connectorId": 5}, "Rejected", []),
    ({"requestedMessage": "Heartbeat", "connectorId": 5}, "Accepted", ["Heartbeat"]),
    ({"requestedMessage": "SignChargePointCertificate"}, "Accepted", ["SignCertificate"]),
])
def test_extended_trigger_message(payload: dict[str, Any], status: str, sent: list[str]) -> None:
    pair = security_pair(connectors=2)
    pair.advance(5)
    before = len(pair.cs.received)
    assert call(pair, "ExtendedTriggerMessage", payload).status == status
    assert [r.action for r in pair.cs.received[before:]] == sent


def test_triggered_job_notifications_report_idle() -> None:
    pair = security_pair()
    call(pair, "ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    call(pair, "ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    assert [r.payload for r in pair.cs.of("SignedFirmwareStatusNotification",
                                          "LogStatusNotification")] == \
        [{"status": "Idle"}, {"status": "Idle"}]


def test_a_certificate_request_needs_a_cpo_name() -> None:
    pair = MachinePair()
    trigger = call(pair, "ExtendedTriggerMessage",
                   {"requestedMessage": "SignChargePointCertificate"})
    assert trigger.status == "Rejected"
    assert pair.cs.of("SignCertificate") == []
    assert [n.data["reason"] for n in notes(pair, "trigger_rejected")] == ["CpoName is not set"]


def test_a_cpo_name_too_long_for_a_csr_is_refused() -> None:
    pair = security_pair(config={"CpoName": "x" * 65})
    trigger = call(pair, "ExtendedTriggerMessage",
                   {"requestedMessage": "SignChargePointCertificate"})
    assert trigger.status == "Rejected"
    assert pair.cs.of("SignCertificate") == []


def test_diagnostics_status_cannot_be_extended_triggered() -> None:
    pair = security_pair()
    trigger = pair.cs_call("ExtendedTriggerMessage",
                           {"requestedMessage": "DiagnosticsStatusNotification"})
    assert trigger.error is not None and trigger.result is None


def _pending_pair() -> MachinePair:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Pending", "currentTime": iso(EPOCH),
                                   "interval": 300})
    return security_pair(cs=cs)


@pytest.mark.parametrize(("requested", "sent"), [
    ("Heartbeat", "Heartbeat"),
    ("SignChargePointCertificate", "SignCertificate"),
    ("BootNotification", "BootNotification"),
])
def test_a_pending_charger_sends_what_is_triggered(requested: str, sent: str) -> None:
    pair = _pending_pair()
    assert call(pair, "ExtendedTriggerMessage", {"requestedMessage": requested}).status == \
        "Accepted"
    assert [r.action for r in pair.cs.received][:2] == ["BootNotification", sent]


@pytest.mark.parametrize(("requested", "status"), [
    ("Heartbeat", "Rejected"),
    ("SignChargePointCertificate", "Rejected"),
    ("StatusNotification", "Rejected"),
])
def test_before_the_boot_is_answered_nothing_else_is_triggered(requested: str,
                                                               status: str) -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", WITHHOLD)
    pair = security_pair(cs=cs)
    assert call(pair, "ExtendedTriggerMessage", {"requestedMessage": requested}).status == status
    assert pair.cs.actions() == ["BootNotification"]


# --- the root store ---------------------------------------------------------------------------


def _installed_ids(pair: MachinePair, kind: str) -> CsCall:
    return call(pair, "GetInstalledCertificateIds", {"certificateType": kind})


def _ocsp_hash_data(cert: x509.Certificate) -> dict[str, str]:
    """CertificateHashData of a root as an independent party computes it (an OCSP CertID)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA256()).build()
    return {"hashAlgorithm": "SHA256", "issuerNameHash": request.issuer_name_hash.hex(),
            "issuerKeyHash": request.issuer_key_hash.hex(),
            "serialNumber": format(request.serial_number, "x")}


def test_installed_roots_are_listed_by_type_with_their_hash_data() -> None:
    pair = security_pair()
    assert _installed_ids(pair, CS_ROOT).result == {"status": "NotFound"}
    csms, csms2, maker = ca(), ca("CSMS Root 2", rsa_key=True), ca("Maker Root")
    for kind, root in ((CS_ROOT, csms), (CS_ROOT, csms2), (MF_ROOT, maker)):
        assert call(pair, "InstallCertificate",
                    {"certificateType": kind, "certificate": root.pem}).status == "Accepted"
    assert _installed_ids(pair, CS_ROOT).result == {
        "status": "Accepted",
        "certificateHashData": [_ocsp_hash_data(csms.cert), _ocsp_hash_data(csms2.cert)]}
    assert _installed_ids(pair, MF_ROOT).result == {
        "status": "Accepted", "certificateHashData": [_ocsp_hash_data(maker.cert)]}


@pytest.mark.parametrize(("certificate", "status"), [
    ("valid", "Accepted"),
    ("expired", "Rejected"),
    ("not yet valid", "Rejected"),
    ("not a CA", "Rejected"),
    ("two certificates", "Rejected"),
    ("garbage", "Rejected"),
])
def test_install_certificate(certificate: str, status: str) -> None:
    pair = security_pair()
    root = ca()
    text = {
        "valid": root.pem,
        "expired": make_ca("Old", not_before=NOW - 2 * YEAR, not_after=NOW - DAY).pem,
        "not yet valid": make_ca("New", not_before=NOW + DAY, not_after=NOW + YEAR).pem,
        "not a CA": ca("Leaf", ca=False).pem,
        "two certificates": root.pem + ca("Other").pem,
        "garbage": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    }[certificate]
    for kind in (CS_ROOT, MF_ROOT):
        assert call(pair, "InstallCertificate",
                    {"certificateType": kind, "certificate": text}).status == status
    expected = "Accepted" if status == "Accepted" else "NotFound"
    assert _installed_ids(pair, CS_ROOT).status == expected


def test_installing_a_root_twice_stores_it_once() -> None:
    pair = security_pair()
    root = ca()
    for _ in range(2):
        assert call(pair, "InstallCertificate",
                    {"certificateType": CS_ROOT, "certificate": root.pem}).status == "Accepted"
    result = _installed_ids(pair, CS_ROOT).result
    assert result is not None and len(result["certificateHashData"]) == 1


def test_a_full_store_rejects_the_next_root() -> None:
    pair = security_pair(config={"CertificateStoreMaxLength": 2})
    statuses = [call(pair, "InstallCertificate",
                     {"certificateType": kind, "certificate": ca(f"Root {i}").pem}).status
                for i, kind in enumerate((CS_ROOT, MF_ROOT, CS_ROOT))]
    assert statuses == ["Accepted", "Accepted", "Rejected"]


def test_delete_certificate_by_its_hash_data() -> None:
    pair = security_pair()
    keep, drop = ca("Keep"), ca("Drop", serial=0x0042)
    for root in (keep, drop):
        call(pair, "InstallCertificate", {"certificateType": CS_ROOT, "certificate": root.pem})
    hash_data = _ocsp_hash_data(drop.cert)
    shouted = {**hash_data, "issuerNameHash": hash_data["issuerNameHash"].upper(),
               "serialNumber": "0042"}
    assert call(pair, "DeleteCertificate", {"certificateHashData": shouted}).status == "Accepted"
    assert _installed_ids(pair, CS_ROOT).result == {
        "status": "Accepted", "certificateHashData": [_ocsp_hash_data(keep.cert)]}
    assert call(pair, "DeleteCertificate",
                {"certificateHashData": hash_data}).status == "NotFound"


def test_delete_certificate_uses_the_hash_algorithm_of_the_request() -> None:
    pair = security_pair()
    root = ca(issuer=None)
    call(pair, "InstallCertificate", {"certificateType": MF_ROOT, "certificate": root.pem})
    request = ocsp.OCSPRequestBuilder().add_certificate(root.cert, root.cert,
                                                        hashes.SHA512()).build()
    hash_data = {"hashAlgorithm": "SHA512", "issuerNameHash": request.issuer_name_hash.hex(),
                 "issuerKeyHash": request.issuer_key_hash.hex(),
                 "serialNumber": format(request.serial_number, "x")}
    assert call(pair, "DeleteCertificate", {"certificateHashData": hash_data}).status == \
        "Accepted"
    assert _installed_ids(pair, MF_ROOT).status == "NotFound"


@pytest.mark.parametrize(("profile", "roots", "status"), [
    (0, 1, "Accepted"),
    (2, 2, "Accepted"),
    (2, 1, "Failed"),
])
def test_the_last_central_system_root_under_tls_stays(profile: int, roots: int,
                                                      status: str) -> None:
    config: dict[str, Any] = {"SecurityProfile": profile}
    if profile:
        config["AuthorizationKey"] = "0123456789abcdef0123"
    pair = security_pair(config=config)
    installed = [ca(f"Root {i}") for i in range(roots)]
    for root in installed:
        call(pair, "InstallCertificate", {"certificateType": CS_ROOT, "certificate": root.pem})
    assert call(pair, "DeleteCertificate",
                {"certificateHashData": _ocsp_hash_data(installed[0].cert)}).status == status


def test_the_client_certificate_cannot_be_deleted() -> None:
    pair = security_pair()
    sign = request_certificate(pair)
    chain, inter = signed_chain(sign.payload["csr"], ca())
    call(pair, "CertificateSigned", {"certificateChain": chain})
    leaf = x509.load_pem_x509_certificate(chain.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, inter.cert, hashes.SHA256()).build()
    hash_data = {"hashAlgorithm": "SHA256", "issuerNameHash": request.issuer_name_hash.hex(),
                 "issuerKeyHash": request.issuer_key_hash.hex(),
                 "serialNumber": format(request.serial_number, "x")}
    assert call(pair, "DeleteCertificate", {"certificateHashData": hash_data}).status == \
        "NotFound"
    assert pair.machine.credentials().certificate_chain == chain


# --- without the Security extension -----------------------------------------------------------


@pytest.mark.parametrize("action", ["ExtendedTriggerMessage", "InstallCertificate",
                                    "GetInstalledCertificateIds"])
def test_a_charger_without_the_extension_answers_not_supported(action: str) -> None:
    pair = MachinePair(profiles=("Core",))
    payload = {
        "ExtendedTriggerMessage": {"requestedMessage": "Heartbeat"},
        "InstallCertificate": {"certificateType": CS_ROOT, "certificate": ca().pem},
        "GetInstalledCertificateIds": {"certificateType": CS_ROOT},
    }[action]
    assert call(pair, action, payload).error == "NotSupported"
    assert security_events(pair) == []  # the power-on is only noted
    assert [n.data["type"] for n in notes(pair, "security_event")] == ["StartupOfTheDevice"]


# --- security events --------------------------------------------------------------------------


def test_a_power_on_reports_the_startup_of_the_device() -> None:
    pair = MachinePair()
    [event] = pair.cs.of("SecurityEventNotification")
    assert event.payload["type"] == "StartupOfTheDevice"
    assert event.payload["timestamp"] == iso(EPOCH)


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
def test_a_reset_reports_reset_or_reboot_then_the_startup(kind: str) -> None:
    pair = MachinePair()
    pair.advance(10)
    call(pair, "Reset", {"type": kind})
    pair.advance(60)
    reset_type = "SoftReset" if kind == "Soft" else "HardReset"
    assert security_events(pair) == [("StartupOfTheDevice", None),
                                      ("ResetOrReboot", reset_type),
                                      ("StartupOfTheDevice", None)]
    reset = pair.cs.of("SecurityEventNotification")[1]
    assert reset.payload["timestamp"] == iso(EPOCH + 10)  # when it happened, not when sent


@pytest.mark.parametrize(("hard", "events"), [
    (False, [("StartupOfTheDevice", None), ("ResetOrReboot", "Reboot"),
             ("StartupOfTheDevice", None)]),
    (True, [("StartupOfTheDevice", None), ("StartupOfTheDevice", None)]),  # a power cut
])
def test_a_local_reboot_is_a_reboot_and_a_power_cut_is_not(
    hard: bool, events: list[tuple[str, str | None]]
) -> None:
    pair = MachinePair()
    pair.machine.reboot(pair.now, hard=hard)
    pair.drain()
    pair.advance(60)
    assert security_events(pair) == events


@pytest.mark.parametrize(("offset", "events"), [
    (0.0, []),
    (5.0, []),
    (3600.0, [("SettingSystemTime", "clock set by +3600.000 s")]),
    (-120.0, [("SettingSystemTime", "clock set by -120.000 s")]),
])
def test_setting_the_clock_far_is_a_security_event(offset: float,
                                                   events: list[tuple[str, str]]) -> None:
    pair = MachinePair(cs=FakeCentralSystem(clock_offset=offset))
    assert security_events(pair)[1:] == events


@pytest.mark.parametrize("code", ["NotImplemented", "NotSupported"])
def test_a_csms_without_the_extension_does_not_hold_the_transactions_behind_a_security_event(
    code: str,
) -> None:
    """A CS that does not implement SecurityEventNotification answers it with a CALLERROR: the
    event is dropped at once, not retried, so the StartTransaction behind it goes out now."""
    cs = FakeCentralSystem()
    cs.answer("SecurityEventNotification", CallErrorAnswer(code))
    pair = MachinePair(cs=cs)
    pair.plug()
    pair.tag("TAG-1")
    pair.advance(1)
    assert len(pair.cs.of("SecurityEventNotification")) == 1
    [start] = pair.cs.of("StartTransaction")
    assert start.t < 1.5
    [dropped] = pair.events_of(MessageDropped)
    assert (dropped.action, dropped.attempts) == ("SecurityEventNotification", 1)


def test_a_transaction_message_answered_not_implemented_is_still_retried() -> None:
    cs = FakeCentralSystem()
    cs.answer("StartTransaction", CallErrorAnswer("NotImplemented"))
    pair = MachinePair(cs=cs)
    pair.plug()
    pair.tag("TAG-1")
    pair.advance(200)
    assert len(pair.cs.of("StartTransaction")) == 2  # the retry got the default answer


# --- certificates the library cannot use are refused, never stored ----------------------------


def _mangled_root(old: bytes, new: bytes) -> str:
    """A valid self-signed CA certificate with one DER sequence replaced (same length)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.fromtimestamp(EPOCH, dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Odd root")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(5)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    assert der.count(old) == 1
    return x509.load_der_x509_certificate(der.replace(old, new)).public_bytes(
        serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(("old", "new"), [
    # SubjectKeyIdentifier's OID made BasicConstraints': a duplicate extension
    (bytes.fromhex("0603551D0E"), bytes.fromhex("0603551D13")),
    # id-ecPublicKey made an algorithm nobody knows: a key that cannot be loaded
    (bytes.fromhex("06072A8648CE3D0201"), bytes.fromhex("06072A8648CE3D0209")),
], ids=["duplicate extension", "unknown key algorithm"])
@pytest.mark.parametrize("kind", [CS_ROOT, "ManufacturerRootCertificate"])
def test_a_certificate_the_charger_could_not_use_is_rejected_not_stored(
    old: bytes, new: bytes, kind: str
) -> None:
    pair = MachinePair()
    odd = _mangled_root(old, new)
    assert call(pair, "InstallCertificate", {"certificateType": kind, "certificate": odd}
                ).status == "Rejected"
    assert call(pair, "GetInstalledCertificateIds", {"certificateType": kind}
                ).status == "NotFound"
