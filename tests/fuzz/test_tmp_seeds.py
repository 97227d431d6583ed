import sqlite3

import pytest

from tests.fuzz import test_runtime_fuzz as m
from tests.fuzz.server import HostileCsms


@pytest.mark.parametrize("seed", list(range(100, 130)))
async def test_seeds(seed, tmp_path, autojump_clock, monkeypatch):
    class Seeded(HostileCsms):
        def __init__(self, *, seed: int, budget: int):
            super().__init__(seed=14 * 1000 + 7 + SEED, budget=budget)
    SEED = seed
    monkeypatch.setattr(m, "HostileCsms", Seeded)
    try:
        await m.test_a_hostile_central_system_never_breaks_a_simulation(tmp_path, autojump_clock)
    finally:
        db = sqlite3.connect(tmp_path / "fuzz.db")
        for row in db.execute("SELECT seq, t, charger, data FROM events WHERE kind = 'crash'"):
            print(row)
            seq = row[0]
            for r in db.execute("SELECT seq, kind, substr(data, 1, 600) FROM events WHERE charger = ? AND seq < ? ORDER BY seq DESC LIMIT 8", (row[2], seq)):
                print(r)
