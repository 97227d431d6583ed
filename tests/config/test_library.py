"""The scenario library shipped in the package, and what ``--toml`` / ``sim check`` accept: an
existing path first, else the name of a shipped scenario; anything else is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import ConfigError, fleet_file, load_fleet, scenario_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_library_is_the_scenarios_folder() -> None:
    assert scenario_names() == tuple(sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml")))
    assert "fleet" in scenario_names() and "interop" in scenario_names()
    assert fleet_file(None).read_bytes() == (ROOT / "scenarios" / "fleet.toml").read_bytes()


@pytest.mark.parametrize("given", ["fleet", "fleet.toml", "interop", "interop.toml"])
def test_a_shipped_scenario_is_found_by_name_from_any_folder(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    found = fleet_file(given)
    assert found.name == given.removesuffix(".toml") + ".toml"
    assert found.read_bytes() == (ROOT / "scenarios" / found.name).read_bytes()
    assert load_fleet(found).run.name == found.stem


def test_a_file_in_the_current_folder_wins_over_a_shipped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fleet.toml").write_text('[run]\nname = "mine"\n')
    assert fleet_file("fleet.toml") == Path("fleet.toml")
    assert fleet_file(tmp_path / "fleet.toml") == tmp_path / "fleet.toml"
    assert fleet_file("fleet") != Path("fleet.toml")  # no suffix: the shipped one


@pytest.mark.parametrize("given", ["flet", "nowhere/fleet.toml", "../fleet"])
def test_anything_else_is_one_line_naming_it_and_the_shipped_names(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        fleet_file(given)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"{given}: cannot read the file: no such file")
    assert f"({', '.join(scenario_names())})" in line
