"""Chaos: the fault catalog, targets and schedules (pure, no trio).

:mod:`.catalog` holds the fault names and the rules of a schedule, :mod:`.targets` who a fault
applies to. The fleet file's ``[[chaos]]`` tables are checked against them by
:mod:`simulator.config`; the director that injects faults (an actor) builds on the same names.
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
from simulator.chaos.targets import Target, check_target

__all__ = [
    "CATALOG",
    "FAULTS",
    "CatalogError",
    "Family",
    "Schedule",
    "Target",
    "check_fault",
    "check_schedule",
    "check_target",
    "family_of",
]
