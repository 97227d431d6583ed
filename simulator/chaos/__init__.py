"""Chaos: the fault catalog, its targets and schedules (pure, no trio).

The fleet file's ``[[chaos]]`` tables are checked against :mod:`simulator.chaos.catalog` by
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

__all__ = [
    "CATALOG",
    "FAULTS",
    "CatalogError",
    "Family",
    "Schedule",
    "check_fault",
    "check_schedule",
    "family_of",
]
