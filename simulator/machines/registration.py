"""The charger's standing with the central system: boot, heartbeat, status reports, clock.

Rules (OCPP 1.6 core spec §4.2 BootNotification, §4.6 Heartbeat, §4.9 StatusNotification):

- **Boot.** After a power-on the first thing on a connection is a BootNotification; nothing else
  is sent before the CS answers Accepted or Pending. Pending: CS calls are answered and only what
  they trigger is sent; the boot is repeated after ``interval``. Rejected: the boot is repeated
  after ``interval``; an ``interval`` of 0 (or less) is spread over 0.5-1.5 times ``boot_retry``
  from the charger's RNG, so a fleet does not retry in lockstep. An ``interval`` above
  :data:`MAX_BOOT_INTERVAL` is taken as that maximum, whatever the status. A boot that failed
  (CALLERROR, timeout) is repeated after ``boot_retry``; one lost with the link on the next
  connection. While any boot (a triggered one included) waits for its answer, and after a
  Pending or Rejected one, the transaction outbox holds.
- **Clock.** ``currentTime`` of a boot or Heartbeat answer sets the charger's clock; the clock-
  aligned sampling grid follows. A ``currentTime`` outside :data:`CLOCK_RANGE` is ignored (a
  ``clock_not_set`` note), so that every timestamp the charger writes stays a valid date-time.
  A sync that moves the clock by more than :data:`CLOCK_JUMP` raises the security event
  SettingSystemTime (a smaller one corrects drift and latency, not the time).
- **Security events** (whitepaper appendix 1, both "critical", so always reported):
  StartupOfTheDevice at every power-on, whatever the cause (first start, reset, crash, power
  loss); the reset or reboot itself is :mod:`.reboot`'s ResetOrReboot.
- **Heartbeat** once ``HeartbeatInterval`` seconds (the Accepted boot's ``interval`` sets it)
  passed without any frame of ours on the wire, while connected and Accepted: any PDU proves
  liveness, so a busy charger sends none.
- **Status reports** go out once a status held ``MinimumStatusDuration`` seconds, only while
  connected and Accepted; a report lost with the link goes out again after reconnecting.

:class:`Registration` owns the heartbeat period and the boot-retry spread; the boot state is the
:class:`~simulator.machines.context.ChargerContext`'s (the RemoteTrigger handler reads it).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from simulator.events import BootResult, Note
from simulator.machines.configuration import KEYS
from simulator.machines.context import ChargerContext
from simulator.machines.metering import Metering
from simulator.machines.outcomes import CallFailed
from simulator.machines.parts import BootState, earliest
from simulator.ocpp.v16 import (
    BootNotificationResponse,
    HeartbeatRequest,
    RegistrationStatus,
    SecurityEvent,
    StatusNotificationRequest,
)
from simulator.seeds import Rng

CONNECTION_LOST: Final = frozenset({"connection lost", "offline"})
"""``CallFailed.reason`` values meaning the link went, not that the CS refused."""

MAX_BOOT_INTERVAL: Final = KEYS["HeartbeatInterval"].maximum or 0
"""Seconds: the longest boot ``interval`` taken (``HeartbeatInterval``'s maximum, a week)."""

CLOCK_RANGE: Final = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                      dt.datetime(9000, 1, 1, tzinfo=dt.UTC))
"""The ``currentTime`` values the charger's clock takes, from the Unix epoch up to (excluded)
the year 9000: a run goes on for far less than the millennium left before ``datetime``'s end."""

CLOCK_JUMP: Final = 10.0
"""Seconds: a clock sync that moves the charger's clock by more than this is a
SettingSystemTime security event."""

_BOOT_RETRY: Final = frozenset({BootState.REJECTED, BootState.PENDING, BootState.WAITING})
"""Boot states in which a reached ``boot_at`` sends the BootNotification again."""


class Registration:
    """Boot, heartbeat, status reports and clock sync (see the module docstring).

    Args:
        ctx: the charger's shared context (boot state, session, connectors, clock).
        metering: re-plans the clock-aligned grid when the clock or the link changes.
        rng: the stream the Rejected-boot retry spread is drawn from.
    """

    def __init__(self, ctx: ChargerContext, metering: Metering, rng: Rng) -> None:
        self.ctx = ctx
        self.metering = metering
        self._rng = rng
        self.heartbeat_anchor: float | None = None
        """When the heartbeat period started (online and Accepted); None when not running."""

    # --- power and link -----------------------------------------------------------------------

    def power_on(self, now: float) -> None:
        """A (re)boot: registration starts again (and the StartupOfTheDevice event)."""
        self.ctx.security_event(SecurityEvent.STARTUP_OF_THE_DEVICE, now)
        self.ctx.boot = BootState.WAITING
        self.ctx.boot_at = None
        self.heartbeat_anchor = None

    def connected(self, now: float) -> None:
        """The link is up: boot if not registered (and not waiting out a retry interval); an
        Accepted charger goes on where it was."""
        ctx = self.ctx
        if ctx.boot == BootState.WAITING and (ctx.boot_at is None or now >= ctx.boot_at):
            ctx.send_boot(now)
        elif ctx.boot == BootState.ACCEPTED:
            self._go_online(now)

    def _go_online(self, now: float) -> None:
        """Connected and Accepted: statuses, heartbeats and the outbox may move."""
        ctx = self.ctx
        for machine in ctx.connectors.values():
            machine.mark_online(now)
        ctx.session.transactions_enabled = True
        if self.heartbeat_anchor is None:
            self.heartbeat_anchor = now
        self.metering.go_online(now)
        ctx.session.pump(now)

    # --- answers ------------------------------------------------------------------------------

    def boot_answered(self, response: BootNotificationResponse, now: float) -> None:
        """The CS answered a BootNotification."""
        ctx = self.ctx
        self.sync_clock(response.current_time, now)
        status, interval = response.status, response.interval
        ctx.publish(BootResult(t=now, charger=ctx.charger, status=status.value,
                               interval=interval))
        if interval > MAX_BOOT_INTERVAL:
            ctx.note(now, "boot_interval_capped", interval=str(interval), used=MAX_BOOT_INTERVAL)
            interval = MAX_BOOT_INTERVAL
        if status == RegistrationStatus.ACCEPTED:
            first = ctx.boot != BootState.ACCEPTED
            ctx.boot = BootState.ACCEPTED
            ctx.boot_at = None
            if interval > 0:
                ctx.config.set_internal("HeartbeatInterval", interval)
            if first:
                self.heartbeat_anchor = now
                self._go_online(now)
            else:  # a triggered boot: the outbox held back while it was in flight moves on
                ctx.session.transactions_enabled = True
                ctx.session.pump(now)
            return
        wait = float(interval) if interval > 0 else ctx.spec.boot_retry * self._rng.uniform(
            0.5, 1.5)
        ctx.boot = BootState.PENDING if status == RegistrationStatus.PENDING \
            else BootState.REJECTED
        # (also after a triggered boot of an Accepted charger: the queue waits for Accepted)
        ctx.session.transactions_enabled = False
        ctx.boot_at = now + wait
        ctx.publish(Note(t=now, charger=ctx.charger, what="boot_retry_planned",
                         data={"status": status.value, "in": round(wait, 3)}))

    def boot_failed(self, failed: CallFailed, now: float) -> None:
        """A BootNotification got no valid answer."""
        ctx = self.ctx
        if ctx.boot == BootState.ACCEPTED:
            # a triggered boot got no answer: still Accepted, the outbox moves on
            ctx.session.transactions_enabled = True
            ctx.session.pump(now)
            return
        if ctx.boot != BootState.BOOTING:
            return
        ctx.boot = BootState.WAITING
        lost = failed.reason in CONNECTION_LOST
        ctx.boot_at = None if lost else now + ctx.spec.boot_retry

    def status_failed(self, request: StatusNotificationRequest, reason: str) -> None:
        """A StatusNotification got no answer: lost with the link (not refused), the current
        status goes out after reconnecting."""
        if reason in CONNECTION_LOST:
            self.ctx.connectors[request.connector_id].report_lost(request.status,
                                                                  request.error_code)

    def sync_clock(self, current_time: dt.datetime, now: float) -> None:
        """Set the charger's clock from the CS's ``currentTime``."""
        ctx = self.ctx
        stamp = current_time if current_time.tzinfo is not None else current_time.replace(
            tzinfo=dt.UTC)
        if not CLOCK_RANGE[0] <= stamp < CLOCK_RANGE[1]:
            ctx.note(now, "clock_not_set", current_time=stamp.isoformat(),
                     reason="outside the years 1970 to 8999")
            return
        offset = stamp.timestamp() - ctx.wall_epoch - now
        moved, ctx.clock_offset = offset - ctx.clock_offset, offset
        if abs(moved) > CLOCK_JUMP:
            ctx.security_event(SecurityEvent.SETTING_SYSTEM_TIME, now,
                               f"clock set by {moved:+.3f} s")
        self.metering.clock_changed(now)

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The boot retry, and while online and Accepted the heartbeat and status reports."""
        ctx = self.ctx
        if not ctx.accepted_online():
            return ctx.boot_at
        return earliest(ctx.boot_at, self._heartbeat_deadline(),
                        *[m.next_deadline() for m in ctx.connectors.values()])

    def retry_boot(self, now: float) -> None:
        """Send the BootNotification again when its retry time has come."""
        ctx = self.ctx
        if ctx.boot_at is not None and now >= ctx.boot_at and ctx.powered \
                and ctx.boot in _BOOT_RETRY:
            ctx.boot_at = None
            if ctx.session.online:
                ctx.send_boot(now)
            else:
                ctx.boot = BootState.WAITING

    def report(self, now: float) -> None:
        """While powered, online and Accepted: the status reports and the heartbeat that are due."""
        ctx = self.ctx
        if not (ctx.powered and ctx.accepted_online()):
            return
        for machine in ctx.connectors.values():  # (built in connector order)
            status = machine.due_notification(now)
            if status is not None:
                ctx.session.call(ctx.status_request(status, now), now)
        deadline = self._heartbeat_deadline()
        if deadline is not None and now >= deadline:
            ctx.session.call(HeartbeatRequest(), now)
            self.heartbeat_anchor = now

    def _heartbeat_deadline(self) -> float | None:
        """``HeartbeatInterval`` after the later of the period start and our last frame."""
        start = self.heartbeat_anchor
        interval = self.ctx.config.get_int("HeartbeatInterval")
        if start is None or interval <= 0:
            return None
        last = self.ctx.session.last_sent
        if last is not None and last > start:
            start = last
        return start + interval
