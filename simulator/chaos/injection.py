"""An injection: one fault of the catalog, decided for one charger, as the charger actor applies it.

The director (``simulator.actors.director``) expands the fleet file's ``[[chaos]]`` tables (and,
later, faults posted to the control API) into injections, records each as a ``fault`` event, and
hands it to the charger's inbox. The charger actor passes it on by family: a transport fault to its
link (the chaos stream under the WebSocket client), a protocol fault to where frames are encoded and
sent, a behaviour fault to its machine. Fleet faults (``blackout``, ``wave``) never reach a charger
as such: the director expands them into transport or behaviour injections.

Times are the run's monotonic seconds (``trio.current_time()`` in the actors): ``at`` is when the
fault takes effect, ``until`` when it ends (``None``: it acts once, or until the charger is told
otherwise). Pure data (no trio, no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from simulator.chaos.catalog import Family

__all__ = ["Injection", "Scalar"]

Scalar = str | int | float | bool
"""A fault parameter's value, as written in the fleet file."""


class Injection(msgspec.Struct, frozen=True, kw_only=True):
    """One fault for one charger (see the module docstring).

    Attributes:
        id: unique within the run for one charger (every charger one firing hits shares it):
            ``"<rule>.<firing>"`` for ``[[chaos]]`` rule ``rule`` (0-based) at its ``firing``-th
            time (0-based), ``"<rule>.<firing>.<k>"`` for the ``k``-th charger of a ``wave``;
            ``"step<i>"`` for a ``[[step]]``'s disconnect; other sources use their own prefix.
        fault: the catalog name.
        family: the catalog family of ``fault`` (never ``FLEET``: those are expanded first).
        connector: the connector it applies to (``None``: the charger, or every connector, as the
            fault defines).
        params: the fault's parameters, checked against its parameter spec, defaults filled in.
        at: when it takes effect (monotonic seconds).
        until: when it ends (``None``: instantaneous, or as long as the fault itself defines).
        deliberate: the fault breaks an invariant of the spec on purpose (a regressing register,
            a duplicate start): verdicts judge the CSMS's reaction, never blame it for the breach.
        seed_path: the parts of the seed derivation that chose this injection (for the ledger).
    """

    id: str
    fault: str
    family: Family
    at: float
    until: float | None = None
    connector: int | None = None
    params: Mapping[str, Scalar] = {}
    deliberate: bool = False
    seed_path: tuple[str | int, ...] = ()
