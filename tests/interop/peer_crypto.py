"""The peer central system's cryptography (``peer_profiles.py``): its certificate authorities,
the certificates it issues, certificate hash data, and firmware signatures, made with the
``cryptography`` package independently of the simulator's own code.

- :class:`Authority`: a self-signed root (EC P-256) that issues a leaf for a CSR (the charge
  point certificate of CertificateSigned) or for a key of its own (the firmware signing
  certificate of SignedUpdateFirmware).
- :func:`hash_data`: ``CertificateHashDataType`` as the security whitepaper defines it (the
  OCSP ``CertID`` fields): SHA-256 of the issuer's DER name, SHA-256 of the issuer's public key
  (the ``subjectPublicKey`` bit string's contents), the serial number in hexadecimal without
  leading zeroes.
- :func:`simulated_firmware` / :func:`firmware_signature`: the bytes a simulated firmware
  download yields and their signature (base64 of an RSA PKCS#1 v1.5 or ECDSA signature over
  SHA-256, by the signing certificate's key). :func:`simulated_firmware` must say what the
  simulator's firmware handler says a simulated download yields: it is the one place to adapt.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

VALIDITY: Final = dt.timedelta(days=365)
BACKDATE: Final = dt.timedelta(hours=1)
"""Certificates start an hour in the past, so a clock a little behind still accepts them."""


def new_key(kind: str = "ec") -> PrivateKey:
    """A fresh key pair: ``ec`` (P-256) or ``rsa`` (2048 bits)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def pem(certificate: x509.Certificate) -> str:
    """``certificate`` as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(common_name: str, organization: str = "Peer CSMS") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclasses.dataclass(frozen=True)
class Authority:
    """A self-signed root certificate and its key."""

    key: PrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str) -> Authority:
        """A new root named ``common_name`` (EC P-256, valid for a year)."""
        key = new_key("ec")
        name = _name(common_name)
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def pem(self) -> str:
        """The root certificate as PEM text."""
        return pem(self.certificate)

    def issue(self, subject: x509.Name, public_key: PublicKey, *,
              purpose: x509.ObjectIdentifier) -> x509.Certificate:
        """A leaf certificate for ``public_key`` named ``subject``, signed by this root, for the
        extended key usage ``purpose`` (client auth, code signing)."""
        now = dt.datetime.now(dt.UTC)
        rsa_key = isinstance(public_key, rsa.RSAPublicKey)
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def sign_csr(self, csr_pem: str) -> x509.Certificate:
        """The charge point certificate for a SignCertificate ``csr``: its subject and key as
        the CSR gives them, for TLS client authentication. Raises ``ValueError`` for a CSR
        that does not parse or whose signature is wrong."""
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"unexpected CSR key type {type(public_key).__name__}")
        return self.issue(csr.subject, public_key, purpose=ExtendedKeyUsageOID.CLIENT_AUTH)


def csr_summary(csr_pem: str) -> dict[str, Any]:
    """What a CSR says, for the record: its subject (RFC 4514), organization, key type and
    whether its signature verifies."""
    csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    organization = [a.value for a in csr.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)]
    return {
        "subject": csr.subject.rfc4514_string(),
        "organization": organization[0] if organization else None,
        "key": type(csr.public_key()).__name__,
        "signature_valid": csr.is_signature_valid,
    }


def _public_key_bits(key: PublicKey) -> bytes:
    """The contents of the ``subjectPublicKey`` BIT STRING (what OCSP hashes)."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """``CertificateHashDataType`` of ``certificate`` signed by ``issuer`` (itself for a root),
    in the wire's camelCase keys, SHA256, hex digests in lower case."""
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(_public_key_bits(issuer_key)).hexdigest(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


def same_hash_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two ``CertificateHashDataType`` name the same certificate: hex compared without
    regard to case or leading zeroes of the serial number."""
    fields = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash")
    return all(str(a.get(f, "")).lower() == str(b.get(f, "")).lower() for f in fields) and (
        str(a.get("serialNumber", "")).lower().lstrip("0")
        == str(b.get("serialNumber", "")).lower().lstrip("0"))


def simulated_firmware(location: str) -> bytes:
    """The bytes the simulator's firmware handler says a simulated (not really fetched)
    download of ``location`` yields: the signature of SignedUpdateFirmware is over these."""
    return location.encode("utf-8")


def firmware_signature(key: PrivateKey, firmware: bytes) -> str:
    """Base64 of the signature of ``firmware`` by ``key`` over SHA-256 (RSA: PKCS#1 v1.5;
    EC: ECDSA, DER-encoded)."""
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(firmware, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(firmware, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


@dataclasses.dataclass(frozen=True)
class FirmwareSigner:
    """The manufacturer's root, a signing certificate it issued and that certificate's key."""

    root: Authority
    key: PrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, root: Authority, key_kind: str = "ec") -> FirmwareSigner:
        """A signing key (``ec`` or ``rsa``) and its code-signing certificate from ``root``."""
        key = new_key(key_kind)
        certificate = root.issue(_name("Peer firmware signing", "Peer Manufacturer"),
                                 key.public_key(), purpose=ExtendedKeyUsageOID.CODE_SIGNING)
        return cls(root, key, certificate)

    def sign(self, location: str) -> str:
        """The signature of what a simulated download of ``location`` yields."""
        return firmware_signature(self.key, simulated_firmware(location))
