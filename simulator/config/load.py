"""Loading a fleet file: the stages in order, and the public entry points.

:func:`load_fleet` reads a file, :func:`parse_fleet` its text. Both run the same stages, each pure
but for reading the file: TOML, interpolation and overrides (:mod:`.sources`), structure and types
(:mod:`.structure`), meaning (:mod:`.resolve`), then the resolved text (:mod:`.render`). Any
problem ends as one :class:`ConfigError`; a value set by an override says so
(``... (set by SIM_RUN__SEED)``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from simulator.config.errors import ConfigError, FieldPath, Invalid, field_name
from simulator.config.model import Fleet
from simulator.config.render import document_text
from simulator.config.resolve import (
    resolve_api,
    resolve_chaos,
    resolve_csms,
    resolve_expect,
    resolve_groups,
    resolve_run,
    resolve_step,
)
from simulator.config.sources import apply_overrides, interpolate, read_toml
from simulator.config.structure import to_document

DEFAULT_NAME: Final = "fleet"
"""The run name when neither ``[run] name`` nor a file name gives one."""


def _default_name(source: str | None) -> str:
    if source is None:
        return DEFAULT_NAME
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).stem).strip("-._")
    return stem or DEFAULT_NAME


def _with_origin(invalid: Invalid, origins: Mapping[FieldPath, str]) -> Invalid:
    for length in range(len(invalid.path), 0, -1):
        origin = origins.get(invalid.path[:length])
        if origin is not None:
            return Invalid(invalid.path, f"{invalid.message} (set by {origin})")
    return invalid


def _build(
    data: dict[str, Any],
    source: str | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object] | None,
) -> Fleet:
    originals: dict[FieldPath, str] = {}
    interpolated = interpolate(data, (), env, originals)
    assert isinstance(interpolated, dict)
    origins = apply_overrides(interpolated, env, overrides)
    for written in [p for p in originals if any(p[: len(o)] == o for o in origins)]:
        del originals[written]  # overridden: the file's ${VAR} reference no longer applies
    try:
        doc = to_document(interpolated)
        run = resolve_run(doc.run, _default_name(source))
        csms = resolve_csms(doc.csms)
        groups = resolve_groups(doc.group, csms)
        steps = tuple(resolve_step(s, i, groups) for i, s in enumerate(doc.step))
        chaos = tuple(resolve_chaos(c, i, groups) for i, c in enumerate(doc.chaos))
        expect = tuple(resolve_expect(e, i) for i, e in enumerate(doc.expect))
        api = None if doc.api is None else resolve_api(doc.api)
    except Invalid as invalid:
        raise _with_origin(invalid, origins) from None
    text = document_text(doc, run, originals)
    return Fleet(
        run=run,
        csms=csms,
        groups=groups,
        steps=steps,
        chaos=chaos,
        expect=expect,
        source=source,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        api=api,
    )


def parse_fleet(
    text: str,
    *,
    source: str | None = None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] | None = None,
) -> Fleet:
    """Parse a fleet file's ``text``. ``source`` is the path used in error messages, as
    ``Fleet.source`` and for the default run name (its stem); ``None`` reads as ``<string>``.
    ``env`` feeds ``${VAR}`` interpolation and ``SIM_*`` overrides; ``overrides`` (dotted path →
    value, values used as given) are applied last. Raises :class:`ConfigError`."""
    label = source if source is not None else "<string>"
    data = read_toml(text, label)
    try:
        return _build(data, source, env, overrides)
    except Invalid as invalid:
        raise ConfigError(label, field_name(invalid.path) or None, invalid.message) from None


def load_fleet(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] | None = None,
) -> Fleet:
    """Read and parse the fleet file at ``path`` (UTF-8 TOML); see :func:`parse_fleet`.
    Raises :class:`ConfigError` for unreadable files too."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(source, None, f"cannot read the file: {reason}; check the path") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            source, None, f"not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None
    return parse_fleet(text, source=source, env=env, overrides=overrides)
