"""The scenario library shipped inside the package: the default fleet and the other scenarios.

The fleet files live in ``simulator/scenarios/`` (the repository's top-level ``scenarios/`` is a
link to that folder, so there is one copy) and are read with :mod:`importlib.resources`, so an
installed ``sim`` finds them from any folder. :func:`fleet_file` turns what a user typed after
``--toml`` into the file to load: a path that exists wins; otherwise a bare name (``fleet``,
``fleet.toml``) names a shipped scenario.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from simulator.config.errors import ConfigError

DEFAULT_SCENARIO: Final = "fleet"
"""The scenario ``sim start`` runs when no fleet file is named."""
SUFFIX: Final = ".toml"


def library() -> Traversable:
    """The folder of shipped scenarios (inside the installed package)."""
    return files("simulator") / "scenarios"


def scenario_names() -> tuple[str, ...]:
    """The shipped scenarios' names (file names without ``.toml``), sorted."""
    return tuple(sorted(
        entry.name.removesuffix(SUFFIX) for entry in library().iterdir()
        if entry.is_file() and entry.name.endswith(SUFFIX)
    ))


def scenario_path(name: str) -> Path | None:
    """The file of the shipped scenario ``name`` (``fleet`` or ``fleet.toml``), or ``None`` when
    the library has no such scenario. The package is installed as files (pip never installs a
    wheel zipped), so the scenario is a real path that error messages can name."""
    stem = name.removesuffix(SUFFIX)
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
        return None
    entry = library() / f"{stem}{SUFFIX}"
    if not entry.is_file():
        return None
    return Path(str(entry))


def scenario_summary(name: str) -> str:
    """The first sentence of a shipped scenario's header comment, on one line (its title and
    what it does), or ``""`` when the file opens with no comment."""
    path = scenario_path(name)
    if path is None:
        return ""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.strip() == "#":
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def fleet_file(given: str | Path | None) -> Path:
    """The fleet file to load for ``given``: ``None`` → the default scenario; a path to an
    existing file → that path; a bare name of a shipped scenario → its file. Raises
    :class:`ConfigError` (one line naming what was given and the shipped names) otherwise."""
    if given is None:
        shipped = scenario_path(DEFAULT_SCENARIO)
        if shipped is None:
            raise ConfigError(DEFAULT_SCENARIO, None,
                              "the default fleet is missing from this installation; reinstall it "
                              "or name a fleet file with --toml")
        return shipped
    path = Path(given)
    if path.is_file():
        return path
    if path.parent == Path(".") and not path.exists():
        shipped = scenario_path(path.name)
        if shipped is not None:
            return shipped
    if path.exists():
        return path  # a folder, say: loading it names the problem
    names = ", ".join(scenario_names())
    raise ConfigError(str(given), None,
                      f"cannot read the file: no such file, and no shipped scenario is named so "
                      f"({names}); check the path")
