"""The fleet file: TOML in, frozen and validated :class:`Fleet` out, or one clear error line.

The package's parts, in the order a file goes through them:

- :mod:`.sources`: TOML → plain data, ``${VAR}`` / ``${VAR:-default}`` interpolation, then the
  ``SIM_<PATH>`` environment overrides (``SIM_CSMS__URL``, ``SIM_GROUP__AC__COUNT``) and the
  programmatic ``overrides`` (``{"run.seed": 3, "group[0].count": 5}``), applied last;
- :mod:`.tables`: the file as written, one msgspec Struct per TOML table (also the JSON schema);
  :mod:`.structure` checks the data against them with our own wording (unknown keys with a
  suggestion, types, bounds, lengths);
- :mod:`.resolve`: meaning (durations, ranges, id templates, URL, targets, fault names from
  :mod:`simulator.chaos`) into :mod:`.model`, the resolved Structs (:class:`Fleet`,
  :class:`Group`, ...) with seconds as floats and :class:`~simulator.durations.Range`\\ s;
- :mod:`.errors`: every failure is a :class:`ConfigError` whose ``str()`` is one line,
  ``scenarios/x.toml: group[0].count: must be >= 1, got -3``;
- :mod:`.library`: the scenarios shipped in the package (``simulator/scenarios``), found by
  name (``sim start --toml fleet``);
- :mod:`.render`: ``Fleet.text``, the resolved document (defaults filled in, overrides applied)
  as TOML with secrets redacted, which goes to the ledger and which :func:`parse_fleet` reads back
  into the same fleet (``sim replay``); :func:`describe` (``sim check``) and :func:`json_schema`
  (``sim schema``).

Tables beyond the README's sketch: ``[run]`` also takes ``epoch``, the RFC 3339 UTC
timestamp where the wall clock of a ``time = "virtual"`` run starts (default
:data:`DEFAULT_VIRTUAL_EPOCH`); ``[csms]`` also takes ``password``, ``ca_file``, ``cert_file`` and
``key_file`` (security profiles 1-3) and ``transport`` (:data:`TRANSPORTS`); ``[csms.embedded]``
holds the options of the embedded reference CSMS (``boot_status``, ``heartbeat_interval``,
``accepted_tags``, ``blocked_tags``; ignored with a remote URL); ``[[group]]`` takes
``firmware_version`` and a ``serial`` template; ``[group.sessions]`` becomes a
:class:`~simulator.machines.workload.SessionPlan`; ``[[step]]`` and ``[[chaos]]`` take a
``params`` table for the action or fault; ``[[expect]]`` entries are ``check`` plus free scalar
parameters.
"""

from simulator.chaos import CATALOG as CHAOS_CATALOG
from simulator.chaos import FAULTS as CHAOS_FAULTS
from simulator.chaos import Target
from simulator.config.errors import ConfigError
from simulator.config.library import fleet_file, scenario_names, scenario_summary
from simulator.config.load import load_fleet, parse_fleet
from simulator.config.model import (
    DEFAULT_VIRTUAL_EPOCH,
    TRANSPORTS,
    Api,
    Chaos,
    Csms,
    EmbeddedCsms,
    Expect,
    Fleet,
    Group,
    Run,
    Scalar,
    Secret,
    Step,
    StepAction,
    TimeMode,
)
from simulator.config.render import describe, json_schema
from simulator.config.tables import FleetDocument
from simulator.machines.workload import SessionPlan

__all__ = [
    "CHAOS_CATALOG",
    "CHAOS_FAULTS",
    "DEFAULT_VIRTUAL_EPOCH",
    "TRANSPORTS",
    "Api",
    "Chaos",
    "ConfigError",
    "Csms",
    "EmbeddedCsms",
    "Expect",
    "Fleet",
    "FleetDocument",
    "Group",
    "Run",
    "Scalar",
    "Secret",
    "SessionPlan",
    "Step",
    "StepAction",
    "Target",
    "TimeMode",
    "describe",
    "fleet_file",
    "json_schema",
    "load_fleet",
    "parse_fleet",
    "scenario_names",
    "scenario_summary",
]
