"""Stages 1-3 of loading: TOML text to plain data, ``${VAR}`` interpolation, then overrides.

1. TOML → plain data (``tomllib``); broken syntax is a :class:`ConfigError` with line and column.
2. ``${VAR}`` / ``${VAR:-default}`` in every string value is replaced from the environment
   (``$${`` is a literal ``${``); a missing variable without default is an error naming the field.
   The strings that held a reference are remembered (``originals``) so that ``Fleet.text`` can
   write the reference instead of a secret.
3. ``SIM_<PATH>`` environment overrides, ``__`` for dots (``SIM_CSMS__URL``, ``SIM_RUN__SEED``,
   ``SIM_GROUP__0__COUNT`` or ``SIM_GROUP__AC__COUNT`` by group name, keys matched without regard
   to case), values read as TOML scalars when they parse (``9``, ``true``, ``[1, 2]``) and as
   strings otherwise (dates and times too); then the programmatic ``overrides`` (dotted paths,
   ``{"run.seed": 3, "group[0].count": 5}``, values used as given), applied last.

All of it is pure (the environment is passed in) and works on the data in place.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from typing import Any, Final

from simulator.config.errors import ConfigError, FieldPath, Invalid, show, suggest
from simulator.config.tables import ARRAYS_OF_TABLES, SECTIONS

_VARIABLE: Final = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DOTTED_SEGMENT: Final = re.compile(r"([^\[\]]*)((?:\[\d+\])*)")


def read_toml(text: str, source: str) -> dict[str, Any]:
    """``text`` parsed as TOML; :class:`ConfigError` at ``line L, column C`` when it does not
    parse (tomllib's own description of the syntax error follows the position)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None)  # Python >= 3.14 gives the position as attributes
        column = getattr(error, "colno", None)
        reason = getattr(error, "msg", None) or str(error)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", reason)
        if where is not None:  # tomllib < 3.14 appends the position to its message
            reason = reason[: where.start()]
            line, column = int(where.group(1)), int(where.group(2))
        at = f"line {line}, column {column}: " if line is not None else ""
        raise ConfigError(source, None, f"{at}invalid TOML: {reason}; fix the syntax") from None


def interpolate(
    value: object, path: FieldPath, env: Mapping[str, str], originals: dict[FieldPath, str]
) -> object:
    """``value`` with every ``${VAR}`` in its strings replaced from ``env``; records in
    ``originals`` the written string of each path that held a reference. Raises
    :class:`Invalid` for a variable that is not set and has no default."""
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, k), env, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, i), env, originals) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise Invalid(
            path,
            f"environment variable {name} is not set; set it, or write ${{{name}:-default}}",
        )

    originals[path] = value
    return _VARIABLE.sub(replace, value)


def apply_overrides(
    data: dict[str, Any], env: Mapping[str, str], overrides: Mapping[str, object] | None
) -> dict[FieldPath, str]:
    """Apply ``SIM_*`` then programmatic overrides to ``data`` in place; returns the path each
    one set → who set it (``SIM_RUN__SEED``, ``override 'run.seed'``), for error messages."""
    origins: dict[FieldPath, str] = {}
    for name in sorted(env):
        if not name.startswith("SIM_") or "__" not in name[4:]:
            continue
        path = tuple(part.lower() for part in name[4:].split("__"))
        real = _set(data, path, _scalar_from_env(env[name]), name, fold=True)
        origins[real] = name
    for dotted, value in (overrides or {}).items():
        label = f"override {dotted!r}"
        real = _set(data, _parse_dotted(dotted), value, label, fold=False)
        origins[real] = label
    return origins


def _scalar_from_env(text: str) -> object:
    """``text`` as a TOML value when it reads as one, else as is. Dates and times stay text: no
    field takes a TOML date, and ``SIM_RUN__EPOCH=2026-01-01T00:00:00Z`` means the string."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return text if isinstance(value, dt.date | dt.time) else value


def _parse_dotted(dotted: str) -> FieldPath:
    parts: list[str | int] = []
    for segment in dotted.split("."):
        match = _DOTTED_SEGMENT.fullmatch(segment)
        if match is None or (not match.group(1) and not match.group(2)):
            raise Invalid(
                (), f"override {dotted!r} is not a dotted path like 'group[0].count' or 'run.seed'"
            )
        if match.group(1):
            parts.append(int(match.group(1)) if match.group(1).isdigit() else match.group(1))
        parts.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(parts)


def _set(data: dict[str, Any], path: FieldPath, value: object, label: str, fold: bool) -> FieldPath:
    """Set ``value`` at ``path`` in ``data``; returns the real path used. ``fold``: match keys
    case-insensitively and list items by their ``name`` (environment variables are upper case)."""
    container: Any = data
    real: list[str | int] = []
    by = f" (set by {label})"
    for position, part in enumerate(path):
        last = position == len(path) - 1
        if isinstance(container, list):
            index = _list_index(container, part, fold)
            if index is None:
                raise Invalid(
                    tuple(real),
                    f"has no entry {part!r} (the file has {len(container)}); use an index "
                    f"from 0 or a group name{by}",
                )
            real.append(index)
            if last:
                container[index] = value
            else:
                container = container[index]
            continue
        if not isinstance(container, dict):
            raise Invalid(tuple(real), f"is {show(container)}, it has no key {part!r}{by}")
        key = str(part)
        if key not in container and fold:
            key = next((k for k in container if k.lower() == key.lower()), key.lower())
        if not real and key not in SECTIONS:
            raise Invalid((key,), f"unknown section{suggest(key, SECTIONS)}{by}")
        real.append(key)
        if last:
            container[key] = value
        else:
            container = container.setdefault(
                key, [] if real == [key] and key in ARRAYS_OF_TABLES else {}
            )
    return tuple(real)


def _list_index(items: list[Any], part: str | int, fold: bool) -> int | None:
    if isinstance(part, int) or part.isdigit():
        index = int(part)
        return index if 0 <= index < len(items) else None
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and (name == part or (fold and name.lower() == part.lower())):
            return index
    return None
