"""Sans-IO state machines of a virtual charge point: inputs and ``now`` in, effects out.

Leaf machines (:mod:`.connector`, :mod:`.meter` with :mod:`.measurands` and :mod:`.sampling`,
:mod:`.configuration`, :mod:`.auth`) hold one concern each and know nothing of the wire; the
OCPP-J :mod:`.session` speaks the protocol version its plugin names. The charger machine
(:mod:`.charger`) composes parts that each own their state over one explicit
:mod:`.context` (:mod:`.registration`, :mod:`.transactions`, :mod:`.metering`, :mod:`.reboot`)
and one handler per feature profile (:mod:`.profiles`). Nothing here imports trio or performs
I/O; time comes in as ``now`` (monotonic seconds) and randomness as seeded streams
(:class:`simulator.seeds.Rng`: a ``random.Random`` fits, the fleet uses the small
:class:`simulator.seeds.Stream`).
"""
