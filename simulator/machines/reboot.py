"""Taking a charger down for a reboot: the CS's Reset and the local reboot command alike.

Rules (OCPP 1.6 core spec §5.14; the facade's "reboot" command):

- Every running transaction stops first, with the reason the cause names (SoftReset, HardReset,
  Reboot, PowerLoss). Its StopTransaction is queued in the outbox, so it survives the reboot.
  Then, unless the cause is a power loss (not a reset), the security event ResetOrReboot,
  queued behind those StopTransactions (whitepaper appendix 1: a critical event).
- *Soft*: the charger reboots once the outbox is delivered, the link is down, or
  ``call_timeout`` seconds have passed, whichever comes first.
- *Hard*: the charger goes down at once; the outbox holds from that instant (sending the
  StopTransactions now would race the closing socket and duplicate them) and is delivered after
  the next accepted boot.

:class:`RebootSequence` owns the only state of a pending soft reboot: when it gives up waiting.
"""

from __future__ import annotations

from simulator.machines.context import ChargerContext
from simulator.machines.transactions import Transactions
from simulator.ocpp.v16 import Reason, SecurityEvent


class RebootSequence:
    """Stops transactions and takes the charger down (see the module docstring)."""

    def __init__(self, ctx: ChargerContext, transactions: Transactions) -> None:
        self.ctx = ctx
        self.transactions = transactions
        self.until: float | None = None
        """While a soft reboot waits for the outbox to drain: when it reboots anyway."""

    def begin(
        self, now: float, reason: Reason, *, hard: bool, note: str, delay: float | None = None
    ) -> None:
        """Stop every transaction with ``reason`` and reboot (at once when ``hard``); ``note``
        is the :class:`~simulator.events.Note` recorded between the two (with the type).
        ``delay``: seconds the charger stays down (None: the spec's ``reboot_delay``; a power
        loss's outage)."""
        if hard:
            self.ctx.session.transactions_enabled = False
        self.transactions.stop_all(now, reason)
        self.ctx.note(now, note, type="Hard" if hard else "Soft")
        if reason != Reason.POWER_LOSS:
            self.ctx.security_event(SecurityEvent.RESET_OR_REBOOT, now, reason.value)
        if hard:
            self.go_down(now, delay)
        else:
            self.until = now + self.ctx.spec.call_timeout
            self.due(now)

    def next_deadline(self) -> float | None:
        """When a pending soft reboot stops waiting, or None."""
        return self.until

    def due(self, now: float) -> None:
        """Reboot a pending soft reboot when its StopTransactions are through (or time is up)."""
        if self.until is None:
            return
        session = self.ctx.session
        if not session.export_outbox() or not session.online or now >= self.until:
            self.go_down(now)

    def go_down(self, now: float, delay: float | None = None) -> None:
        """Go down now for ``delay`` seconds (None: ``reboot_delay``; the actor closes the
        socket, waits, and calls ``power_on``)."""
        self.until = None
        self.ctx.go_down(now, delay)

    def cancel(self) -> None:
        """Power is back: nothing is pending any more."""
        self.until = None
