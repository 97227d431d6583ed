"""A small certificate authority for the certificate tests, made with ``cryptography``.

:func:`make_ca` makes a root (or, given an issuer, an intermediate) with the validity the test
asks for; :func:`sign_csr` plays the CA server a central system forwards a CSR to. Keys are
EC P-256 by default, RSA on request (hash data must not depend on the key type).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

DAY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Authority:
    """A CA: its certificate and key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(
    name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: Authority | None = None,
    rsa_key: bool = False,
    serial: int | None = None,
    ca: bool = True,
) -> Authority:
    """A CA certificate named CN=``name``, self-signed unless ``issuer`` is given."""
    key: CertificateIssuerPrivateKeyTypes = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key
        else ec.generate_private_key(ec.SECP256R1()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    signer = issuer.key if issuer is not None else key
    return Authority(builder.sign(signer, hashes.SHA256()), key)


def sign_csr(
    csr_pem: str,
    issuer: Authority,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    signer: CertificateIssuerPrivateKeyTypes | None = None,
) -> x509.Certificate:
    """The certificate ``issuer`` makes from a CSR: its subject and public key (``signer``:
    sign with another key while naming ``issuer``, i.e. a bad signature)."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signer if signer is not None else issuer.key, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> str:
    """Certificates as one PEM text, in order."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
