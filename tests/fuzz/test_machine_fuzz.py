"""A hostile central system against the sans-IO charger: 100,000 seeded frames, every state.

For each starting state of :data:`tests.fuzz.bench.STATES` (boot unanswered, Pending, Rejected,
idle, charging, transaction messages queued while offline), fresh chargers are put in that state
and then take :data:`EPISODE` steps each from a seeded ``random.Random``, until
:data:`FRAMES_PER_STATE` frames went in. A step is one of:

- a frame from :meth:`~tests.fuzz.hostile.HostileFrames.any_call` (valid and broken CALLs of
  every action, out-of-range configuration values, long and unknown action names, broken
  envelopes, odd and reused ids, invalid UTF-8, binary frames, malformed JSON);
- an answer to the charger's outstanding CALL as the episode's mood has it (one of
  :data:`~tests.fuzz.hostile.MOODS`): a mix of right ones and hostile ones (schema-breaking
  results, CALLERRORs with any code, rejected and pending boots, odd transaction ids, unmatched
  and wrongly typed answers); a CALLERROR for everything; a broken result for everything; every
  boot rejected; none at all;
- silence: time passes, the charger's CALLs time out, its retries and samples fall due;
- an abrupt close: frames sent into the dead link, time passes, the link comes back;
- the driver: plug, unplug, present a tag.

Once per state, a 16 MB frame of each kind and a frame nested ten thousand levels deep. The bench
(:mod:`tests.fuzz.bench`) checks every input; the test then checks that every kind was used.
"""

from __future__ import annotations

import collections
import random
from typing import Final

import pytest

from simulator.machines.charger import SUPPORTED_PROFILES
from simulator.ocpp.v16 import Profile
from tests.fuzz.bench import STATES, FuzzBench, build
from tests.fuzz.hostile import MOODS, Hostile, HostileFrames

FRAMES_PER_STATE: Final = 17_000
"""Six states: 102,000 frames in all."""
EPISODE: Final = 300
"""Steps before the charger is replaced by a fresh one in the starting state."""

PROFILES: Final = (tuple(p.value for p in SUPPORTED_PROFILES), (Profile.CORE.value,))
"""The chargers of successive pairs of episodes (so each mood meets each): one with every
profile, then a Core-only one, whose calls of every other profile must be refused NotSupported.
The Core-only charger also keeps the transaction messages coming: a hostile CS keeps the full
charger's jobs reporting and its security events queued ahead of them."""
CYCLE: Final = tuple(mood for other in MOODS[1:] for mood in ("mixed", other))
"""The moods of successive episodes: every other one mixed."""

KINDS: Final = frozenset({
    "valid_call", "broken_call", "configuration", "unknown_action", "charge_point_action",
    "bad_envelope", "odd_id", "binary_call", "malformed", "binary_garbage", "answer",
    "hostile_result", "schema_breaking_result", "callerror", "bad_callerror", "unmatched",
    "wrong_type_answer", "rejected_boot", "odd_transaction_id", "huge", "deep",
    "binary_valid_call", "binary_broken_call", "offline",
})
"""Every kind of frame the run must have used, in every state."""


def step(bench: FuzzBench, hostile: HostileFrames, rng: random.Random) -> None:
    """One move of the hostile CS, the clock or the driver."""
    pick = rng.random()
    if pick < 0.55:
        bench.receive(hostile.any_call())
    elif pick < 0.82:
        if not bench.answer(hostile):
            bench.receive(hostile.any_call())
    elif pick < 0.90:
        bench.advance(rng.choice((0.5, 5.0, 31.0, 120.0, 700.0)))
    elif pick < 0.94:
        bench.disconnect()
        for _ in range(rng.randint(0, 3)):
            frame = hostile.any_call()
            bench.receive(Hostile("offline", frame.data, frame.unique_id, frame.action,
                                  frame.expect))
        bench.advance(rng.choice((1.0, 30.0, 200.0)))
        bench.connect()
    else:
        connector = rng.choice((1, 2))
        match rng.choice(("plug", "tag", "unplug")):
            case "plug":
                bench.plug(connector)
            case "tag":
                bench.tag(connector, rng.choice(("TAG-1", "TAG-2")))
            case _:
                bench.unplug(connector)


def giants(bench: FuzzBench, hostile: HostileFrames) -> None:
    """A 16 MB CALL, 16 MB of no JSON, and a frame nested too deep to decode."""
    bench.receive(hostile.huge_call())
    bench.receive(hostile.huge_garbage())
    bench.receive(hostile.deep())


@pytest.mark.parametrize("state", STATES)
def test_a_hostile_central_system_never_breaks_the_charger(state: str) -> None:
    rng = random.Random(f"fuzz-{state}")
    kinds: collections.Counter[str] = collections.Counter()
    frames = episodes = 0
    while frames < FRAMES_PER_STATE:
        hostile = HostileFrames(random.Random(rng.getrandbits(64)),
                                profiles=PROFILES[episodes // 2 % len(PROFILES)])
        bench = build(state, rng.getrandbits(32), hostile)
        hostile.mood = CYCLE[episodes % len(CYCLE)]
        if episodes == 0:
            giants(bench, hostile)
        for _ in range(EPISODE):
            step(bench, hostile, rng)
        frames += bench.frames
        kinds.update(bench.kinds)
        episodes += 1
    assert frames >= FRAMES_PER_STATE
    missing = KINDS - kinds.keys()
    assert not missing, f"kinds never sent in state {state}: {sorted(missing)}"
