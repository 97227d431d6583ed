# Recipes for the OCPP chaos simulator. Run them through `tools/just` on a fresh machine:
# it creates .venv and installs everything first.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# The main job: the default fleet against the embedded CSMS, then the report.
run *ARGS:
    sim start --toml scenarios/fleet.toml {{ARGS}}

# Lint, type-check and run the whole test suite.
test *ARGS: lint
    python -m pytest -q {{ARGS}}

# ruff, mypy --strict on the package, and the import contracts of pyproject.toml (the layers).
lint:
    ruff check simulator tests tools
    mypy --strict simulator
    lint-imports

# Only the fast tests (no interop peers, no slow property runs).
quick *ARGS:
    python -m pytest -q -m "not interop and not slow" {{ARGS}}

# Run a benchmark from tools/bench: `tools/just bench codec`, `tools/just bench fleet`.
bench NAME *ARGS:
    python tools/bench/{{NAME}}.py {{ARGS}}
