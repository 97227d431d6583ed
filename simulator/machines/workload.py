"""The automatic workload of a connector: how often EVs arrive, how long they stay, how much
energy they want, which tags they present. Pure data (no trio): the fleet file's
``[group.sessions]`` table resolves into a :class:`SessionPlan` (:mod:`simulator.config`), and
the connector actor draws from it with the connector's seeded RNG.
"""

from __future__ import annotations

import msgspec

from simulator.durations import Range

__all__ = ["Range", "SessionPlan"]


class SessionPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Automatic transactions on every connector of a group.

    ``arrivals_per_hour`` is the Poisson rate of arriving EVs per connector (``0``: none);
    ``duration`` the range of a session's length in seconds; ``energy_kwh`` the range of the energy
    an EV wants, in kWh; each session presents one of ``id_tags`` (OCPP idTags, at most 20
    characters once filled in: ``{charger}`` and ``{connector}`` make a tag per charger or per
    connector, see :meth:`tag`). Ranges are drawn uniformly with :meth:`Range.draw`.
    """

    arrivals_per_hour: float
    duration: Range
    energy_kwh: Range
    id_tags: tuple[str, ...]

    @staticmethod
    def tag(template: str, charger: str, connector: int) -> str:
        """``template`` (one of ``id_tags``) filled in for ``connector`` of ``charger``: every
        ``{charger}`` and ``{connector}`` replaced, anything else kept as written. Tags of their
        own keep drivers of different connectors from sharing one by accident (the CSMS would
        answer ConcurrentTx)."""
        if "{" not in template:
            return template
        return template.replace("{charger}", charger).replace("{connector}", str(connector))
