"""The fleet for readers: the resolved document as TOML (``Fleet.text``, for the ledger and
``sim replay``), the summary of ``sim check``, and the JSON schema of ``sim schema``.

``Fleet.text`` is the document after interpolation and overrides with every default filled in.
Secrets never reach it: a secret written as ``${VAR}`` is written back as that reference, any
other secret as ``<redacted>``; other strings have ``${`` escaped so that reading the text again
gives the same fleet.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from simulator.config.errors import FieldPath
from simulator.config.model import REDACTED, Fleet, Run
from simulator.config.tables import FleetDocument
from simulator.durations import format_duration, format_range

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def _is_secret(path: FieldPath) -> bool:
    last = str(path[-1]).lower() if path else ""
    if "password" in last:
        return True
    if path[:1] == ("csms",) and "key" in last:
        return True
    if path[:1] == ("api",) and last == "token":
        return True
    return len(path) >= 3 and path[0] == "group" and path[2] == "config" and last == (
        "authorizationkey"
    )


def _redact(value: object, path: FieldPath, originals: Mapping[FieldPath, str]) -> object:
    """The document for the ledger: secrets replaced by their ``${VAR}`` reference or
    ``<redacted>``, other strings escaped so that interpolation leaves them as they are."""
    if isinstance(value, dict):
        return {k: _redact(v, (*path, k), originals) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_redact(v, (*path, i), originals) for i, v in enumerate(value)]
    if _is_secret(path):
        return originals.get(path, REDACTED)
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _dump_toml(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    def nested(value: object) -> bool:
        return isinstance(value, dict) and bool(value)

    def array_of_tables(value: object) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in table.items()
        if not nested(v) and not array_of_tables(v)
    ]
    for key, value in table.items():
        header = ".".join(_toml_key(part) for part in (*prefix, key))
        if nested(value):
            lines += ["", f"[{header}]", *_dump_toml(value, (*prefix, key))]
        elif array_of_tables(value):
            for item in value:
                lines += ["", f"[[{header}]]", *_dump_toml(item, (*prefix, key))]
    return lines


def document_text(doc: FleetDocument, run: Run, originals: Mapping[FieldPath, str]) -> str:
    """The resolved document as TOML, secrets redacted (``originals``: the written string of each
    path that held a ``${VAR}`` reference, still in force)."""
    data = msgspec.to_builtins(doc)
    data["run"]["name"] = run.name
    data["run"]["ledger"] = run.ledger
    redacted = _redact(data, (), originals)
    assert isinstance(redacted, dict)
    redacted = {k: v for k, v in redacted.items() if v != []}  # no step/chaos/expect: no key
    lines = _dump_toml(redacted)
    return "\n".join(lines).lstrip("\n") + "\n"


def describe(fleet: Fleet) -> str:
    """The resolved fleet for people (``sim check``): a summary in TOML comments, then the
    resolved document (``fleet.text``, secrets redacted)."""
    run = fleet.run
    lasting = format_duration(run.duration) if run.duration is not None else "until Ctrl-C"
    epoch = f" from {run.epoch.isoformat().replace('+00:00', 'Z')}" if run.epoch else ""
    lines = [
        f"# {fleet.source or '<string>'}: run {run.name!r}, seed {run.seed}, "
        f"duration {lasting}, {run.time} time{epoch}, ledger {run.ledger}",
        f"# csms: {fleet.csms.url} (security profile {fleet.csms.security_profile})",
        f"# {len(fleet.charger_ids())} chargers, sha256 {fleet.sha256[:16]}",
    ]
    for group in fleet.groups:
        span = group.ids[0] if group.count == 1 else f"{group.ids[0]} .. {group.ids[-1]}"
        sessions = ""
        if group.sessions is not None:
            plan = group.sessions
            sessions = (
                f", sessions {plan.arrivals_per_hour:g}/h x {format_range(plan.duration)}, "
                f"{format_range(plan.energy_kwh, duration=False)} kWh"
            )
        tags = f", tags {', '.join(group.tags)}" if group.tags else ""
        lines.append(
            f"#   {group.name}: {group.count} x {span}, {group.connectors} connector(s),"
            f" {group.max_power_kw:g} kW{sessions}{tags}"
        )
    lines.append(
        f"# {len(fleet.steps)} step(s), {len(fleet.chaos)} fault(s), "
        f"{len(fleet.expect)} expectation(s)"
    )
    return "\n".join(lines) + "\n\n" + fleet.text


def json_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of the fleet file format, for ``sim schema`` and editors."""
    schema = msgspec.json.schema(FleetDocument)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OCPP chaos simulator fleet file",
        **schema,
    }
