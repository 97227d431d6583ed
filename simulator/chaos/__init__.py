"""Chaos: the fault catalog, targets and schedules (pure, no trio).

:mod:`.catalog` holds the fault names and the rules of a schedule, :mod:`.params` each fault's
parameters, :mod:`.targets` who a fault applies to. The fleet file's ``[[chaos]]`` tables are
checked against them by :mod:`simulator.config`. :mod:`.plan` expands a fleet's rules into
:mod:`.injection`\\ s (which charger gets which fault when, seeded), which the director
(``simulator.actors.director``) hands to the chargers.
"""

from simulator.chaos.catalog import (
    CATALOG,
    FAULTS,
    CatalogError,
    Family,
    Schedule,
    check_fault,
    check_schedule,
    family_of,
)
from simulator.chaos.injection import Injection
from simulator.chaos.params import check_params, deliberate
from simulator.chaos.plan import ChaosPlan, Hit
from simulator.chaos.targets import Target, check_target

__all__ = [
    "CATALOG",
    "FAULTS",
    "CatalogError",
    "ChaosPlan",
    "Family",
    "Hit",
    "Injection",
    "Schedule",
    "Target",
    "check_fault",
    "check_params",
    "check_schedule",
    "check_target",
    "deliberate",
    "family_of",
]
