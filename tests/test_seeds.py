"""Seeded streams: reproducible, independent, small, and with the distributions they claim."""

from __future__ import annotations

import gc
import math
import random
import statistics
import sys
import uuid

import pytest

from simulator.seeds import Rng, Stream, derive, uuid_ids


def test_the_same_seed_and_parts_give_the_same_draws() -> None:
    first, second = derive(7, "CP-1", "sessions", 1), derive(7, "CP-1", "sessions", 1)
    assert [first.random() for _ in range(20)] == [second.random() for _ in range(20)]
    assert first.getrandbits(200) == second.getrandbits(200)


@pytest.mark.parametrize("other", [(8, "CP-1", "sessions", 1), (7, "CP-2", "sessions", 1),
                                   (7, "CP-1", "sessions", 2), (7, "CP-1", "reconnect")])
def test_any_other_part_gives_another_stream(other: tuple[int, str, str, int]) -> None:
    mine = [derive(7, "CP-1", "sessions", 1).getrandbits(64) for _ in range(1)]
    assert mine != [derive(*other).getrandbits(64)]


def test_getrandbits_fills_exactly_k_bits() -> None:
    rng = derive(1, "bits")
    assert rng.getrandbits(0) == 0
    for k in (1, 7, 53, 63, 64, 65, 128, 129, 256):
        values = [rng.getrandbits(k) for _ in range(400)]
        assert all(0 <= value < 2**k for value in values)
        assert max(values).bit_length() == k  # the top bit is reached (p of failing < 2^-400)
    with pytest.raises(ValueError):
        rng.getrandbits(-1)


def test_random_uniform_and_expovariate_have_their_distributions() -> None:
    rng = derive(2, "distributions")
    floats = [rng.random() for _ in range(20_000)]
    assert all(0.0 <= x < 1.0 for x in floats)
    assert statistics.fmean(floats) == pytest.approx(0.5, abs=0.01)
    assert statistics.pvariance(floats) == pytest.approx(1 / 12, abs=0.003)
    spread = [rng.uniform(3.0, 8.0) for _ in range(5_000)]
    assert all(3.0 <= x <= 8.0 for x in spread)
    assert statistics.fmean(spread) == pytest.approx(5.5, abs=0.1)
    waits = [rng.expovariate(0.5) for _ in range(20_000)]
    assert min(waits) >= 0
    assert statistics.fmean(waits) == pytest.approx(2.0, rel=0.03)


def test_choice_is_uniform_and_refuses_an_empty_sequence() -> None:
    rng = derive(3, "choice")
    items = ["a", "b", "c", "d", "e"]
    counts = {item: 0 for item in items}
    draws = 25_000
    for _ in range(draws):
        counts[rng.choice(items)] += 1
    expected = draws / len(items)
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 18.5  # 4 degrees of freedom, p = 0.001
    assert rng.randbelow(1) == 0
    with pytest.raises(IndexError):
        rng.choice([])
    with pytest.raises(ValueError):
        rng.randbelow(0)


def test_spawned_streams_are_reproducible_and_independent() -> None:
    parent_a, parent_b = derive(4, "CP-1"), derive(4, "CP-1")
    child_a, child_b = parent_a.spawn(), parent_b.spawn()
    assert [child_a.random() for _ in range(5)] == [child_b.random() for _ in range(5)]
    assert parent_a.getrandbits(64) == parent_b.getrandbits(64)  # spawning drew alike
    sibling = parent_a.spawn()
    assert sibling.getrandbits(64) != child_a.getrandbits(64)


def test_a_stream_is_a_small_fraction_of_a_mersenne_twister() -> None:
    rng = derive(5, "size")
    rng.random()  # with a block buffered
    size = sys.getsizeof(rng) + sum(sys.getsizeof(part) for part in gc.get_referents(rng)
                                     if not isinstance(part, type))
    assert size < 400
    assert sys.getsizeof(random.Random(5)) > 2400


def test_keys_must_fit_blake2b() -> None:
    with pytest.raises(ValueError):
        Stream(b"")
    with pytest.raises(ValueError):
        Stream(b"x" * 65)


def test_uuid_ids_are_version_4_and_reproducible() -> None:
    first, second = uuid_ids(derive(6, "ids")), uuid_ids(derive(6, "ids"))
    ids = [first() for _ in range(100)]
    assert ids == [second() for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(len(i) == 36 and i[14] == "4" and i[19] in "89ab" for i in ids)


def test_uuid_ids_match_the_uuid_module_bit_for_bit() -> None:
    draws, rng = derive(8, "uuid"), derive(8, "uuid")
    new_id = uuid_ids(rng)
    for _ in range(2000):
        assert new_id() == str(uuid.UUID(int=draws.getrandbits(128), version=4))


def test_both_kinds_of_generator_satisfy_the_protocol() -> None:
    generators: list[Rng] = [derive(7, "protocol"), random.Random(7)]
    for rng in generators:
        assert 0 <= rng.random() < 1
        assert rng.choice([1, 2, 3]) in (1, 2, 3)
        assert math.isfinite(rng.expovariate(1.0))


class _FixedBits:
    """An Rng whose every draw of bits is ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def getrandbits(self, k: int, /) -> int:
        return self.value


@pytest.mark.parametrize("bits", [0, (1 << 128) - 1, 1 << 127, 0xC000 << 48, 0xF000 << 64])
def test_uuid_ids_set_the_variant_and_version_bits(bits: int) -> None:
    new_id = uuid_ids(_FixedBits(bits))  # type: ignore[arg-type]
    assert new_id() == str(uuid.UUID(int=bits, version=4))
