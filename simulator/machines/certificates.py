"""The charger's certificates, with real cryptography: its key pair and CSR, the checks a
certificate chain passes before it is accepted, and certificate hash data.

Rules (OCPP 1.6 security whitepaper, edition 2: use cases A02 "Update Charge Point
Certificate", M03-M05 "certificate management", the message fields of §5 and §7):

- **Key pair.** Every certificate request gets a new key pair (A02): an EC P-256 key whose
  secret is drawn from the charger's seeded stream, so a run is reproducible. The private key
  never leaves the charger: it is in no frame, note or event.
- **CSR** (RFC 2986, PEM, at most :data:`MAX_CSR_LENGTH` characters) with the subject
  O = ``CpoName`` (the whitepaper's rule) and CN = the charge point identity (the whitepaper's
  "Certificate Properties" ask for the charge point's unique serial number in CN; the identity
  the charger connects with is that number here, and what a central system checks a client
  certificate against). No other attribute is required, so none is added. Signed with the
  key pair (ECDSA with SHA-256, deterministic, RFC 6979).
- **A signed chain** (CertificateSigned) is accepted only when: it holds one or more PEM
  certificates and nothing else; the first (the leaf) carries the public key of the pending
  key pair; each certificate is issued and signed by the next; every one is valid at the
  charger's wall time; and, when a CentralSystemRootCertificate is installed, the last is
  issued by one of them (or is one of them). :func:`check_chain` says what is wrong.
- **Hash data** (CertificateHashDataType): ``issuerNameHash`` is the hash of the DER encoding
  of the issuer's name, ``issuerKeyHash`` the hash of the issuer's public key: the contents of
  its subjectPublicKey BIT STRING, without tag, length and unused-bits octet (the OCSP CertID
  convention of RFC 6960 that OCPP's field copies), ``serialNumber`` the serial in hexadecimal
  without leading zeroes; hashes and serial in lowercase hex. The certificates hashed here are
  roots, so the issuer's key is the certificate's own.

Pure: no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simulator.ocpp.v16 import CertificateHashData, HashAlgorithm
from simulator.seeds import Rng

MAX_CSR_LENGTH: Final = 5500
"""SignCertificate's ``csr`` is a string of at most 5500 characters."""

P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order of the P-256 group: a private value lies in [1, order - 1]."""

_PEM_BLOCK: Final = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)
"""One PEM certificate block."""

_HASHES: Final = {
    HashAlgorithm.SHA256: hashlib.sha256,
    HashAlgorithm.SHA384: hashlib.sha384,
    HashAlgorithm.SHA512: hashlib.sha512,
}


class CertificateError(ValueError):
    """A certificate (or chain) that is not acceptable; the message says why, naming no
    secret."""


# --- the key pair and the CSR -----------------------------------------------------------------


def new_key_pair(rng: Rng) -> ec.EllipticCurvePrivateKey:
    """A new EC P-256 key pair whose secret is drawn from ``rng`` (reproducible)."""
    secret = rng.getrandbits(256) % (P256_ORDER - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """``key`` as unencrypted PKCS#8 PEM (for the actor's TLS client context only)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def build_csr(key: ec.EllipticCurvePrivateKey, *, organization: str, common_name: str) -> str:
    """The PEM CSR for ``key`` with subject O = ``organization``, CN = ``common_name`` (see
    the module docstring). Raises :class:`CertificateError` for a name X.509 cannot carry
    (empty, or longer than 64 characters) or a CSR longer than :data:`MAX_CSR_LENGTH`."""
    for label, value in (("CpoName", organization), ("identity", common_name)):
        if not 1 <= len(value) <= 64:
            raise CertificateError(f"{label} must be 1 to 64 characters for a CSR subject")
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        key, hashes.SHA256(), ecdsa_deterministic=True)
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    if len(pem) > MAX_CSR_LENGTH:
        raise CertificateError(f"the CSR is {len(pem)} characters, more than {MAX_CSR_LENGTH}")
    return pem


def certificate_pem(cert: x509.Certificate) -> str:
    """``cert`` as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- parsing and checking ---------------------------------------------------------------------


def load_chain(text: str) -> list[x509.Certificate]:
    """The certificates of a PEM text, in order. Raises :class:`CertificateError` when the
    text holds no certificate, anything but certificate blocks, or a block that does not
    parse."""
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise CertificateError("no PEM certificate found")
    if _PEM_BLOCK.sub("", text).strip():
        raise CertificateError("text outside the PEM certificate blocks")
    try:
        return [x509.load_pem_x509_certificate(block.encode("ascii")) for block in blocks]
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateError(f"a certificate does not parse: {exc}") from None


def load_certificate(text: str) -> x509.Certificate:
    """The one PEM certificate of ``text`` (:class:`CertificateError` otherwise)."""
    chain = load_chain(text)
    if len(chain) != 1:
        raise CertificateError(f"expected one certificate, got {len(chain)}")
    return chain[0]


def check_valid_at(cert: x509.Certificate, at: dt.datetime) -> None:
    """Raise :class:`CertificateError` unless ``at`` lies in ``cert``'s validity period."""
    if at < cert.not_valid_before_utc:
        raise CertificateError(f"{_subject(cert)} is not valid before "
                               f"{cert.not_valid_before_utc.isoformat()}")
    if at > cert.not_valid_after_utc:
        raise CertificateError(f"{_subject(cert)} expired at "
                               f"{cert.not_valid_after_utc.isoformat()}")


def check_root(cert: x509.Certificate, at: dt.datetime) -> None:
    """Raise :class:`CertificateError` unless ``cert`` may be installed as a root: valid at
    ``at`` and not marked as an end entity (BasicConstraints CA false)."""
    check_valid_at(cert, at)
    _readable(cert)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if not constraints.ca:
        raise CertificateError(f"{_subject(cert)} is not a CA certificate")


def check_chain(
    chain: Sequence[x509.Certificate],
    *,
    key: ec.EllipticCurvePrivateKey,
    at: dt.datetime,
    roots: Sequence[x509.Certificate],
) -> None:
    """Raise :class:`CertificateError` unless ``chain`` (leaf first) is one the charger may
    accept for ``key`` at wall time ``at`` given the installed central system ``roots`` (see
    the module docstring)."""
    if not chain:
        raise CertificateError("empty chain")
    for cert in chain:
        _readable(cert)
    leaf = chain[0]
    if leaf.public_key() != key.public_key():
        raise CertificateError("the certificate is not for the key pair of the request")
    for cert in chain:
        check_valid_at(cert, at)
    for cert, issuer in itertools.pairwise(chain):
        _check_issued(cert, issuer)
    if roots:
        last = chain[-1]
        if last in roots:
            return
        for root in roots:
            try:
                _check_issued(last, root)
            except CertificateError:
                continue
            return
        raise CertificateError("the chain does not lead to an installed "
                               "CentralSystemRootCertificate")


def _check_issued(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise :class:`CertificateError` unless ``issuer`` issued and signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise CertificateError(f"{_subject(cert)} is not signed by {_subject(issuer)}") from None


def _readable(cert: x509.Certificate) -> None:
    """Raise :class:`CertificateError` unless ``cert``'s public key and extensions can be read
    (a key of an algorithm the library does not know, a duplicate or malformed extension): a
    certificate the charger could not use later is refused now, never stored."""
    try:
        cert.public_key()
        _ = cert.extensions
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType) as exc:
        raise CertificateError(f"{_subject(cert)} cannot be read: {exc}"[:200]) from None


def _subject(cert: x509.Certificate) -> str:
    """A certificate's subject as text (for error messages: a name, never a key)."""
    return cert.subject.rfc4514_string() or "a certificate with an empty subject"


# --- hash data --------------------------------------------------------------------------------


def hash_data(
    cert: x509.Certificate, algorithm: HashAlgorithm = HashAlgorithm.SHA256
) -> CertificateHashData:
    """The CertificateHashDataType of root ``cert`` (its issuer is itself; see the module
    docstring)."""
    digest = _HASHES[algorithm]
    issuer_key = subject_public_key_bits(
        cert.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return CertificateHashData(
        hash_algorithm=algorithm,
        issuer_name_hash=digest(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=digest(issuer_key).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
    )


def same_certificate(a: CertificateHashData, b: CertificateHashData) -> bool:
    """Whether two hash data name the same certificate (same algorithm; hex compared without
    regard to case, serial numbers without leading zeroes)."""
    return (
        a.hash_algorithm == b.hash_algorithm
        and a.issuer_name_hash.lower() == b.issuer_name_hash.lower()
        and a.issuer_key_hash.lower() == b.issuer_key_hash.lower()
        and _serial(a.serial_number) == _serial(b.serial_number)
    )


def _serial(text: str) -> str:
    return text.lower().lstrip("0") or "0"


def subject_public_key_bits(spki_der: bytes) -> bytes:
    """The contents of the subjectPublicKey BIT STRING of a DER SubjectPublicKeyInfo
    (``SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }``), without its
    unused-bits octet. Raises ``ValueError`` for anything else."""
    tag, body, rest = _der_item(spki_der)
    if tag != 0x30 or rest:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, _, rest = _der_item(body)  # the AlgorithmIdentifier
    tag, bits, rest = _der_item(rest)
    if tag != 0x03 or rest or not bits or bits[0] != 0:
        raise ValueError("not a SubjectPublicKeyInfo")
    return bits[1:]


def _der_item(data: bytes) -> tuple[int, bytes, bytes]:
    """The first DER item of ``data``: (tag, contents, what follows)."""
    if len(data) < 2:
        raise ValueError("truncated DER")
    tag, length, offset = data[0], data[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(data[2:2 + count], "big"), 2 + count
    end = offset + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[offset:end], data[end:]
