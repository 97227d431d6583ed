"""The one-line errors of the fleet file: :class:`ConfigError` for users, :class:`Invalid` inside
the loading stages, and the helpers that word them.

Every stage raises :class:`Invalid` with the data path of the culprit (``("group", 0, "count")``);
the loader turns it into a :class:`ConfigError` whose ``str()`` is
``<file>: <field>: <what is wrong and what to do>``. Messages are worded here and in the stages,
never copied from a library's exception text.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Sequence
from typing import Final

FieldPath = tuple[str | int, ...]
"""Where a value sits in the document: table keys and list indexes, from the root."""

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """A fleet file (or override) the simulator cannot use. ``str()`` is one line:
    ``<file>: <field>: <what is wrong and what to do>`` (the field is omitted for file-level
    problems such as unreadable files or broken TOML)."""

    def __init__(self, source: str, field: str | None, message: str) -> None:
        self.source = source
        self.field = field
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.field:
            return f"{self.source}: {self.field}: {self.message}"
        return f"{self.source}: {self.message}"


class Invalid(Exception):
    """A problem at ``path`` found by a loading stage; the loader turns it into a
    :class:`ConfigError` naming the file."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def field_name(path: FieldPath) -> str:
    """``("group", 0, "sessions", "duration")`` as the user reads it: ``group[0].sessions.duration``
    (keys that are not bare TOML keys are quoted: ``config["a b"]``)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _BARE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def show(value: object) -> str:
    """A value as the user wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def suggest(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(word: str, choices: Sequence[str]) -> str:
    """``"expected one of a, b, c"`` (at most twelve listed), with a suggestion for ``word``."""
    listed = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
    return f"expected one of {listed}{suggest(word, choices)}"
