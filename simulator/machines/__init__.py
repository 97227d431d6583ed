"""Sans-IO state machines of a virtual charge point: inputs and ``now`` in, effects out.

Leaf machines (:mod:`.connector`, :mod:`.meter`, :mod:`.configuration`, :mod:`.auth`) hold one
concern each and know nothing of the wire; the charger machine (:mod:`.charger`, with
:mod:`.session`, :mod:`.effects` and :mod:`.domain`) composes them into the whole charge point.
Nothing here imports trio or performs I/O; time comes in as ``now`` (monotonic seconds) and
randomness as seeded streams (:class:`simulator.seeds.Rng`: a ``random.Random`` fits, the fleet
uses the small :class:`simulator.seeds.Stream`).
"""
