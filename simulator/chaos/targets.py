"""Who a fault (or a scripted step) applies to: chargers by id, by group or by a tag their groups
carry, a seeded fraction of them, one connector or all. Pure data and the checks that need no
fleet (no trio, no I/O); :mod:`simulator.chaos.plan` turns a target into chargers.

Whether the named ids, group and tag exist, and whether the connector does, depends on the
fleet: the fleet file's loader (:mod:`simulator.config`) checks that. Errors are
:class:`~simulator.chaos.catalog.CatalogError`\\ s whose ``path`` is relative to the target table.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from simulator.chaos.catalog import CatalogError

__all__ = ["Target", "check_target"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """Chargers ``ids``, those of ``group``, or those of every group whose ``tags`` hold ``tag``
    (none of the three: the whole fleet), of which a seeded ``fraction`` (0..1) is picked;
    ``connector`` ``None`` means every connector (or the charger itself), ``0`` the charger
    itself, ``1..`` that connector."""

    ids: tuple[str, ...] = ()
    group: str | None = None
    fraction: float = 1.0
    connector: int | None = None
    tag: str | None = None


def check_target(
    *,
    ids: Sequence[str] | None = None,
    group: str | None = None,
    fraction: float = 1.0,
    connector: int | None = None,
    tag: str | None = None,
) -> Target:
    """A :class:`Target`, or :class:`CatalogError`: ``ids``, ``group`` and ``tag`` exclude each
    other, ``ids`` (when given) lists at least one charger, ``tag`` (when given) is not empty,
    ``fraction`` is within 0..1 and ``connector`` is >= 0."""
    given = [key for key, value in (("ids", ids), ("group", group), ("tag", tag))
             if value is not None]
    if len(given) > 1:
        raise CatalogError((), f"give {' or '.join(given)}, not both" if len(given) == 2
                           else "give one of ids, group or tag")
    if tag is not None and not tag:
        raise CatalogError(("tag",), "is empty; name a tag of a group or leave tag out")
    if ids is not None and not ids:
        raise CatalogError(("ids",), "is empty; list charger ids or leave ids out")
    if not 0.0 <= fraction <= 1.0:
        raise CatalogError(("fraction",), f"must be within 0..1, got {fraction!r}")
    if connector is not None and connector < 0:
        raise CatalogError(("connector",), f"must be >= 0, got {connector}")
    return Target(ids=tuple(ids or ()), group=group, fraction=fraction, connector=connector,
                  tag=tag)
