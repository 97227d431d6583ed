"""The charger's cryptography (simulator.machines.certificates), without a charger: key pairs,
CSRs, chain checks and hash data, the last checked against an independent computation (the OCSP
CertID that ``cryptography`` builds, RFC 6960, whose fields OCPP's CertificateHashDataType
copies)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from simulator.machines.certificates import (
    MAX_CSR_LENGTH,
    CertificateError,
    build_csr,
    check_chain,
    check_root,
    hash_data,
    load_certificate,
    load_chain,
    new_key_pair,
    same_certificate,
    subject_public_key_bits,
)
from simulator.ocpp.v16 import CertificateHashData, HashAlgorithm
from tests.machines.pki import DAY, Authority, make_ca, pem, sign_csr

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = 365 * DAY


def ca(name: str = "Root", issuer: Authority | None = None, **kwargs: object) -> Authority:
    return make_ca(name, not_before=NOW - YEAR, not_after=NOW + YEAR, issuer=issuer,
                   **kwargs)  # type: ignore[arg-type]


# --- key pair and CSR -------------------------------------------------------------------------


def test_key_pairs_are_reproducible_from_the_seed_and_new_at_each_draw() -> None:
    first, second = random.Random(3), random.Random(3)
    a, b = new_key_pair(first), new_key_pair(second)
    assert a.private_numbers().private_value == b.private_numbers().private_value
    assert new_key_pair(first).private_numbers() != a.private_numbers()
    assert a.curve.name == "secp256r1"


def test_the_csr_names_the_cpo_and_the_charger_and_is_signed_with_the_key_pair() -> None:
    key = new_key_pair(random.Random(1))
    text = build_csr(key, organization="Acme CPO", common_name="CP-1")
    assert len(text) <= MAX_CSR_LENGTH and text.startswith("-----BEGIN CERTIFICATE REQUEST")
    csr = x509.load_pem_x509_csr(text.encode())
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert [(a.oid, a.value) for a in csr.subject] == [
        (NameOID.ORGANIZATION_NAME, "Acme CPO"), (NameOID.COMMON_NAME, "CP-1")]
    # deterministic: the same seed writes the same CSR, so a run replays byte for byte
    again = build_csr(new_key_pair(random.Random(1)), organization="Acme CPO", common_name="CP-1")
    assert again == text


@pytest.mark.parametrize(("organization", "common_name"), [("", "CP-1"), ("x" * 65, "CP-1"),
                                                           ("Acme", "")])
def test_a_csr_needs_names_x509_can_carry(organization: str, common_name: str) -> None:
    with pytest.raises(CertificateError):
        build_csr(new_key_pair(random.Random(1)), organization=organization,
                  common_name=common_name)


# --- parsing ----------------------------------------------------------------------------------


def test_load_chain_keeps_the_order_of_the_blocks() -> None:
    root = ca()
    inter = ca("Sub", issuer=root)
    assert load_chain(pem(inter.cert, root.cert)) == [inter.cert, root.cert]
    assert load_certificate(root.pem) == root.cert


@pytest.mark.parametrize("text", [
    "",
    "not a certificate",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "junk\n" + "{root}",
])
def test_load_chain_refuses_what_is_not_pem_certificates(text: str) -> None:
    with pytest.raises(CertificateError):
        load_chain(text.replace("{root}", ca().pem))


def test_load_certificate_wants_exactly_one() -> None:
    root = ca()
    with pytest.raises(CertificateError, match="one certificate"):
        load_certificate(pem(root.cert, root.cert))


# --- chains -----------------------------------------------------------------------------------


def chain_for() -> tuple[Authority, Authority, list[x509.Certificate]]:
    """A root, an intermediate, and the chain (leaf, intermediate) for seed 1's key pair."""
    root = ca()
    inter = ca("Sub", issuer=root)
    key = new_key_pair(random.Random(1))
    csr = build_csr(key, organization="Acme", common_name="CP-1")
    leaf = sign_csr(csr, inter, not_before=NOW - DAY, not_after=NOW + YEAR)
    return root, inter, [leaf, inter.cert]


def test_a_good_chain_passes_with_or_without_installed_roots() -> None:
    root, _, chain = chain_for()
    key = new_key_pair(random.Random(1))
    check_chain(chain, key=key, at=NOW, roots=[])
    check_chain(chain, key=key, at=NOW, roots=[root.cert])
    check_chain([*chain, root.cert], key=key, at=NOW, roots=[root.cert])  # root included


@pytest.mark.parametrize(("case", "message"), [
    ("wrong key", "not for the key pair"),
    ("bad signature", "is not signed by"),
    ("broken order", "is not signed by"),
    ("expired", "expired"),
    ("not yet valid", "not valid before"),
    ("other root", "installed CentralSystemRootCertificate"),
])
def test_a_bad_chain_is_refused_with_its_reason(case: str, message: str) -> None:
    root, inter, chain = chain_for()
    key = new_key_pair(random.Random(1))
    roots = [root.cert]
    csr = build_csr(key, organization="Acme", common_name="CP-1")
    match case:
        case "wrong key":
            key = new_key_pair(random.Random(2))
        case "bad signature":
            impostor = ca("Sub")  # same name, another key
            chain = [sign_csr(csr, inter, not_before=NOW - DAY, not_after=NOW + YEAR,
                              signer=impostor.key), inter.cert]
        case "broken order":
            chain = [chain[0], root.cert, inter.cert]
        case "expired":
            chain = [sign_csr(csr, inter, not_before=NOW - YEAR, not_after=NOW - DAY),
                     inter.cert]
        case "not yet valid":
            chain = [sign_csr(csr, inter, not_before=NOW + DAY, not_after=NOW + YEAR),
                     inter.cert]
        case "other root":
            roots = [ca("Another root").cert]
    with pytest.raises(CertificateError, match=message):
        check_chain(chain, key=key, at=NOW, roots=roots)


def test_a_root_must_be_valid_now_and_a_ca() -> None:
    check_root(ca().cert, NOW)
    with pytest.raises(CertificateError, match="expired"):
        check_root(ca().cert, NOW + 2 * YEAR)
    with pytest.raises(CertificateError, match="not a CA"):
        check_root(ca(ca=False).cert, NOW)


# --- hash data --------------------------------------------------------------------------------

_ALGORITHMS = {
    HashAlgorithm.SHA256: hashes.SHA256(),
    HashAlgorithm.SHA384: hashes.SHA384(),
    HashAlgorithm.SHA512: hashes.SHA512(),
}


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
@pytest.mark.parametrize("rsa_key", [False, True])
def test_hash_data_match_the_ocsp_cert_id(algorithm: HashAlgorithm, rsa_key: bool) -> None:
    root = ca(rsa_key=rsa_key, serial=0x00AB_CDEF_0123)
    ours = hash_data(root.cert, algorithm)
    request = ocsp.OCSPRequestBuilder().add_certificate(
        root.cert, root.cert, _ALGORITHMS[algorithm]).build()
    assert ours.hash_algorithm == algorithm
    assert ours.issuer_name_hash == request.issuer_name_hash.hex()
    assert ours.issuer_key_hash == request.issuer_key_hash.hex()
    assert ours.serial_number == "abcdef0123" == format(request.serial_number, "x")


def test_the_issuer_key_is_the_bit_string_of_the_public_key() -> None:
    key = new_key_pair(random.Random(5)).public_key()
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert subject_public_key_bits(spki) == key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    with pytest.raises(ValueError):
        subject_public_key_bits(b"\x30\x03\x02\x01\x00")


def test_hash_data_compare_without_regard_to_case_or_leading_zeroes() -> None:
    data = hash_data(ca(serial=0x1F).cert)
    shouted = CertificateHashData(
        hash_algorithm=data.hash_algorithm, issuer_name_hash=data.issuer_name_hash.upper(),
        issuer_key_hash=data.issuer_key_hash.upper(), serial_number="001F")
    assert same_certificate(data, shouted)
    other = CertificateHashData(
        hash_algorithm=HashAlgorithm.SHA384, issuer_name_hash=data.issuer_name_hash,
        issuer_key_hash=data.issuer_key_hash, serial_number=data.serial_number)
    assert not same_certificate(data, other)
