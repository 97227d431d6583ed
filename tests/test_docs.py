"""Every path the README, ``docs/*.md`` and ``scenarios/*.toml`` name exists in this repository,
and none points outside it: a reader of a fresh clone can open everything the text refers to.

What counts as a path: a Markdown link's target (relative to the document, as Markdown reads
it), and any word that looks like a file of the repository — one that starts with a top-level
entry of the repository (``simulator/…``, ``tests/…``, ``docs/…``) or a package of
``simulator/`` (``machines/context.py``, as docs/internals.md writes them), or that ends in
``.md``. Paths a command creates (``runs/…``, ``.venv/…``) are outputs, not references.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
DOCUMENTS: Final = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "scenarios").glob("*.toml")]
)
OUTPUTS: Final = ("runs", ".venv")
"""Folders a command creates: the paths under them are what a run writes, not references."""
LINK: Final = re.compile(r"\]\(([^)\s]+)\)")
WORD: Final = re.compile(r"[A-Za-z0-9_./-]+")
OUTSIDE: Final = re.compile(r"\.\./(?:\.\./)*(?!README\.md)|\bshared/|DESIGN\.md|OCPP16\.md")
"""Pointers out of the repository: ``../`` (but for docs' link back to the README) and the
names of design documents that live outside it."""


def _roots() -> tuple[set[str], set[str]]:
    top = {entry.name for entry in ROOT.iterdir() if not entry.name.startswith(".git")}
    packages = {entry.name for entry in (ROOT / "simulator").iterdir() if entry.is_dir()}
    return top - set(OUTPUTS), packages - {"__pycache__"}


def references(text: str, folder: Path) -> list[tuple[str, Path]]:
    """(as written, where it should be) for every path ``text``, a document in ``folder``,
    names."""
    found: list[tuple[str, Path]] = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        found.append((target, folder / target.split("#", 1)[0]))
    top, packages = _roots()
    for word in WORD.findall(LINK.sub("]", text)):
        word = word.rstrip(".,:;")
        if "/" not in word and not word.endswith(".md"):
            continue
        first = word.split("/", 1)[0]
        if first in top:
            found.append((word, ROOT / word))
        elif first in packages:
            found.append((word, ROOT / "simulator" / word))
        elif "/" not in word:  # a bare document name: beside the document, or at the top
            found.append((word, folder / word if (folder / word).exists() else ROOT / word))
    return found


def missing(text: str, folder: Path) -> list[str]:
    """The paths ``text`` names that do not exist."""
    return [written for written, path in references(text, folder) if not path.exists()]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(document: Path) -> None:
    assert missing(document.read_text(encoding="utf-8"), document.parent) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_points_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert [m.group(0) for m in OUTSIDE.finditer(text)] == []


def test_the_readme_links_the_architecture_and_names_the_scenarios() -> None:
    named = {written for written, _ in references((ROOT / "README.md").read_text(), ROOT)}
    assert {"docs/architecture.md", "docs/internals.md", "scenarios/fleet.toml",
            "scenarios/interop.toml"} <= named


def test_the_scan_finds_what_is_missing_and_what_points_outside() -> None:
    text = ("See simulator/no_such_module.py, [the plan](../elsewhere/plan.md), "
            "machines/context.py and `runs/lab.db` (an output); docs/internals.md exists.")
    assert sorted(missing(text, ROOT / "docs")) == ["../elsewhere/plan.md",
                                                     "simulator/no_such_module.py"]
    assert [m.group(0) for m in OUTSIDE.finditer(text)] == ["../"]


def test_no_module_points_at_a_document_outside_the_repository() -> None:
    """Docstrings cite the OCPP specifications or docs/, never the design notes kept elsewhere."""
    pointers = {str(path.relative_to(ROOT)): [m.group(0) for m in OUTSIDE.finditer(text)]
                for path in sorted((ROOT / "simulator").rglob("*.py"))
                if OUTSIDE.search(text := path.read_text(encoding="utf-8"))}
    assert pointers == {}
