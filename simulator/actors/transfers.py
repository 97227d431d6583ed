"""Real transfers: the HTTP downloads and uploads a charger's jobs ask for (``real_transfers``).

The machine asks with a :class:`~simulator.machines.effects.Transfer` effect; the charger actor
starts :func:`run_transfer` in its own nursery, and the outcome comes back to the main loop as
a :class:`TransferDone` inbox item (only the main loop steps the machine). Rules:

- A download is ``GET url`` (redirects followed); it succeeds with a 2xx answer whose body is at
  most :data:`MAX_DOWNLOAD_BYTES` (the firmware image). An upload is ``PUT url`` with the body
  (``Content-Type: text/plain``); any 2xx answer is success. Credentials in the URL
  (``user:password@``) are sent as HTTP Basic, as httpx does.
- The whole transfer is bounded by the effect's ``timeout`` (seconds); running out of time, a
  connection failure or an HTTP error status is a failed try, described in one line with no
  secret (``TransferDone.detail``). The task never raises for those.
- Cancelled (the charger actor ends), it hands nothing over. A closed inbox (the charger is
  gone) drops the outcome.

httpx runs on trio through anyio; one client per transfer (transfers are rare), all sharing
one TLS context (the system's trust store, loaded once: loading it takes tens of milliseconds,
which a fleet-wide firmware update would otherwise spend in the event loop per charger). An
upload does not follow redirects (a 303 would turn the PUT into a GET and report an upload that
never happened).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

import httpx
import trio

from simulator.machines.effects import Transfer, TransferKind

MAX_DOWNLOAD_BYTES: Final = 64 * 1024 * 1024
"""The largest firmware image a download takes (a larger one is a failed try)."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS client context every https transfer shares (the system's trust store)."""
    return ssl.create_default_context()


@dataclasses.dataclass(frozen=True, slots=True)
class TransferDone:
    """An inbox item: the real transfer ``job`` ended (``data``: a download's bytes;
    ``detail``: why it failed, one line)."""

    job: str
    ok: bool
    data: bytes | None = None
    detail: str = ""

    def __repr__(self) -> str:
        size = "" if self.data is None else f", {len(self.data)} bytes"
        return f"TransferDone({self.job!r}, ok={self.ok}{size}, {self.detail!r})"


async def run_transfer(
    transfer: Transfer,
    deliver: Callable[[TransferDone], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Carry out ``transfer`` and hand its outcome to ``deliver`` (the charger's inbox); ready
    at once (``task_status``), returns once the outcome is handed over."""
    task_status.started()
    outcome = await perform(transfer)
    # A closed inbox: the charger is gone, nobody waits for the outcome.
    with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
        await deliver(outcome)


async def perform(transfer: Transfer) -> TransferDone:
    """The outcome of ``transfer`` (see the module docstring); never raises but on
    cancellation."""
    outcome = TransferDone(transfer.job, False, detail=f"timed out after {transfer.timeout:g} s")
    with trio.move_on_after(transfer.timeout):
        try:
            download = transfer.kind == TransferKind.DOWNLOAD
            async with httpx.AsyncClient(timeout=transfer.timeout, verify=tls_context(),
                                         follow_redirects=download) as client:
                if transfer.kind == TransferKind.DOWNLOAD:
                    outcome = await _download(client, transfer)
                else:
                    outcome = await _upload(client, transfer)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, ValueError,
                UnicodeError) as exc:  # (a URL httpx cannot parse or encode: ValueError, IDNA)
            outcome = TransferDone(transfer.job, False,
                                   detail=_describe(exc, transfer.url))
    return outcome


async def _download(client: httpx.AsyncClient, transfer: Transfer) -> TransferDone:
    async with client.stream("GET", transfer.url) as response:
        if not response.is_success:
            return TransferDone(transfer.job, False, detail=f"HTTP {response.status_code}")
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > MAX_DOWNLOAD_BYTES:
                return TransferDone(transfer.job, False,
                                    detail=f"larger than {MAX_DOWNLOAD_BYTES} bytes")
    return TransferDone(transfer.job, True, bytes(data))


async def _upload(client: httpx.AsyncClient, transfer: Transfer) -> TransferDone:
    response = await client.put(transfer.url, content=transfer.body or b"",
                                headers={"Content-Type": "text/plain; charset=utf-8"})
    if not response.is_success:
        return TransferDone(transfer.job, False, detail=f"HTTP {response.status_code}")
    return TransferDone(transfer.job, True)


def _describe(exc: Exception, url: str) -> str:
    """One line on ``exc``, with the URL's password (if any) left out."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:  # a URL that does not parse: say so, and quote none of it
        return f"{type(exc).__name__}: the location is not a valid URL"
    return text.replace(password, "***") if password else text
