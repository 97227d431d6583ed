"""The Security extension's jobs on the charger machine, with no event loop: SignedUpdateFirmware
(signing certificate chained to an installed ManufacturerRootCertificate, signature verified with
real cryptography) and GetLog, their notifications with requestId and their security events;
plus the pure checks of :mod:`simulator.machines.firmware_signature`. Every frame goes through
the schema oracle (the pair)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from simulator.machines.firmware_signature import (
    check_signing_certificate,
    simulated_firmware,
    verify_firmware_signature,
)
from simulator.machines.parts import FirmwareSpec
from simulator.ocpp.v16 import CertificateUse
from tests.machines.pair import EPOCH, MachinePair, iso
from tests.machines.test_firmware import FAST, TransferPair, notes

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = dt.datetime.fromtimestamp(EPOCH, tz=dt.UTC)
URL = "https://updates.example.com/fw/acme-3.0.bin"


def make_key(kind: str) -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(subject: str, key: Key, issuer: tuple[str, Key] | None = None, *,
              ca: bool = False, days: tuple[int, int] = (-1, 365)) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def sign(key: Key, data: bytes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode()


class Vendor:
    """A manufacturer: a root CA and a firmware signing certificate it issued."""

    def __init__(self, kind: str = "rsa", name: str = "Acme") -> None:
        self.root_key = make_key(kind)
        self.root = make_cert(f"{name} Root", self.root_key, ca=True)
        self.key = make_key(kind)
        self.cert = make_cert(f"{name} Firmware Signing", self.key,
                              (f"{name} Root", self.root_key))

    def request(self, request_id: int = 7, location: str = URL, *, data: bytes | None = None,
                **firmware: Any) -> dict[str, Any]:
        signed = data if data is not None else simulated_firmware(location)
        return {"requestId": request_id, "firmware": {
            "location": location, "retrieveDateTime": iso(EPOCH),
            "signingCertificate": pem(self.cert), "signature": sign(self.key, signed),
            **firmware}}


def install_root(pair: MachinePair, root: x509.Certificate) -> None:
    """Install ``root`` as a ManufacturerRootCertificate: over OCPP where the charger implements
    InstallCertificate (the certificates part of the Security handler), else into its context
    (the state InstallCertificate fills)."""
    call = pair.cs_call("InstallCertificate", {"certificateType": "ManufacturerRootCertificate",
                                               "certificate": pem(root)})
    if call.error == "NotSupported":
        installed = pair.machine._ctx.installed_certificates
        installed.setdefault(CertificateUse.MANUFACTURER_ROOT_CERTIFICATE, []).append(pem(root))
    else:
        assert call.status == "Accepted"


def signed_statuses(pair: MachinePair) -> list[tuple[float, str, int]]:
    return [(r.t, r.payload["status"], r.payload["requestId"])
            for r in pair.cs.of("SignedFirmwareStatusNotification")]


FIRMWARE_EVENTS = frozenset({"FirmwareUpdated", "InvalidFirmwareSignature",
                             "InvalidFirmwareSigningCertificate"})


def security_events(pair: MachinePair) -> list[str]:
    """The firmware security events the CS got (a charger raises others, e.g. at power-on)."""
    return [r.payload["type"] for r in pair.cs.of("SecurityEventNotification")
            if r.payload["type"] in FIRMWARE_EVENTS]


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    return Vendor()


# --- SignedUpdateFirmware -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_signed_update_is_verified_installed_and_reported_after_the_reboot(kind: str) -> None:
    maker = Vendor(kind)
    pair = MachinePair(firmware=FAST, firmware_version="1.0.0")
    install_root(pair, maker.root)
    call = pair.cs_call("SignedUpdateFirmware", maker.request())
    assert call.status == "Accepted"
    pair.advance(60)
    assert signed_statuses(pair) == [
        (0, "Downloading", 7), (10, "Downloaded", 7), (10, "SignatureVerified", 7),
        (10, "Installing", 7), (20, "InstallRebooting", 7), (25, "Installed", 7)]
    assert pair.reboots == [20]
    assert [b.payload["firmwareVersion"] for b in pair.cs.of("BootNotification")] == \
        ["1.0.0", "acme-3.0"]
    assert security_events(pair) == ["FirmwareUpdated"]
    assert [r.t for r in pair.cs.of("SecurityEventNotification")
            if r.payload["type"] == "FirmwareUpdated"] == [25]
    assert pair.cs.of("FirmwareStatusNotification") == []


def test_dates_to_come_are_scheduled(vendor: Vendor) -> None:
    pair = MachinePair(firmware=FAST)
    install_root(pair, vendor.root)
    pair.cs_call("SignedUpdateFirmware", vendor.request(
        retrieveDateTime=iso(EPOCH + 100), installDateTime=iso(EPOCH + 200)))
    pair.advance(300)
    assert [(t, s) for t, s, _ in signed_statuses(pair)] == [
        (0, "DownloadScheduled"), (100, "Downloading"), (110, "Downloaded"),
        (110, "SignatureVerified"), (110, "InstallScheduled"), (200, "Installing"),
        (210, "InstallRebooting"), (215, "Installed")]


def test_a_bad_signature_is_refused_with_a_security_event(vendor: Vendor) -> None:
    pair = MachinePair(firmware=FAST, firmware_version="1.0.0")
    install_root(pair, vendor.root)
    request = vendor.request(data=b"another image")
    assert pair.cs_call("SignedUpdateFirmware", request).status == "Accepted"
    pair.advance(60)
    assert [s for _, s, _ in signed_statuses(pair)] == ["Downloading", "Downloaded",
                                                        "InvalidSignature"]
    assert security_events(pair) == ["InvalidFirmwareSignature"]
    assert pair.reboots == []


@pytest.mark.parametrize("case", ["no root", "another root", "expired"])
def test_a_signing_certificate_that_does_not_chain_is_refused(vendor: Vendor, case: str) -> None:
    pair = MachinePair(firmware=FAST)
    if case == "another root":
        install_root(pair, Vendor(name="Other").root)
    request = vendor.request()
    if case == "expired":
        install_root(pair, vendor.root)
        old = make_cert("Acme Firmware Signing", vendor.key, ("Acme Root", vendor.root_key),
                        days=(-30, -1))
        request["firmware"]["signingCertificate"] = pem(old)
    assert pair.cs_call("SignedUpdateFirmware", request).status == "InvalidCertificate"
    pair.advance(60)
    assert signed_statuses(pair) == []
    assert security_events(pair) == ["InvalidFirmwareSigningCertificate"]


def test_a_second_update_cancels_the_first(vendor: Vendor) -> None:
    pair = MachinePair(firmware=FAST)
    install_root(pair, vendor.root)
    assert pair.cs_call("SignedUpdateFirmware", vendor.request(1)).status == "Accepted"
    pair.advance(5)
    assert pair.cs_call("SignedUpdateFirmware", vendor.request(2)).status == "AcceptedCanceled"
    pair.advance(60)
    assert [(s, r) for _, s, r in signed_statuses(pair)][:2] == [("Downloading", 1),
                                                                 ("Downloading", 2)]
    assert {r for _, _, r in signed_statuses(pair)[1:]} == {2}


def test_the_trigger_reports_the_signed_update(vendor: Vendor) -> None:
    pair = MachinePair(firmware=FAST)
    install_root(pair, vendor.root)
    pair.cs_call("SignedUpdateFirmware", vendor.request(9))
    pair.advance(3)
    answered = pair.cs_call("ExtendedTriggerMessage",
                            {"requestedMessage": "FirmwareStatusNotification"})
    if answered.error == "NotSupported":  # before the certificates part brings the trigger
        pytest.skip("ExtendedTriggerMessage is the certificates part's")
    assert signed_statuses(pair)[-1] == (3, "Downloading", 9)


def test_a_real_download_is_the_firmware_whose_signature_counts(vendor: Vendor) -> None:
    image = b"\x7fELF a real firmware image"
    for data, verdict in ((image, "SignatureVerified"), (b"tampered", "InvalidSignature")):
        pair = TransferPair(firmware=FAST, real_transfers=True)
        install_root(pair, vendor.root)
        pair.cs_call("SignedUpdateFirmware", vendor.request(data=image))
        [transfer] = pair.transfers
        assert transfer.url == URL
        pair.done(True, data)
        assert signed_statuses(pair)[-1][1] in (verdict, "Installing")
        assert verdict in [s for _, s, _ in signed_statuses(pair)]


# --- GetLog -------------------------------------------------------------------------------------


def get_log(pair: MachinePair, request_id: int, log_type: str = "SecurityLog") -> Any:
    return pair.cs_call("GetLog", {"logType": log_type, "requestId": request_id,
                                   "log": {"remoteLocation": "ftp://logs.example.com/"}})


@pytest.mark.parametrize(("firmware", "last"), [(FAST, "Uploaded"),
                                                (FirmwareSpec(upload_failure=1.0),
                                                 "UploadFailure")])
def test_get_log_uploads_and_reports_with_its_request_id(firmware: FirmwareSpec,
                                                         last: str) -> None:
    pair = MachinePair(firmware=firmware)
    call = get_log(pair, 4)
    assert call.result == {"status": "Accepted",
                           "filename": "SecurityLog-CP-1-20260101T000000Z.log"}
    pair.advance(30)
    assert [(r.t, r.payload["status"], r.payload["requestId"])
            for r in pair.cs.of("LogStatusNotification")] == [(0, "Uploading", 4),
                                                              (5, last, 4)]


def test_a_second_get_log_cancels_the_first() -> None:
    pair = MachinePair(firmware=FAST)
    get_log(pair, 1, "DiagnosticsLog")
    pair.advance(2)
    assert get_log(pair, 2).status == "AcceptedCanceled"
    pair.advance(30)
    assert [(r.t, r.payload["status"], r.payload["requestId"])
            for r in pair.cs.of("LogStatusNotification")] == [
        (0, "Uploading", 1), (2, "Uploading", 2), (7, "Uploaded", 2)]
    assert notes(pair, "job_cancelled")


def test_without_the_security_profile_its_calls_are_not_supported(vendor: Vendor) -> None:
    pair = MachinePair(profiles=("Core", "FirmwareManagement"))
    assert get_log(pair, 1).error == "NotSupported"
    assert pair.cs_call("SignedUpdateFirmware", vendor.request()).error == "NotSupported"


# --- the pure checks ----------------------------------------------------------------------------


def test_a_chain_through_an_intermediate_is_accepted(vendor: Vendor) -> None:
    middle_key = make_key("ec")
    middle = make_cert("Acme Firmware CA", middle_key, ("Acme Root", vendor.root_key), ca=True)
    leaf_key = make_key("ec")
    leaf = make_cert("Acme Signing 2", leaf_key, ("Acme Firmware CA", middle_key))
    assert check_signing_certificate(pem(leaf, middle), [pem(vendor.root)], NOW) is None
    assert check_signing_certificate(pem(leaf), [pem(vendor.root)], NOW) is not None
    assert check_signing_certificate(pem(leaf, middle), [pem(vendor.root)],
                                     NOW + dt.timedelta(days=400)) is not None
    assert check_signing_certificate("not a certificate", [pem(vendor.root)], NOW) is not None
    assert check_signing_certificate(pem(vendor.root), [pem(vendor.root)], NOW) is None


def test_signatures(vendor: Vendor) -> None:
    data = simulated_firmware(URL)
    assert data == URL.encode()
    good = sign(vendor.key, data)
    assert verify_firmware_signature(pem(vendor.cert), good, data)
    assert not verify_firmware_signature(pem(vendor.cert), good, data + b"!")
    assert not verify_firmware_signature(pem(vendor.cert), "%%% not base64", data)
    assert not verify_firmware_signature(pem(vendor.root), good, data)  # another key
    assert not verify_firmware_signature("garbage", good, data)
