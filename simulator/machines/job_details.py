"""Details of the charger's jobs that follow from their requests (:mod:`.jobs`): the file an
upload sends and where it goes, the ``firmwareVersion`` a firmware gives, and the bounds on a
request's ``retries`` and ``retryInterval``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import Final

from simulator.machines.context import ChargerContext

DEFAULT_RETRY_INTERVAL: Final = 30.0
"""Seconds between two tries of a download or upload when the request gives no interval."""
MAX_RETRY_INTERVAL: Final = 7 * 24 * 3600
"""Seconds: the longest ``retryInterval`` taken (a week; a larger one is taken as this)."""
MAX_RETRIES: Final = 1000
"""The most ``retries`` taken (a larger number is taken as this)."""

_FIRMWARE_SUFFIXES: Final = (".tar.gz", ".tgz", ".bin", ".img", ".hex", ".zip", ".fw", ".swu")


def firmware_version_of(location: str) -> str:
    """The ``firmwareVersion`` a firmware from ``location`` gives (≤ 50 characters): the last
    segment of its path without a usual firmware file suffix (``http://host/fw/acme-2.1.0.bin`` →
    ``acme-2.1.0``); a location without one gives ``fw-`` and 12 hex digits of its SHA-256."""
    try:
        path = urllib.parse.urlsplit(location).path
    except ValueError:
        path = ""
    name = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1]).strip()
    for suffix in _FIRMWARE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
            break
    if not name:
        name = "fw-" + hashlib.sha256(location.encode()).hexdigest()[:12]
    return name[:50]


def _safe(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)


def upload_file(ctx: ChargerContext, title: str, now: float,
                lines: tuple[str, ...] = ()) -> tuple[str, bytes]:
    """The file an upload sends: its name ``<title>-<identity>-<UTC stamp>.log`` (≤ 255
    characters, safe in a URL path) and a small text body describing the charger at ``now``
    (plus ``lines``)."""
    wall = ctx.wall(now)
    name = f"{_safe(title)[:40]}-{_safe(ctx.charger)[:150]}-{wall:%Y%m%dT%H%M%SZ}.log"
    body = [
        f"{title} of charge point {ctx.charger}",
        f"vendor {ctx.spec.vendor}, model {ctx.spec.model}, "
        f"firmware {ctx.firmware_version or 'unknown'}",
        f"written {wall.isoformat()}",
        *[f"connector {cid}: {machine.status.value}"
          for cid, machine in sorted(ctx.connectors.items())],
        *lines,
    ]
    return name, ("\n".join(body) + "\n").encode()


def retry_interval(seconds: int | None) -> float:
    """A request's ``retryInterval`` in seconds (absent or negative: the default; at most
    :data:`MAX_RETRY_INTERVAL`)."""
    if seconds is None or seconds < 0:
        return DEFAULT_RETRY_INTERVAL
    return float(min(seconds, MAX_RETRY_INTERVAL))


def retry_count(count: int | None) -> int:
    """A request's ``retries`` (absent or negative: none; at most :data:`MAX_RETRIES`)."""
    return 0 if count is None else max(0, min(count, MAX_RETRIES))


def upload_url(location: str, file_name: str) -> str:
    """Where an upload goes: the file name in the ``location`` directory."""
    return f"{location.rstrip('/')}/{urllib.parse.quote(file_name)}"
