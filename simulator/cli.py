"""The ``sim`` command line (cyclopts): start, csms, report, check, replay, diff, schema.

Every user error (a bad fleet file, a bad flag, an unwritable ledger path) ends with one line on
stderr, ``sim: ...``, and exit code 2, the argument parser's own errors included; a run ends
with 0 (completed), 1 (failed: a failed expectation among the reasons) or 130 (interrupted). A
traceback is a bug. ``sim check`` applies every rule ``sim start`` applies (:func:`_usable`),
the ``[[expect]]`` tables' checks and parameters included.
"""

from __future__ import annotations

import contextlib
import itertools
import json as jsonlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import trio
from cyclopts import App, CycloptsError, Parameter

from simulator import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from simulator.config import Fleet
    from simulator.report import Verdict
    from simulator.runtime import Service

DEFAULT_API_LISTEN = "127.0.0.1:8765"
"""Where ``sim serve`` listens when neither ``--api`` nor ``[api] listen`` says."""

app = App(
    name="sim",
    version=__version__,
    help="A fleet of virtual OCPP 1.6-J chargers that misbehave on purpose, to test a CSMS.",
)


def _fail(message: str) -> int:
    print(f"sim: {message}", file=sys.stderr)
    return 2


def _notice(line: str) -> None:
    """A line for the user while the run goes on (stderr: the live view prints above it)."""
    print(line, file=sys.stderr, flush=True)


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        return exc
    raise AssertionError("an empty exception group")


def _tls_problem(fleet: Fleet) -> str | None:
    """One line if the TLS files of ``[csms]`` or of a ``[group.security]`` cannot be used,
    else None."""
    from simulator.connections import tls_problem

    return tls_problem(fleet)


def _expectations_problem(fleet: Fleet) -> str | None:
    """One line if an ``[[expect]]`` table of ``fleet`` names no check, gives its check a
    parameter it does not take or a value it cannot use, or needs a package that is missing."""
    from simulator.config.errors import field_name
    from simulator.verdicts import INSTALL_HINT, ExpectationError, check_expectations
    from simulator.verdicts import missing_packages as missing

    try:
        check_expectations(fleet.expect)
    except ExpectationError as exc:
        where = ("expect", exc.index) + (() if exc.error.key is None else (exc.error.key,))
        return f"{fleet.source}: {field_name(where)}: {exc.error.message}"
    if fleet.run.validate_csms and missing():
        return (f"{fleet.source}: run.validate_csms: the official schemas need"
                f" {', '.join(missing())}: {INSTALL_HINT}")
    return None


def _usable(fleet: Fleet) -> str | None:
    """One line if ``fleet`` cannot run (beyond the file's own checks), else None: the rules
    ``sim check`` and ``sim start`` share."""
    from simulator.config import TimeMode

    if fleet.run.time == TimeMode.VIRTUAL and fleet.csms.url != "embedded":
        return (f'{fleet.source}: run.time: "virtual" needs csms.url = "embedded" '
                "(a real CSMS lives in real time); use time = \"real\"")
    if fleet.run.time == TimeMode.VIRTUAL and fleet.run.duration is None:
        return (f'{fleet.source}: run.duration: a run with time = "virtual" needs one (its '
                "clock races ahead: without an end it would never stop); give --duration")
    return _expectations_problem(fleet) or _tls_problem(fleet)


def _list_scenarios() -> int:
    """``sim start --list``: each shipped scenario's name and the first sentence of its header."""
    from simulator.config import scenario_names, scenario_summary

    names = scenario_names()
    width = max(len(name) for name in names)
    for name in names:
        print(f"{name:<{width}}  {scenario_summary(name) or '(no description in the file)'}")
    print("\nrun one: sim start --toml NAME   (against your CSMS: add --csms ws://HOST:PORT/PATH)")
    return 0


def _left_behind(ledger: Path) -> tuple[int, int]:
    """What earlier runs left in ``ledger`` for ``--resume``: the transaction messages in its
    outbox and the transactions its chargers were running ((0, 0) if none or unreadable: the
    run itself reports a ledger it cannot use)."""
    if not ledger.is_file():
        return 0, 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
            (queued,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            running = db.execute(
                "SELECT COALESCE(SUM(json_array_length(memory, '$.open_transactions')), 0)"
                " FROM memory"
            ).fetchone()[0] if "memory" in tables else 0
    except sqlite3.Error:
        return 0, 0
    return int(queued), int(running)


@app.command
def start(
    *,
    toml: Annotated[
        Path | None,
        Parameter(help="Fleet file, or the name of a shipped scenario (default: fleet)."),
    ] = None,
    csms: Annotated[str | None, Parameter(help="CSMS URL (ws://, wss://) or 'embedded'.")] = None,
    duration: Annotated[str | None, Parameter(help="Run length, e.g. 30s, 2m, 1h30m.")] = None,
    seed: Annotated[
        int | None, Parameter(help="Run seed (every random choice derives from it).")
    ] = None,
    ledger: Annotated[Path | None, Parameter(help="SQLite ledger path.")] = None,
    resume: Annotated[
        bool, Parameter(help="Deliver what the last run on this ledger left queued.")
    ] = False,
    json: Annotated[bool, Parameter(help="Print a machine-readable summary at the end.")] = False,
    quiet: Annotated[bool, Parameter(help="No live view.")] = False,
    junit: Annotated[
        Path | None, Parameter(help="Also write the verdicts as JUnit XML to this file.")
    ] = None,
    list_: Annotated[
        bool, Parameter(name="--list", help="List the shipped scenarios, run nothing.")
    ] = False,
    api: Annotated[
        str | None,
        Parameter(help="Serve the control API and dashboard on [HOST:]PORT (default host "
                       "127.0.0.1); without --duration the run lasts until stopped (through "
                       "the API or Ctrl-C)."),
    ] = None,
) -> int:
    """Run a fleet against its central system, record everything, print the report and the
    verdicts of its [[expect]] tables (exit code 1 when one fails)."""
    from simulator.config import ConfigError, fleet_file, load_fleet

    if list_:
        return _list_scenarios()

    overrides: dict[str, object] = {}
    if api is not None:
        overrides["api.listen"] = api
        if duration is None:  # watched and steered: it lasts until stopped
            overrides["run.duration"] = None
    if csms is not None:
        overrides["csms.url"] = csms
    if duration is not None:
        overrides["run.duration"] = duration
    if seed is not None:
        overrides["run.seed"] = seed
    if ledger is not None:
        overrides["run.ledger"] = str(ledger)
    try:
        fleet = load_fleet(fleet_file(toml), overrides=overrides)
    except ConfigError as exc:
        return _fail(str(exc))
    problem = _usable(fleet)
    if problem is not None:
        return _fail(problem)
    queued, running = _left_behind(Path(fleet.run.ledger))
    if resume and not Path(fleet.run.ledger).is_file():
        return _fail(f"--resume: {fleet.run.ledger}: no such ledger, so nothing to resume; "
                     "drop --resume to start a new run")
    if resume and not queued and not running:
        print(f"sim: --resume: {fleet.run.ledger} holds no undelivered message and no "
              "transaction left running: nothing to resume, nothing run", file=sys.stderr)
        return 0
    if not resume and (queued or running):
        print(f"sim: warning: {fleet.run.ledger} holds {queued} undelivered transaction "
              f"message(s) and {running} transaction(s) left running by an earlier run; this "
              "run discards them (--resume delivers them)", file=sys.stderr)
    return _run(fleet, resume=resume, quiet=quiet, json=json, junit=junit)


@app.command
def serve(
    *,
    toml: Annotated[
        Path | None,
        Parameter(help="Fleet file, or the name of a shipped scenario (default: fleet)."),
    ] = None,
    api: Annotated[
        str | None,
        Parameter(help="[HOST:]PORT of the API (default: the file's [api] listen, else "
                       f"{DEFAULT_API_LISTEN})."),
    ] = None,
    csms: Annotated[str | None, Parameter(help="CSMS URL (ws://, wss://) or 'embedded'.")] = None,
    duration: Annotated[
        str | None, Parameter(help="Run length (default: until stopped through the API).")
    ] = None,
    seed: Annotated[
        int | None, Parameter(help="Run seed (every random choice derives from it).")
    ] = None,
    ledger: Annotated[Path | None, Parameter(help="SQLite ledger path.")] = None,
    json: Annotated[bool, Parameter(help="Print a machine-readable summary at the end.")] = False,
    quiet: Annotated[bool, Parameter(help="No live view.")] = False,
) -> int:
    """Run a fleet with its control API and dashboard: `sim start --api`, the API on the
    file's [api] listen address (else 127.0.0.1:8765)."""
    from simulator.config import ConfigError, fleet_file, load_fleet

    if api is None:
        try:
            given = load_fleet(fleet_file(toml)).api
        except ConfigError as exc:
            return _fail(str(exc))
        api = DEFAULT_API_LISTEN if given is None else (
            f"[{given.host}]:{given.port}" if ":" in given.host else f"{given.host}:{given.port}")
    return start(toml=toml, csms=csms, duration=duration, seed=seed, ledger=ledger, json=json,
                 quiet=quiet, api=api)


def _run(fleet: Fleet, *, resume: bool, quiet: bool, json: bool, junit: Path | None,
         alongside: Sequence[Service] = ()) -> int:
    """Run ``fleet`` (with the services ``alongside``, and its API if it has one), print its
    report (its verdicts included), write ``junit``; the exit code the run deserves."""
    from simulator.api.errors import ApiUnavailable
    from simulator.report import ReportError, render_json, render_text, summarize
    from simulator.runtime import run_clock, run_simulation

    failure: Exception | None = None
    services = list(alongside)
    if fleet.api is not None:
        from simulator.api.server import ApiService

        services.append(ApiService(fleet.api, notify=_notice))
    try:
        result = trio.run(lambda: run_simulation(fleet, resume=resume, live=not quiet,
                                                 notify=_notice, alongside=services),
                          clock=run_clock(fleet))
    except* ApiUnavailable as group:
        failure = _first_error(group)
    except* (OSError, sqlite3.Error) as group:  # the ledger cannot be created or written
        failure = failure or _first_error(group)
    if isinstance(failure, ApiUnavailable):
        return _fail(f"{failure}; choose another address or port with --api HOST:PORT (port 0: "
                     "any free port)")
    if failure is not None:
        cause = failure.strerror if isinstance(failure, OSError) else None
        return _fail(f"{fleet.run.ledger}: {cause or failure}; check the ledger path")
    try:
        report = summarize(result.ledger, result.run_id)
    except ReportError as exc:
        return _fail(str(exc))
    if json:
        print(render_json(report))
    else:
        print(render_text(report))
        for reason in result.reasons:
            print(f"sim: run {result.status}: {reason}", file=sys.stderr)
    if junit is not None:
        problem = _write_junit(junit, report.verdicts or (), report.name)
        if problem is not None:
            return _fail(problem)
    return result.exit_code


def _write_junit(path: Path, verdicts: Sequence[Verdict], suite: str) -> str | None:
    """Write ``verdicts`` to ``path`` as JUnit XML; one line if it cannot be written."""
    from simulator.verdicts import write_junit

    try:
        write_junit(path, verdicts, suite=suite)
    except OSError as exc:
        return f"--junit: {path}: {exc.strerror or exc}; check the path"
    return None


@app.command(name="csms")
def csms_command(
    *,
    host: Annotated[
        str, Parameter(help="Address to bind (loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, Parameter(help="TCP port (0 picks a free one).")] = 9000,
    boot_status: Annotated[str, Parameter(help="Accepted, Pending or Rejected.")] = "Accepted",
    heartbeat_interval: Annotated[
        int, Parameter(help="Seconds, sent in BootNotification.conf.")
    ] = 60,
    verbose: Annotated[bool, Parameter(help="Print every frame received and sent.")] = False,
    ledger: Annotated[
        Path | None, Parameter(help="Record the CSMS's side in this SQLite ledger.")
    ] = None,
) -> int:
    """Run the built-in reference central system until Ctrl-C (exit code 130).

    Prints a line per connection, disconnection, refused handshake and boot on stdout."""
    from simulator.csms import BootStatus, CsmsOptions
    from simulator.csms.standalone import STOPPED_EXIT_CODE, open_standalone

    if boot_status not in ("Accepted", "Pending", "Rejected"):
        return _fail(f"--boot-status: must be Accepted, Pending or Rejected, got {boot_status!r}")
    if not 0 <= port <= 65535:
        return _fail(f"--port: must be 0..65535, got {port}")
    if heartbeat_interval < 0:
        return _fail(f"--heartbeat-interval: must be >= 0 seconds, got {heartbeat_interval}")
    options = CsmsOptions(boot_status=BootStatus(boot_status),
                          heartbeat_interval=heartbeat_interval)

    def emit(line: str) -> None:
        try:
            print(line, flush=True)
        except BrokenPipeError:  # `sim csms | head`: the reader left; serve on, silently
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with open_standalone(options, host=host, port=port, emit=emit,
                                       verbose=verbose, ledger=ledger,
                                       version=__version__) as url:
                print(f"sim csms: listening on {url}/<charger-id>  (Ctrl-C stops)",
                      file=sys.stderr, flush=True)
                async for _ in signals:
                    break

    failure: Exception | None = None
    try:
        trio.run(serve)
    except* (OSError, sqlite3.Error) as group:
        failure = _first_error(group)
    if isinstance(failure, OSError) and (ledger is None or failure.filename is None):
        return _fail(f"cannot listen on {host}:{port}: {failure.strerror or failure}")
    if failure is not None:
        cause = failure.strerror if isinstance(failure, OSError) else None
        return _fail(f"{ledger}: {cause or failure}; check the ledger path")
    return STOPPED_EXIT_CODE


@app.command
def report(
    ledger: Annotated[Path, Parameter(help="The SQLite ledger of a run.")],
    /,
    *,
    run: Annotated[int | None, Parameter(help="Run id (default: the latest).")] = None,
    json: Annotated[bool, Parameter(help="JSON instead of text.")] = False,
    charger: Annotated[
        str | None, Parameter(help="One charger's connections, transactions, errors, statuses.")
    ] = None,
    csv: Annotated[
        Path | None,
        Parameter(help="Also write frames.csv, transactions.csv and events.csv to this folder."),
    ] = None,
    html: Annotated[
        Path | None,
        Parameter(help="Also write the run's report as one self-contained HTML page (charts,"
                       " tables; opens offline) to this file."),
    ] = None,
) -> int:
    """What happened in a run: per-action latencies, outcomes, errors, transactions, reconnects,
    what was left undelivered, each injected fault and what the CSMS did next, the verdicts.

    With --html, the run's report is also written as a page (the run's, even with --charger)."""
    from simulator.report import (
        Report,
        ReportError,
        render_charger_text,
        render_json,
        render_text,
        summarize,
        summarize_charger,
        write_csv,
    )
    from simulator.report.html import write_html
    from simulator.verdicts import judge_unjudged

    def judged() -> Report:
        summary = summarize(ledger, run)
        if summary.verdicts is None:  # a run that ended without judging: judge it now
            summary = msgspec.structs.replace(summary, verdicts=judge_unjudged(ledger, run))
        return summary

    if not ledger.is_file():
        return _fail(f"{ledger}: no such ledger file")
    try:
        summary = None
        if charger is not None:
            one = summarize_charger(ledger, charger, run)
            page = render_json(one) if json else render_charger_text(one)
        else:
            summary = judged()
            page = render_json(summary) if json else render_text(summary)
        written = {} if csv is None else write_csv(ledger, csv, run)
        size = None if html is None else write_html(ledger, html, summary or judged())
    except ReportError as exc:
        return _fail(str(exc))
    print(page)
    for file, rows in written.items():
        print(f"sim: wrote {file} ({rows} rows)", file=sys.stderr)
    if size is not None:
        print(f"sim: wrote {html} ({size / 1024:.0f} KiB)", file=sys.stderr)
    return 0


@app.command
def replay(
    ledger: Annotated[Path, Parameter(help="The ledger of the run to replay.")],
    /,
    *,
    csms: Annotated[
        str | None, Parameter(help="CSMS URL (ws://, wss://) or 'embedded' (default: the run's).")
    ] = None,
    into: Annotated[
        Path | None,
        Parameter(name="--ledger",
                  help="Ledger of the replay (default: LEDGER's name with -replay added).")
    ] = None,
    run: Annotated[int | None, Parameter(help="Run id to replay (default: the latest).")] = None,
    json: Annotated[bool, Parameter(help="Print a machine-readable summary at the end.")] = False,
    quiet: Annotated[bool, Parameter(help="No live view.")] = False,
    junit: Annotated[
        Path | None, Parameter(help="Also write the verdicts as JUnit XML to this file.")
    ] = None,
    api: Annotated[
        str | None,
        Parameter(help="Serve the control API during the replay on [HOST:]PORT (default: no "
                       "API; the run's [api] table is dropped)."),
    ] = None,
) -> int:
    """Run the same fleet again: the fleet file and seed a run stored in its ledger, and every
    command and fault the run was given through its control API, at the same times.

    A run that lasted until it was stopped is replayed for as long as it lasted. The ledger
    never keeps a secret: a password written as ${VAR} is read from the environment again, and
    one written literally must be given as its SIM_ variable (the error names it)."""
    import datetime as dt

    from simulator.api.replay import Replayer, recorded_actions
    from simulator.config import ConfigError, parse_fleet
    from simulator.report import ReportError
    from simulator.report.faults import clock_origin
    from simulator.report.outcomes import secrets_to_give
    from simulator.report.summary import open_run

    if not ledger.is_file():
        return _fail(f"{ledger}: no such ledger file")
    try:
        with open_run(ledger, run) as (_, stored):
            record = stored  # its row is all a replay needs: the connection closes here
    except ReportError as exc:
        return _fail(str(exc))
    if not record.config:
        return _fail(f"{ledger}: run {record.id} stored no fleet file, so it cannot be replayed")
    missing = [variable for variable in secrets_to_give(record.config)
               if variable not in os.environ
               and (api is not None or not variable.startswith("SIM_API__"))]
    if missing:
        return _fail(f"{ledger}: run {record.id} had a secret the ledger does not keep; give it"
                     f" in the environment as {' and '.join(missing)}, e.g."
                     f" {missing[0]}=... sim replay {ledger}")
    try:
        actions = recorded_actions(ledger, record.id, clock_origin(record))
    except (ValueError, sqlite3.Error) as exc:
        return _fail(f"{ledger}: {exc}")
    target = into if into is not None else ledger.with_name(
        f"{ledger.stem}-replay{ledger.suffix}")
    overrides: dict[str, object] = {"run.ledger": str(target)}
    if record.seed is not None:
        overrides["run.seed"] = record.seed
    if csms is not None:
        overrides["csms.url"] = csms
    if api is not None:
        overrides["api.listen"] = api
    env = dict(os.environ)
    if api is None:  # no API served: its ${VAR}s (the token) need not be given
        env.update({variable: "(not served)" for variable in _api_variables(record.config)
                    if variable not in env})
    try:
        fleet = parse_fleet(record.config, source=f"{ledger} (run {record.id})",
                            overrides=overrides, env=env)
    except ConfigError as exc:
        return _fail(str(exc))
    if api is None and fleet.api is not None:  # (it would listen on the run's own port)
        fleet = msgspec.structs.replace(fleet, api=None)
    if fleet.run.duration is None and record.ended_at is not None:  # it lasted until stopped
        lasted = (dt.datetime.fromisoformat(record.ended_at)
                  - dt.datetime.fromisoformat(record.started_at)).total_seconds()
        fleet = msgspec.structs.replace(
            fleet, run=msgspec.structs.replace(fleet.run, duration=lasted))
    problem = _usable(fleet)
    if problem is not None:
        return _fail(problem)
    interactive = f", {len(actions)} API command(s) and fault(s)" if actions else ""
    print(f"sim: replaying run {record.id} of {ledger} (seed {fleet.run.seed}{interactive}) "
          f"into {target}", file=sys.stderr)
    return _run(fleet, resume=False, quiet=quiet, json=json, junit=junit,
                alongside=[Replayer(actions)] if actions else ())


def _api_variables(config: str) -> list[str]:
    """The ``${VAR}`` references of a stored fleet file's ``[api]`` table."""
    import re
    import tomllib

    try:
        table = tomllib.loads(config).get("api", {})
    except tomllib.TOMLDecodeError:
        return []  # parse_fleet says what is wrong with it
    return [name for value in table.values() if isinstance(value, str)
            for name in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value)]


@app.command
def diff(
    a: Annotated[Path, Parameter(help="Ledger A.")],
    b: Annotated[Path, Parameter(help="Ledger B.")],
    /,
) -> int:
    """Compare the latest runs of two ledgers: verdicts, latency percentiles per action and
    error counts side by side, differences marked with *."""
    from simulator.report import ReportError, render_diff, summarize

    reports = []
    for ledger in (a, b):
        if not ledger.is_file():
            return _fail(f"{ledger}: no such ledger file")
        try:
            reports.append(summarize(ledger))
        except ReportError as exc:
            return _fail(str(exc))
    print(render_diff(*reports))
    return 0


@app.command
def check(
    *files: Annotated[
        Path, Parameter(help="Fleet files, or names of shipped scenarios, to validate.")
    ],
) -> int:
    """Validate fleet files (every rule `sim start` applies) and print each resolved one."""
    from simulator.config import ConfigError, describe, fleet_file, load_fleet

    if not files:
        return _fail("check: name one or more fleet FILEs, e.g. sim check scenarios/fleet.toml")
    status = 0
    for file in files:
        try:
            fleet = load_fleet(fleet_file(file))
        except ConfigError as exc:
            status = _fail(str(exc))
            continue
        problem = _usable(fleet)
        if problem is not None:
            status = _fail(problem)
            continue
        print(describe(fleet))
    return status


@app.command
def schema() -> int:
    """Print the JSON schema of the fleet file format (for editor completion)."""
    from simulator.config import json_schema

    print(jsonlib.dumps(json_schema(), indent=2))
    return 0


def _usage_error(error: CycloptsError, argv: list[str]) -> str:
    """The argument parser's error as one line, saying what is wrong with a value that looked
    like an option (``--duration -5s``)."""
    message = " ".join(str(error).split())
    for flag, value in itertools.pairwise(argv):
        if flag.startswith("--") and "=" not in flag and value.startswith("-") \
                and f"{flag} requires an argument" in message:
            return (f"{flag}: {value!r} is not a value it takes (a value that starts with '-' "
                    f"must be written {flag}={value})")
    return message


def main() -> None:
    """Console-script entry point."""
    try:
        app(print_error=False, exit_on_error=False)
    except CycloptsError as error:
        sys.exit(_fail(_usage_error(error, sys.argv[1:])))
    except BrokenPipeError:  # `sim report x.db | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
