"""The Security extension (OCPP 1.6 security whitepaper): one handler made of parts.

The extension's CS→CP actions fall into areas that keep separate state: certificates and the
charger's key pair (SignCertificate's answer, CertificateSigned, InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds, ExtendedTriggerMessage), and signed firmware
and log jobs (SignedUpdateFirmware, GetLog). Each area is a *part*: an object with the
:class:`~simulator.machines.profiles.ProfileHandler` interface (its ``profile`` is Security).
:class:`SecurityHandler` is the one handler the charger dispatches the Security profile to; it
asks its parts in turn, and the first that answers a request answers it. Its timers are its
parts' timers.

Security events themselves are not a CS→CP action: any part of the charger raises one with
:meth:`~simulator.machines.context.ChargerContext.security_event`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.parts import earliest
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.ocpp.v16 import Profile


class SecurityHandler(ProfileHandler):
    """The Security extension's CS→CP operations, answered by its ``parts`` (see the module
    docstring)."""

    profile = Profile.SECURITY

    def __init__(self, ctx: ChargerContext, *, parts: Sequence[ProfileHandler]) -> None:
        super().__init__(ctx)
        self.parts = tuple(parts)

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The first part's answer to ``request`` (None when no part implements it)."""
        for part in self.parts:
            answered = part.answer(request, now)
            if answered is not None:
                return answered
        return None

    def has_timers(self) -> bool:
        """Whether a part keeps timers."""
        return any(part.has_timers() for part in self.parts)

    def next_deadline(self) -> float | None:
        """The earliest of the parts' timers."""
        return earliest(*(part.next_deadline() for part in self.parts))

    def due(self, now: float) -> None:
        """Run what fell due in every part."""
        for part in self.parts:
            part.due(now)

    def powered_on(self, now: float) -> None:
        """A (re)boot, told to every part."""
        for part in self.parts:
            part.powered_on(now)
