"""Who a fault (or a scripted step) applies to: chargers by id or by group, a seeded fraction of
them, one connector or all. Pure data and the checks that need no fleet (no trio, no I/O).

Whether the named ids and group exist, and whether the connector does, depends on the fleet: the
fleet file's loader (:mod:`simulator.config`) checks that. Errors are
:class:`~simulator.chaos.catalog.CatalogError`\\ s whose ``path`` is relative to the target table.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from simulator.chaos.catalog import CatalogError

__all__ = ["Target", "check_target"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """Chargers ``ids`` or those of ``group`` (neither: the whole fleet), of which a seeded
    ``fraction`` (0..1) is picked; ``connector`` ``None`` means every connector (or the charger
    itself), ``0`` the charger itself, ``1..`` that connector."""

    ids: tuple[str, ...] = ()
    group: str | None = None
    fraction: float = 1.0
    connector: int | None = None


def check_target(
    *,
    ids: Sequence[str] | None = None,
    group: str | None = None,
    fraction: float = 1.0,
    connector: int | None = None,
) -> Target:
    """A :class:`Target`, or :class:`CatalogError`: ``ids`` and ``group`` exclude each other,
    ``ids`` (when given) lists at least one charger, ``fraction`` is within 0..1 and ``connector``
    is >= 0."""
    if ids is not None and group is not None:
        raise CatalogError((), "give ids or group, not both")
    if ids is not None and not ids:
        raise CatalogError(("ids",), "is empty; list charger ids or leave ids out")
    if not 0.0 <= fraction <= 1.0:
        raise CatalogError(("fraction",), f"must be within 0..1, got {fraction!r}")
    if connector is not None and connector < 0:
        raise CatalogError(("connector",), f"must be >= 0, got {connector}")
    return Target(ids=tuple(ids or ()), group=group, fraction=fraction, connector=connector)
