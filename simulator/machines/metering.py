"""The charger's metering: sampled, clock-aligned and triggered MeterValues, and energy caps.

Rules (OCPP 1.6 core spec §3.13 Metering Data, §4.7 MeterValues):

- Sampled MeterValues every ``MeterValueSampleInterval`` s from the transaction start
  (``MeterValuesSampledData``); clock-aligned ones every ``ClockAlignedDataInterval`` s from
  midnight on the charger's clock (``MeterValuesAlignedData``; outside a transaction they are
  ordinary messages without a transactionId). ``StopTxnSampledData`` / ``StopTxnAlignedData``
  are collected at the same instants (plus Transaction.Begin and .End) into StopTransaction's
  ``transactionData``.
- A transaction's MeterValues go through the session's outbox; the session fills in the CS's
  ``transactionId`` when it sends them.
- A transaction capped by ``MaxEnergyOnInvalidId`` suspends the EVSE (SuspendedEVSE) once that
  much energy has flowed.
- While energy flows the statuses are re-checked every :data:`STATUS_REFRESH` seconds (an EV
  that became full shows SuspendedEV).
- Smart charging: a running transaction's power is capped by its connector's composite limit
  (:mod:`simulator.machines.charging_profiles`), in W over the phases its EV loads; the
  ChargePointMaxProfile is shared equally among the running transactions, so together they never
  exceed it. The cap follows every change: a profile set or cleared, a transaction started or
  ended, the clock set, and the composite's period boundaries (a deadline). A limit of 0 shows as
  SuspendedEVSE.

:class:`Metering` owns the sampling schedule (clock-aligned instant, cap and refresh times); the
per-transaction next sample lives on the :class:`~simulator.machines.parts.Transaction`.
"""

from __future__ import annotations

import math
from typing import Final

from simulator.machines.context import ChargerContext
from simulator.machines.measurands import MeasurandSpec
from simulator.machines.meter import LimitUnit
from simulator.machines.parts import Transaction, earliest
from simulator.machines.sampling import next_clock_aligned, next_periodic_sample
from simulator.ocpp.v16 import (
    ChargingRateUnitType,
    Measurand,
    MeterValue,
    MeterValuesRequest,
    ReadingContext,
)

STATUS_REFRESH: Final = 30.0
"""While energy flows, how often the charger re-checks whether the EV became full (SuspendedEV)."""

_CAP_TOLERANCE_WH: Final = 0.5
"""An energy cap this close to reached counts as reached (the meter integrates analytically)."""

LIMIT_HORIZON: Final = 86_400.0
"""How far ahead the charging limits are planned (s); with no change within, they are
re-planned then."""


def time_to_energy(remaining_wh: float, power_w: float) -> float:
    """Seconds until ``remaining_wh`` is delivered at ``power_w`` (inf when nothing flows). Power
    never rises while a session goes on, so this is a lower bound: re-check when it passes."""
    if power_w <= 0:
        return math.inf
    return remaining_wh / power_w * 3600.0


class Metering:
    """Sampling and energy caps of one charge point (see the module docstring)."""

    def __init__(self, ctx: ChargerContext) -> None:
        self.ctx = ctx
        self.aligned_at: float | None = None
        """The next clock-aligned sampling instant (None until online, or when off)."""
        self.cap_at: float | None = None
        """When the next energy cap may be reached (a lower bound; planned by :meth:`plan`)."""
        self.refresh_at: float | None = None
        """When the statuses are re-checked while energy flows."""
        self.limit_at: float | None = None
        """When the charging limits change next (None: no profile caps a transaction)."""
        self._limit_wall = -math.inf
        """``limit_at`` on the charger's clock (Unix seconds)."""
        self._limits_from: tuple[object, ...] | None = None
        """What the limits in force were computed from (profiles, clock, transactions)."""

    # --- schedule -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest sampling, cap or refresh instant, or None."""
        return earliest(self.aligned_at, self.cap_at, self.refresh_at, self.limit_at,
                        *[p.transaction.next_sample for p in self.ctx.points.values()
                          if p.transaction is not None])

    def due(self, now: float) -> None:
        """Apply the charging limits, take the samples that are due, check the caps, refresh
        statuses while energy flows."""
        self.apply_limits(now)
        self.sample_periodic(now)
        if self.aligned_at is not None and now >= self.aligned_at:
            self.sample_aligned(now)
            self.aligned_at = self.next_aligned(now)
        if self.cap_at is not None and now >= self.cap_at:
            self.check_caps(now)
        if self.refresh_at is not None and now >= self.refresh_at:
            self.ctx.refresh_all(now)
        delivering = any(p.transaction is not None and self.ctx.meters[cid].delivering
                         for cid, p in self.ctx.points.items())
        self.refresh_at = now + STATUS_REFRESH if delivering else None

    def plan(self, now: float) -> None:
        """Re-plan the cap check after the state changed (the end of every step)."""
        self.cap_at = self.cap_deadline(now)

    def go_online(self, now: float) -> None:
        """Connected and Accepted: start the clock-aligned schedule if it is not running."""
        if self.aligned_at is None:
            self.aligned_at = self.next_aligned(now)

    def stop_schedule(self) -> None:
        """Power on: the clock-aligned schedule starts again once online."""
        self.aligned_at = None

    def clock_changed(self, now: float) -> None:
        """The charger's clock was set: re-plan the clock-aligned grid on the new clock (the old
        plan would sample off the grid and then, once re-planned, twice in a row)."""
        if self.aligned_at is not None:
            self.aligned_at = self.next_aligned(now)

    def aligned_interval_changed(self, now: float) -> None:
        """ClockAlignedDataInterval changed: the grid starts again from ``now``."""
        self.aligned_at = self.next_aligned(now)

    def next_aligned(self, now: float) -> float | None:
        """The next clock-aligned sampling instant after ``now``, or None when off."""
        interval = self.ctx.config.get_int("ClockAlignedDataInterval")
        return next_clock_aligned(now, wall_offset=self.ctx.wall_offset, interval=interval)

    def begin(self, tx: Transaction, now: float) -> None:
        """A transaction started: its charging limit, its Transaction.Begin reading and its
        first sample time."""
        self.apply_limits(now)
        self.collect_stop_data(tx, now, "StopTxnSampledData", ReadingContext.TRANSACTION_BEGIN)
        interval = self.ctx.config.get_int("MeterValueSampleInterval")
        tx.next_sample = next_periodic_sample(now, start=now, interval=interval)

    def reschedule_samples(self, now: float) -> None:
        """MeterValueSampleInterval changed: re-plan every running transaction's next sample."""
        interval = self.ctx.config.get_int("MeterValueSampleInterval")
        for point in self.ctx.points.values():
            tx = point.transaction
            if tx is not None:
                tx.next_sample = next_periodic_sample(now, start=tx.started_at, interval=interval)

    # --- samples ------------------------------------------------------------------------------

    def sample_periodic(self, now: float) -> None:
        """Take the periodic samples that are due (MeterValueSampleInterval), if any."""
        ctx = self.ctx
        interval = ctx.config.get_int("MeterValueSampleInterval")
        for point in ctx.points.values():
            tx = point.transaction
            if tx is None or tx.next_sample is None or now < tx.next_sample:
                continue
            specs = ctx.config.get_measurands("MeterValuesSampledData")
            value = self._meter_value(point.connector_id, specs, now,
                                      ReadingContext.SAMPLE_PERIODIC, "periodic")
            if value is not None:
                self._enqueue_meter_values(tx, value, now)
            self.collect_stop_data(tx, now, "StopTxnSampledData", ReadingContext.SAMPLE_PERIODIC)
            tx.next_sample = next_periodic_sample(now, start=tx.started_at, interval=interval)
            ctx.refresh_status(point.connector_id, now)

    def sample_aligned(self, now: float) -> None:
        """Take the clock-aligned samples (ClockAlignedDataInterval) of every connector."""
        ctx = self.ctx
        specs = ctx.config.get_measurands("MeterValuesAlignedData")
        for point in ctx.points.values():
            cid = point.connector_id
            tx = point.transaction
            value = self._meter_value(cid, specs, now, ReadingContext.SAMPLE_CLOCK, "aligned")
            if tx is not None:
                if value is not None:
                    self._enqueue_meter_values(tx, value, now)
                self.collect_stop_data(tx, now, "StopTxnAlignedData", ReadingContext.SAMPLE_CLOCK)
            elif value is not None and ctx.accepted_online():
                ctx.session.call(MeterValuesRequest(connector_id=cid, meter_value=(value,)), now)
            ctx.refresh_status(cid, now)

    def triggered_meter_values(self, connector_id: int, now: float) -> None:
        """Send MeterValues with context Trigger for one connector (an ordinary message)."""
        ctx = self.ctx
        specs = ctx.config.get_measurands("MeterValuesSampledData") or (
            MeasurandSpec(Measurand.ENERGY_ACTIVE_IMPORT_REGISTER),
        )
        value = self._meter_value(connector_id, specs, now, ReadingContext.TRIGGER, None)
        if value is None:
            return
        tx = ctx.points[connector_id].transaction
        tx_id = None
        if tx is not None:
            tx_id = tx.transaction_id if tx.transaction_id is not None else (
                ctx.session.transaction_id(tx.local_id)
            )
        ctx.session.call(
            MeterValuesRequest(connector_id=connector_id, meter_value=(value,),
                               transaction_id=tx_id),
            now,
        )

    def collect_stop_data(
        self, tx: Transaction, now: float, key: str, context: ReadingContext
    ) -> None:
        """Add a reading of the measurands ``key`` lists to ``tx``'s transactionData."""
        specs = self.ctx.config.get_measurands(key)
        if not specs:
            return
        value = self._meter_value(tx.connector_id, specs, now, context, f"stop:{key}",
                                  frame=False)
        if value is not None:
            tx.stop_data.append(value)

    def _meter_value(
        self,
        connector_id: int,
        specs: tuple[MeasurandSpec, ...],
        now: float,
        context: ReadingContext,
        stream: str | None,
        *,
        frame: bool = True,
    ) -> MeterValue | None:
        """A reading of ``specs`` as written (see :mod:`.breaches`); ``frame``: it goes into a
        MeterValues of its own (not into transactionData collected in advance)."""
        if not specs:
            return None
        sampled = self.ctx.meters[connector_id].sample(specs, now, context=context, stream=stream)
        if not sampled:
            return None
        return MeterValue(timestamp=self.ctx.stamp(now),
                          sampled_value=self.ctx.written_sample(connector_id, sampled, now,
                                                                frame=frame))

    def _enqueue_meter_values(self, tx: Transaction, value: MeterValue, now: float) -> None:
        self.ctx.session.enqueue_transaction(
            # No transactionId: the session fills in the CS's id when it sends the message.
            MeterValuesRequest(connector_id=tx.connector_id, meter_value=(value,)),
            now,
            local_tx=tx.local_id,
        )

    # --- energy caps --------------------------------------------------------------------------

    def check_caps(self, now: float) -> None:
        """Suspend the EVSE on transactions that used up their ``MaxEnergyOnInvalidId``."""
        ctx = self.ctx
        for point in ctx.points.values():
            tx = point.transaction
            if tx is None or tx.energy_cap_wh is None:
                continue
            meter = ctx.meters[point.connector_id]
            meter.advance(now)
            if meter.delivering and meter.register_wh - tx.meter_start >= (
                tx.energy_cap_wh - _CAP_TOLERANCE_WH
            ):
                meter.set_delivering(False, now)
                ctx.note(now, "energy_cap_reached", point.connector_id,
                         max_energy_wh=tx.energy_cap_wh)
            ctx.refresh_status(point.connector_id, now)

    def cap_deadline(self, now: float) -> float | None:
        """When the next energy cap may be reached (a lower bound), or None."""
        best: float | None = None
        for point in self.ctx.points.values():
            tx = point.transaction
            if tx is None or tx.energy_cap_wh is None:
                continue
            meter = self.ctx.meters[point.connector_id]
            if not meter.delivering:
                continue
            meter.advance(now)
            remaining = tx.energy_cap_wh - (meter.register_wh - tx.meter_start)
            wait = max(time_to_energy(remaining, meter.power_w()), 1.0)
            if math.isfinite(wait):
                best = now + wait if best is None else min(best, now + wait)
        return best

    # --- charging limits (smart charging) -----------------------------------------------------

    def apply_limits(self, now: float) -> None:
        """Cap each running transaction's power by its connector's composite limit at ``now``
        (see the module docstring), and plan when the limits change next."""
        ctx = self.ctx
        store = ctx.charging_profiles
        for gone in store.sync(ctx.points):
            ctx.note(now, "charging_profile_ended", gone.connector_id,
                     charging_profile_id=gone.profile_id)
        if not len(store) and self._limits_from is None:
            return  # nothing installed, nothing capped: the usual case, kept cheap
        running = tuple(
            (cid, p.transaction.local_id, ctx.meters[cid].loaded_phases())
            for cid, p in sorted(ctx.points.items()) if p.transaction is not None)
        source = (store.version, ctx.wall_offset, running)
        due = self.limit_at is not None and now >= self.limit_at
        if source == self._limits_from and not due:
            return
        wall = ctx.wall_offset + now
        if due and self._limits_from is not None and self._limits_from[1] == ctx.wall_offset:
            wall = max(wall, self._limit_wall)  # the boundary itself, whatever the rounding
        self._limits_from = source if len(store) else None
        limits: dict[int, float | None] = {cid: None for cid in ctx.points}
        change: float | None = None
        for cid, _, _ in running if len(store) else ():
            composite = store.composite(
                cid, start=wall, duration=LIMIT_HORIZON, unit=ChargingRateUnitType.WATTS,
                points=ctx.points, meters=ctx.meters, wall_offset=ctx.wall_offset,
                rated=False, share=len(running),
            )
            limits[cid] = composite.periods[0].limit
            ahead = composite.next_change()
            change = earliest(change, wall + LIMIT_HORIZON if ahead is None else ahead)
        self._limit_wall = change if change is not None else -math.inf
        self.limit_at = None if change is None else now + (change - wall)
        for cid, limit in limits.items():
            meter = ctx.meters[cid]
            if limit != meter.limit_w:
                meter.set_limit(limit, LimitUnit.W, now)
                ctx.note(now, "charging_limit", cid, limit_w=limit)
                ctx.refresh_status(cid, now)
