"""The built-in reference central system (CSMS): the default target of a fleet.

``core`` is the sans-IO :class:`CentralSystem` (frames in, frames and events out, in the protocol
version its plugin names); ``answers`` what a careful OCPP 1.6 CSMS answers and notices;
``transaction_book`` its transactions and their ids; ``server`` serves it over trio-websocket
(:func:`run_csms`, :func:`open_csms`); ``options`` holds :class:`CsmsOptions`; ``records`` the
frozen snapshots it hands out; ``rules`` its pure decisions.

The server names are imported lazily, on first use, so that importing ``simulator.csms.core``
(or this package for the pure names) never loads trio: the layering test checks it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simulator.csms.core import CallRefused, CentralSystem
from simulator.csms.options import BootStatus, CsmsOptions
from simulator.csms.records import (
    Anomaly,
    AnomalyKind,
    CallOutcome,
    ChargerState,
    ConnectorState,
    CsmsStatistics,
    TransactionRecord,
)

if TYPE_CHECKING:
    from simulator.csms.server import CsmsServer, RunningCsms, open_csms, run_csms

_SERVER_NAMES = frozenset({"CsmsServer", "RunningCsms", "open_csms", "run_csms"})

__all__ = [
    "Anomaly",
    "AnomalyKind",
    "BootStatus",
    "CallOutcome",
    "CallRefused",
    "CentralSystem",
    "ChargerState",
    "ConnectorState",
    "CsmsOptions",
    "CsmsServer",
    "CsmsStatistics",
    "RunningCsms",
    "TransactionRecord",
    "open_csms",
    "run_csms",
]


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        return getattr(importlib.import_module("simulator.csms.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
