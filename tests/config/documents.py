"""The fleet files the config tests share: the documented ones, word for word, and one group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.config import Fleet, parse_fleet

SCENARIOS = Path(__file__).resolve().parent.parent.parent / "scenarios"

INTEROP = """\
[run]
name = "interop"
seed = 7
duration = "20s"
ledger = "runs/interop.db"

[csms]
url = "ws://127.0.0.1:9100/ocpp"

[[group]]
name = "ac"
count = 10
id = "AC-{n:03}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
MeterValueSampleInterval = 2
HeartbeatInterval = 3

[group.sessions]
arrivals_per_hour = 720
duration = "3s..8s"
energy_kwh = "1..5"
id_tags = ["TAG-1", "TAG-2"]
"""

DESIGN_SKETCH = """\
[run]
name = "lab"
seed = 42                      # every random choice in the run derives from this
duration = "2m"                # omit: until Ctrl-C
ledger = "runs/{name}.db"
time = "real"                  # "virtual": whole fleet + embedded CSMS on a mock clock

[csms]
url = "embedded"               # or ws://host:port/path — the charger identity is appended
security_profile = 0           # 0 none, 1 basic, 2 TLS + basic, 3 mutual TLS
# password = "${SIM_CSMS_PASSWORD}"   # environment interpolation; never written to the ledger

[[group]]
name = "street"
count = 50
id = "AC-{n:04}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 20              # new connections per second (ramp)
[group.config]                 # OCPP configuration keys
MeterValueSampleInterval = 30
[group.sessions]               # automatic transactions
arrivals_per_hour = 2          # Poisson, per connector
duration = "20m..2h"
energy_kwh = "5..40"
id_tags = ["TAG-1", "TAG-2", "BLOCKED-9"]

[[step]]                       # scripted domain actions
at = "10s"
do = "plug"                    # plug, unplug, present_tag, reboot, fault, ...
target = { ids = ["AC-0001"], connector = 1 }

[[chaos]]                      # faults, seeded
fault = "disconnect"
target = { group = "street", fraction = 0.2 }
at = "30s"
for = "20s"

[[expect]]                     # verdicts; any failure → exit code 1
check = "no_lost_transactions"
[[expect]]
check = "latency"
action = "BootNotification"
p95 = "2s"
"""

GROUP = """
[[group]]
name = "ac"
count = 3
id = "AC-{n:04}"
vendor = "Acme"
model = "AC22"
connectors = 2
"""

NO_ENV: dict[str, str] = {}


def parse(text: str, **kwargs: Any) -> Fleet:
    kwargs.setdefault("env", NO_ENV)
    return parse_fleet(text, source="scenarios/x.toml", **kwargs)

SECURE = """
[csms]
url = "wss://csms.example/ocpp"
security_profile = 2
password = "${PW}"
ca_file = "ca.pem"
""" + GROUP + '[group.config]\nAuthorizationKey = "00ff00ff00ff00ff"\n'
