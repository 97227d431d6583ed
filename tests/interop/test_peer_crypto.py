"""The peer central system's own cryptography (``peer_crypto.py``), checked without a charger:
its certificate hash data are OCSP's CertID (the ``cryptography`` package's OCSP request builder
is the oracle), its firmware signatures verify with its signing certificate, and its CA signs a
CSR with the CSR's subject and key. The profiles test relies on all three."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from . import peer_crypto as crypto
from .peer_profiles import SIGNED_FIRMWARE_LOCATION


def test_the_peers_hash_data_are_the_ocsp_cert_id_of_the_certificate() -> None:
    """The security whitepaper's CertificateHashDataType is OCSP's CertID: the peer's
    computation agrees with the ``cryptography`` package's OCSP request builder."""
    root = crypto.Authority.create("check root")
    signer = crypto.FirmwareSigner.create(root, "rsa")
    for certificate, issuer in ((root.certificate, root.certificate),
                                (signer.certificate, root.certificate)):
        request = ocsp.OCSPRequestBuilder().add_certificate(
            certificate, issuer, hashes.SHA256()).build()
        ours = crypto.hash_data(certificate, issuer)
        assert ours == {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": request.issuer_name_hash.hex(),
            "issuerKeyHash": request.issuer_key_hash.hex(),
            "serialNumber": format(request.serial_number, "x"),
        }
        upper = {k: v.upper() for k, v in ours.items()}
        assert crypto.same_hash_data(ours, upper | {"serialNumber": "00" + ours["serialNumber"]})
        assert not crypto.same_hash_data(ours, ours | {"serialNumber": "1"})


@pytest.mark.parametrize("key_kind", ["ec", "rsa"])
def test_the_peers_firmware_signature_verifies_with_its_signing_certificate(
    key_kind: str,
) -> None:
    signer = crypto.FirmwareSigner.create(crypto.Authority.create("maker"), key_kind)
    signature = base64.b64decode(signer.sign(SIGNED_FIRMWARE_LOCATION))
    assert len(signer.sign(SIGNED_FIRMWARE_LOCATION)) <= 800  # the schema's bound
    data = crypto.simulated_firmware(SIGNED_FIRMWARE_LOCATION)
    key = signer.certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    signer.certificate.verify_directly_issued_by(signer.root.certificate)


def test_the_peer_signs_a_csr_with_its_subject_and_key() -> None:
    key = crypto.new_key("ec")
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Peer CPO"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "PR-1")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    root = crypto.Authority.create("csms")
    leaf = root.sign_csr(csr_pem)
    assert leaf.subject == subject and leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(root.certificate)
    assert crypto.csr_summary(csr_pem)["organization"] == "Peer CPO"
