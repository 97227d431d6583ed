"""The connector actor: the EV drivers of one connector, as automatic sessions.

It produces domain requests (plug in, present a tag, stop, unplug) on its charger's inbox; the
charger's machines decide what goes on the wire. Arrivals are Poisson per connector (exponential
gaps drawn from the connector's seeded RNG, counted from the previous departure, so an EV that
would arrive while the connector is busy goes elsewhere); duration, energy and tag are drawn
from the group's ranges. Owns nothing but its RNG: it hands its requests to the charger through
a ``request`` function and closes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import trio

from simulator.machines.domain import DomainRequest, PlugIn, PresentTag, StopCharging, Unplug
from simulator.machines.meter import EvSpec
from simulator.machines.workload import SessionPlan
from simulator.seeds import Rng

WALK_BACK: Final = (2.0, 10.0)
"""Seconds between the stop (tag presented again) and the unplug: the driver walks to the car."""


BATTERIES_KWH: Final = (40.0, 58.0, 77.0, 100.0)
"""Battery sizes drawn for arriving EVs."""
ONBOARD_CHARGERS_KW: Final = (7.4, 11.0, 22.0)
"""On-board charger limits drawn for arriving EVs (the connector's own limit applies too)."""


def draw_ev(rng: Rng, energy_kwh: float) -> EvSpec:
    """An EV that wants ``energy_kwh``: a drawn battery and on-board charger, starting at an SoC
    low enough that the wanted energy fits in the battery."""
    battery = max(rng.choice(BATTERIES_KWH), energy_kwh * 1.25)
    headroom = 100.0 - 100.0 * energy_kwh / battery
    initial_soc = rng.uniform(min(5.0, headroom), max(min(5.0, headroom), min(60.0, headroom)))
    return EvSpec(
        battery_kwh=battery,
        initial_soc=round(initial_soc, 1),
        max_power_kw=rng.choice(ONBOARD_CHARGERS_KW),
        energy_wanted_kwh=energy_kwh,
    )


async def run_connector(
    connector_id: int,
    sessions: SessionPlan,
    rng: Rng,
    request: Callable[[DomainRequest], Awaitable[None]],
    *,
    charger: str = "",
    cancel_scope: trio.CancelScope | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Drive automatic sessions on ``connector_id`` of ``charger`` until cancelled (or
    ``cancel_scope``, which it enters, is cancelled: then it returns). Tag templates are filled
    in with ``charger`` and ``connector_id`` (:meth:`SessionPlan.tag`).

    ``request`` hands one request to the charger (``ChargerControl.request``: its inbox); it
    waits while the charger is busy (backpressure: drivers wait, nothing is dropped).
    """
    rate = sessions.arrivals_per_hour / 3600.0

    with cancel_scope if cancel_scope is not None else trio.CancelScope():
        task_status.started()
        if rate <= 0 or not sessions.id_tags:
            await trio.sleep_forever()
        while True:
            await trio.sleep(rng.expovariate(rate))
            duration = sessions.duration.draw(rng)
            energy_kwh = sessions.energy_kwh.draw(rng)
            tag = sessions.tag(rng.choice(sessions.id_tags), charger, connector_id)
            await request(PlugIn(connector_id, ev=draw_ev(rng, energy_kwh)))
            await request(PresentTag(connector_id, tag, start_only=True))
            await trio.sleep(max(duration, 0.0))
            await request(StopCharging(connector_id))
            await trio.sleep(rng.uniform(*WALK_BACK))
            await request(Unplug(connector_id))
