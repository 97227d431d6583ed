"""Signed firmware (OCPP 1.6 security whitepaper, SignedUpdateFirmware): checking the signing
certificate and the firmware's signature, with real cryptography (the ``cryptography`` package).

Rules:

- **Signing certificate.** ``signingCertificate`` is PEM: the signing certificate first, then
  any intermediates. It is accepted when every certificate is valid at the charger's time, each
  is issued (and signed) by the next, and the last is one of the installed manufacturer root
  certificates or is issued and signed by one of them. No root installed: nothing chains.
- **Signature.** ``signature`` is base64 (standard alphabet) of a signature over the firmware
  bytes made with the signing certificate's private key: RSA PKCS#1 v1.5 with SHA-256, or ECDSA
  with SHA-256 (DER), whichever the certificate's key is. Any other key type fails.
- **The firmware bytes.** With real transfers they are the bytes downloaded. A simulated
  download has none, so the firmware *is* :func:`simulated_firmware` of its location: the
  UTF-8 bytes of the ``location`` string exactly as the request gives it. A central system (or
  a test) signs that string to send a firmware the charger accepts, with no server at all.

Pure: no I/O, no clock (the time of the check is passed in).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = ["check_signing_certificate", "simulated_firmware", "verify_firmware_signature"]


def simulated_firmware(location: str) -> bytes:
    """The firmware bytes of a simulated download of ``location`` (its UTF-8 bytes)."""
    return location.encode()


def _load_chain(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def check_signing_certificate(
    pem: str, roots: Iterable[str], at: dt.datetime
) -> str | None:
    """Why the signing certificate chain ``pem`` is not accepted at ``at`` against the
    manufacturer root certificates ``roots`` (PEM each), or None when it is (see the module
    docstring). The reason is one short line, fit for a security event's techInfo."""
    try:
        chain = _load_chain(pem)
    except ValueError:
        return "signingCertificate is not a PEM certificate"
    anchors: list[x509.Certificate] = []
    for root in roots:
        try:
            anchors.extend(_load_chain(root))
        except ValueError:
            continue  # an unreadable root anchors nothing
    if not anchors:
        return "no ManufacturerRootCertificate installed"
    for cert in chain:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            subject = cert.subject.rfc4514_string()[:80]
            return f"certificate {subject} not valid at {at:%Y-%m-%dT%H:%M:%SZ}"
    for cert, issuer in itertools.pairwise(chain):
        if not _issued_by(cert, issuer):
            return "the signing certificate chain is broken"
    last = chain[-1]
    if any(last == anchor or _issued_by(last, anchor) for anchor in anchors):
        return None
    return "the signing certificate does not chain to an installed ManufacturerRootCertificate"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def verify_firmware_signature(certificate_pem: str, signature: str, firmware: bytes) -> bool:
    """Whether ``signature`` (base64) is the signature of ``firmware`` by the key of the first
    certificate in ``certificate_pem`` (see the module docstring). False for anything that
    cannot be read."""
    try:
        key = _load_chain(certificate_pem)[0].public_key()
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error, IndexError, UnsupportedAlgorithm):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, firmware, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, firmware, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
