"""Which feature profiles a charger implements, and its handlers built for them.

:data:`SUPPORTED_PROFILES` lists every profile this version implements, one handler each;
:func:`charger_profiles` picks a charger's from its spec (``[group] profiles``), and
:func:`build_handlers` builds the handlers of the profiles its context supports, handing each
the components it shares with the rest of the charger. Adding a profile is a handler module and
one entry in each of the two tables here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from simulator.machines.context import ChargerContext
from simulator.machines.jobs import Jobs
from simulator.machines.metering import Metering
from simulator.machines.parts import ChargerSpec
from simulator.machines.profiles import ProfileHandler
from simulator.machines.profiles.certificates import CertificateManagement
from simulator.machines.profiles.core import CoreHandler
from simulator.machines.profiles.firmware import FirmwareHandler
from simulator.machines.profiles.local_auth_list import LocalAuthListHandler
from simulator.machines.profiles.remote_trigger import RemoteTriggerHandler
from simulator.machines.profiles.reservation import ReservationHandler
from simulator.machines.profiles.secure_firmware import SecureFirmwarePart
from simulator.machines.profiles.security import SecurityHandler
from simulator.machines.profiles.smart_charging import SmartChargingHandler
from simulator.machines.reboot import RebootSequence
from simulator.machines.transactions import Transactions
from simulator.machines.triggers import Triggers
from simulator.ocpp.v16 import Profile
from simulator.seeds import Rng, child

SUPPORTED_PROFILES: Final = (
    CoreHandler.profile, FirmwareHandler.profile, LocalAuthListHandler.profile,
    ReservationHandler.profile, SmartChargingHandler.profile, RemoteTriggerHandler.profile,
    SecurityHandler.profile,
)
"""The feature profiles this charger implements, in order: one handler each. A charger whose
spec names no ``profiles`` has them all; CS calls of any other profile are answered
NotSupported, and ``SupportedFeatureProfiles`` lists exactly the charger's."""


def charger_profiles(spec: ChargerSpec) -> tuple[Profile, ...]:
    """The profiles ``spec``'s charger implements, in :data:`SUPPORTED_PROFILES` order: those
    its ``profiles`` names (Core always), or all. Raises ``ValueError`` for a name this version
    does not implement."""
    if spec.profiles is None:
        return SUPPORTED_PROFILES
    unknown = sorted(set(spec.profiles) - {p.value for p in SUPPORTED_PROFILES})
    if unknown:
        raise ValueError(f"feature profile(s) not implemented: {', '.join(unknown)}; "
                         f"use some of {', '.join(p.value for p in SUPPORTED_PROFILES)}")
    wanted = {*spec.profiles, Profile.CORE.value}
    return tuple(p for p in SUPPORTED_PROFILES if p.value in wanted)



def build_handlers(
    ctx: ChargerContext,
    *,
    transactions: Transactions,
    metering: Metering,
    reboots: RebootSequence,
    jobs: Jobs,
    triggers: Triggers,
    rng: Rng,
) -> dict[enum.StrEnum, ProfileHandler]:
    """The handlers of the profiles ``ctx`` supports, by profile (the Security extension's
    certificate part draws its key pairs from a child of ``rng``)."""
    factories: dict[Profile, Callable[[], ProfileHandler]] = {
        Profile.CORE: lambda: CoreHandler(
            ctx, transactions=transactions, metering=metering, reboots=reboots),
        Profile.FIRMWARE_MANAGEMENT: lambda: FirmwareHandler(ctx, jobs=jobs),
        Profile.LOCAL_AUTH_LIST_MANAGEMENT: lambda: LocalAuthListHandler(ctx),
        Profile.RESERVATION: lambda: ReservationHandler(ctx),
        Profile.SMART_CHARGING: lambda: SmartChargingHandler(ctx),
        Profile.REMOTE_TRIGGER: lambda: RemoteTriggerHandler(ctx, triggers=triggers),
        Profile.SECURITY: lambda: SecurityHandler(ctx, parts=[
            CertificateManagement(ctx, triggers=triggers, rng=child(rng)),
            SecureFirmwarePart(ctx, jobs=jobs),
        ]),
    }
    return {profile: factories[profile]()
            for profile in SUPPORTED_PROFILES if ctx.supports(profile)}
