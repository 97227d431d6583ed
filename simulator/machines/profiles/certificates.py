"""The Security extension's certificate part: ExtendedTriggerMessage, the certificate request
(SignCertificate and CertificateSigned), and the root store (InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds).

Rules (OCPP 1.6 security whitepaper, edition 2; the cryptography is
:mod:`simulator.machines.certificates`'):

- **ExtendedTriggerMessage** follows TriggerMessage's rules (:mod:`.remote_trigger`): Rejected
  for a connectorId that does not exist when the message is per connector; before the boot is
  Accepted or Pending only a BootNotification; the message goes out after the answer (a
  FirmwareStatusNotification is the SignedFirmwareStatusNotification). SignChargePointCertificate
  is Rejected while ``CpoName`` is empty (a CSR needs it, as EVerest's charger also refuses) or
  a name cannot go into a CSR; else the charger makes a new key pair and its CSR, answers
  Accepted and sends SignCertificate(csr) (use case A02).
  The CS's answer to it is recorded (a ``certificate_request_answered`` note); Rejected ends the
  request, a call that got no answer leaves it open (the CS may have received the CSR).
- **CertificateSigned**: Rejected when no request is open, when the chain is longer than
  ``CertificateSignedMaxChainSize`` or fails the checks of
  :func:`~simulator.machines.certificates.check_chain` (against the installed
  CentralSystemRootCertificates), each with the security event InvalidChargePointCertificate.
  Accepted: the chain and its key become the charger's client certificate, used from the next
  connection on (a ``UseCredentials`` effect, no reconnect), and the request is closed.
- **InstallCertificate**: Rejected for a text that is not one PEM certificate, one not valid at
  the charger's wall time or not a CA, or when ``CertificateStoreMaxLength`` certificates (of
  both types together) are installed already; the whitepaper's CertificateStatusEnumType gives
  Rejected for "more certificates than allowed", and Failed only for a valid certificate that
  could not be stored, which does not happen here. Installing one already installed is
  Accepted and stores nothing new.
- **DeleteCertificate** finds a root of either type by its hash data, computed with the
  request's hash algorithm: NotFound, or Accepted. Failed for the last
  CentralSystemRootCertificate while ``SecurityProfile`` is 2 or more: the whitepaper forbids
  deleting the root that validates the connection, and with a single root installed under TLS
  that is the one (the rule EVerest's charger applies). The client certificate is not a root
  and cannot be deleted (NotFound).
- **GetInstalledCertificateIds**: the SHA256 hash data of every root of the type, or NotFound
  when there is none.

The private key is in no note, event or frame; notes name certificates by subject and serial.
"""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.machines.certificates import (
    CertificateError,
    build_csr,
    certificate_pem,
    check_chain,
    check_root,
    hash_data,
    load_certificate,
    load_chain,
    new_key_pair,
    private_key_pem,
    same_certificate,
)
from simulator.machines.context import ChargerContext
from simulator.machines.parts import BootState
from simulator.machines.profiles import Answer, AwaitsAnswer, ProfileHandler
from simulator.machines.triggers import PER_CONNECTOR, Triggers
from simulator.ocpp.v16 import (
    CertificateSignedRequest,
    CertificateSignedResponse,
    CertificateSignedStatus,
    CertificateStatus,
    CertificateUse,
    DeleteCertificateRequest,
    DeleteCertificateResponse,
    DeleteCertificateStatus,
    ExtendedTriggerMessageRequest,
    ExtendedTriggerMessageResponse,
    GenericStatus,
    GetInstalledCertificateIdsRequest,
    GetInstalledCertificateIdsResponse,
    GetInstalledCertificateStatus,
    InstallCertificateRequest,
    InstallCertificateResponse,
    MessageTrigger,
    Profile,
    SecurityEvent,
    SignCertificateRequest,
    TriggerMessageStatus,
)
from simulator.seeds import Rng

_CS_ROOT = CertificateUse.CENTRAL_SYSTEM_ROOT_CERTIFICATE


class CertificateManagement(ProfileHandler):
    """The certificate part of the Security extension (see the module docstring).

    Args:
        ctx: the charger's shared context (configuration, session, installed roots, client
            certificate, wall clock).
        triggers: sends the messages an ExtendedTriggerMessage asks for.
        rng: the stream the key pairs are drawn from.
    """

    profile = Profile.SECURITY

    def __init__(self, ctx: ChargerContext, *, triggers: Triggers, rng: Rng) -> None:
        super().__init__(ctx)
        self.triggers = triggers
        self._rng = rng
        self.requested: ec.EllipticCurvePrivateKey | None = None
        """The key pair of the open certificate request (kept through a reboot, as a charger
        keeps it in its secure storage); None when no request is open."""

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to a request of this part, and what to do once it is sent."""
        match request:
            case ExtendedTriggerMessageRequest():
                return self._trigger(request, now)
            case CertificateSignedRequest():
                return self._certificate_signed(request, now)
            case InstallCertificateRequest():
                return self._install(request, now)
            case DeleteCertificateRequest():
                return self._delete(request, now)
            case GetInstalledCertificateIdsRequest():
                return self._installed_ids(request)
            case _:
                return None

    # --- ExtendedTriggerMessage and the certificate request -----------------------------------

    def _trigger(self, request: ExtendedTriggerMessageRequest, now: float) -> Answer:
        ctx = self.ctx
        wanted, cid = request.requested_message, request.connector_id

        def refuse(reason: str) -> Answer:
            ctx.note(now, "trigger_rejected", requested=wanted.value, reason=reason)
            return ExtendedTriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None

        if wanted in PER_CONNECTOR and cid is not None and cid not in ctx.connectors:
            return refuse(f"no connector {cid}")
        if ctx.boot not in (BootState.ACCEPTED, BootState.PENDING) \
                and wanted != MessageTrigger.BOOT_NOTIFICATION:
            return refuse("the boot is not Accepted or Pending")
        if wanted == MessageTrigger.SIGN_CHARGE_POINT_CERTIFICATE:
            if not ctx.config.get_str("CpoName"):
                return refuse("CpoName is not set")
            key = new_key_pair(self._rng)
            try:
                csr = build_csr(key, organization=ctx.config.get_str("CpoName"),
                                common_name=ctx.charger)
            except CertificateError as exc:
                return refuse(str(exc))

            def request_certificate() -> None:
                self.request_certificate(key, csr, now)

            return ExtendedTriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED), \
                request_certificate

        def send() -> None:
            self.triggers.send(wanted, cid, now, signed=True)

        return ExtendedTriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED), send

    def request_certificate(self, key: ec.EllipticCurvePrivateKey, csr: str, now: float) -> None:
        """Send SignCertificate with ``csr``, the CSR of the new key pair ``key``; the request
        stays open until a CertificateSigned or a Rejected answer."""
        ctx = self.ctx
        self.requested = key
        ctx.note(now, "certificate_requested", common_name=ctx.charger)
        ctx.session.call(SignCertificateRequest(csr=csr), now, context=_CsrSent(self, key))

    def request_answered(self, key: ec.EllipticCurvePrivateKey, status: GenericStatus,
                         now: float) -> None:
        """The CS answered the SignCertificate of ``key``'s request."""
        self.ctx.note(now, "certificate_request_answered", status=status.value)
        if status != GenericStatus.ACCEPTED and self.requested is key:
            self.requested = None

    # --- CertificateSigned --------------------------------------------------------------------

    def _certificate_signed(self, request: CertificateSignedRequest, now: float) -> Answer:
        ctx = self.ctx
        text = request.certificate_chain
        key = self.requested
        try:
            if key is None:
                raise CertificateError("no certificate request is open")
            limit = ctx.config.get_int("CertificateSignedMaxChainSize")
            if len(text) > limit:
                raise CertificateError(f"the chain is {len(text)} characters, more than "
                                       f"CertificateSignedMaxChainSize ({limit})")
            chain = load_chain(text)
            check_chain(chain, key=key, at=ctx.wall(now), roots=self._roots(_CS_ROOT))
        except CertificateError as exc:
            reason = str(exc)

            def reject() -> None:
                ctx.note(now, "certificate_rejected", reason=reason)
                ctx.security_event(SecurityEvent.INVALID_CHARGE_POINT_CERTIFICATE, now, reason)

            return CertificateSignedResponse(status=CertificateSignedStatus.REJECTED), reject

        def install() -> None:
            assert key is not None
            self.requested = None
            ctx.client_certificate = (text, private_key_pem(key))
            ctx.note(now, "client_certificate_installed", certificate=_describe(chain[0]),
                     chain_length=len(chain))
            ctx.use_credentials()

        return CertificateSignedResponse(status=CertificateSignedStatus.ACCEPTED), install

    # --- the root store -----------------------------------------------------------------------

    def _install(self, request: InstallCertificateRequest, now: float) -> Answer:
        ctx = self.ctx
        use = request.certificate_type
        try:
            cert = load_certificate(request.certificate)
            check_root(cert, ctx.wall(now))
        except CertificateError as exc:
            ctx.note(now, "certificate_install_rejected", type=use.value, reason=str(exc))
            return InstallCertificateResponse(status=CertificateStatus.REJECTED), None
        if cert in self._roots(use):
            ctx.note(now, "certificate_already_installed", type=use.value,
                     certificate=_describe(cert))
            return InstallCertificateResponse(status=CertificateStatus.ACCEPTED), None
        limit = ctx.config.get_int("CertificateStoreMaxLength")
        if sum(len(pems) for pems in ctx.installed_certificates.values()) >= limit:
            ctx.note(now, "certificate_install_rejected", type=use.value,
                     reason=f"CertificateStoreMaxLength ({limit}) certificates installed")
            return InstallCertificateResponse(status=CertificateStatus.REJECTED), None
        ctx.installed_certificates.setdefault(use, []).append(certificate_pem(cert))
        ctx.note(now, "certificate_installed", type=use.value, certificate=_describe(cert))
        return InstallCertificateResponse(status=CertificateStatus.ACCEPTED), None

    def _delete(self, request: DeleteCertificateRequest, now: float) -> Answer:
        ctx = self.ctx
        wanted = request.certificate_hash_data
        for use, pems in ctx.installed_certificates.items():
            for index, pem in enumerate(pems):
                cert = load_certificate(pem)
                if not same_certificate(hash_data(cert, wanted.hash_algorithm), wanted):
                    continue
                if use == _CS_ROOT and len(pems) == 1 \
                        and ctx.config.get_int("SecurityProfile") >= 2:
                    ctx.note(now, "certificate_delete_failed", type=use.value,
                             reason="the last CentralSystemRootCertificate under TLS")
                    return DeleteCertificateResponse(status=DeleteCertificateStatus.FAILED), None
                del pems[index]
                ctx.note(now, "certificate_deleted", type=use.value, certificate=_describe(cert))
                return DeleteCertificateResponse(status=DeleteCertificateStatus.ACCEPTED), None
        return DeleteCertificateResponse(status=DeleteCertificateStatus.NOT_FOUND), None

    def _installed_ids(self, request: GetInstalledCertificateIdsRequest) -> Answer:
        roots = self._roots(request.certificate_type)
        if not roots:
            return GetInstalledCertificateIdsResponse(
                status=GetInstalledCertificateStatus.NOT_FOUND), None
        return GetInstalledCertificateIdsResponse(
            status=GetInstalledCertificateStatus.ACCEPTED,
            certificate_hash_data=tuple(hash_data(cert) for cert in roots),
        ), None

    def _roots(self, use: CertificateUse) -> list[x509.Certificate]:
        """The installed roots of ``use``, parsed."""
        return [load_certificate(pem) for pem in self.ctx.installed_certificates.get(use, ())]


class _CsrSent(AwaitsAnswer):
    """The context of a SignCertificate: hands the CS's answer back to the part."""

    def __init__(self, part: CertificateManagement, key: ec.EllipticCurvePrivateKey) -> None:
        self.part = part
        self.key = key

    def answered(self, response: Any, now: float) -> None:
        self.part.request_answered(self.key, response.status, now)

    def failed(self, reason: str, now: float) -> None:
        self.part.ctx.note(now, "certificate_request_unanswered", reason=reason)


def _describe(cert: x509.Certificate) -> dict[str, str]:
    """What a note says of a certificate: its subject, serial and end of validity."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
