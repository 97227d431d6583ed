"""The control API's app and its server: Litestar on hypercorn's Trio worker, in the run's
nursery (no second event loop, no thread).

:func:`build_app` joins the parts (:mod:`simulator.api.parts`) into one Litestar app: the
OpenAPI 3.1 document at ``/api/openapi.json`` and its docs page at ``/api/docs`` (Redoc,
vendored: it works offline; Litestar's own copies live under ``/api/schema``), problem
documents for every error (:mod:`.problems`), CORS only for the origins ``[api] cors`` names,
and the bearer token when ``[api] token`` is set. The token is asked of every request but the
dashboard's page and static files (they hold no data; the page asks for the token and sends
it): as ``Authorization: Bearer TOKEN``, or as ``?access_token=TOKEN`` (RFC 6750) where a
browser cannot set a header (``EventSource``). It is compared in constant time and never
logged or recorded.

:class:`ApiService` is a runtime service (``simulator.runtime.Service``): it serves until it
is cancelled, when the fleet has finished.
"""

from __future__ import annotations

import hmac
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from litestar import Litestar, MediaType, Request, get
from litestar.config.cors import CORSConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin

from simulator import __version__
from simulator.api import chaos, chargers, dashboard, events, metrics, run, tree
from simulator.api.errors import ApiUnavailable
from simulator.api.metrics import FleetMetrics
from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.api.problems import EXCEPTION_HANDLERS, html_not_found
from simulator.bus import EventBus
from simulator.config import Api
from simulator.simulation import Simulation

PARTS: Final[tuple[Callable[[ApiContext], ApiPart], ...]] = (
    run.part, chargers.part, chaos.part, events.part, tree.part, metrics.part, dashboard.part,
)
"""Every part of the API, in the order their routes are listed."""

PUBLIC_PREFIXES: Final = ("/static/",)
"""Paths served without the token (besides ``/`` itself): the dashboard's files, no data."""


DOCS_PAGE: Final = RedocRenderPlugin(path="/", js_url="/static/vendor/redoc.standalone.js",
                                     google_fonts=False, favicon="")
"""The docs page: Redoc, vendored (works offline)."""


@get("/api/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


@get("/api/docs", include_in_schema=False, media_type=MediaType.HTML)
async def docs_page(request: Request[Any, Any, Any]) -> bytes:
    """The API's docs page (its OpenAPI document, rendered by Redoc)."""
    return DOCS_PAGE.render(request, request.app.openapi_schema.to_schema())


def _token_guard(token: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler],
                                         Awaitable[None]]:
    expected = token.encode()

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
        # (async: Litestar would run a plain function in a worker thread)
        path = connection.url.path
        if path == "/" or path.startswith(PUBLIC_PREFIXES):
            return
        given = ""
        scheme, _sep, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip()
        elif "access_token" in connection.query_params:
            given = connection.query_params["access_token"]
        if not hmac.compare_digest(given.encode(), expected):
            raise NotAuthorizedException(
                "this API needs its bearer token: send 'Authorization: Bearer TOKEN'"
                if not given else "the bearer token is not this API's")

    return guard


def build_app(sim: Simulation, api: Api, metrics: FleetMetrics | None = None) -> Litestar:
    """The ASGI app of the control API for ``sim`` (see the module docstring); ``metrics``
    observing its bus (default: new ones, which count from now on)."""
    if metrics is None:
        metrics = FleetMetrics()
        sim.bus.observe(metrics.observe)
    ctx = ApiContext(sim=sim, api=api, metrics=metrics)
    parts = [make(ctx) for make in PARTS]
    dependencies = {"sim": provide(sim), "api": provide(api), "ctx": provide(ctx)}
    for built in parts:
        dependencies.update(built.dependencies)
    app = Litestar(
        route_handlers=[openapi_document, docs_page,
                        *(handler for built in parts for handler in built.handlers)],
        dependencies=dependencies,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        after_request=html_not_found,
        guards=[_token_guard(str(api.token))] if api.token is not None else None,
        cors_config=CORSConfig(allow_origins=list(api.cors)) if api.cors else None,
        openapi_config=OpenAPIConfig(
            title="OCPP chaos simulator",
            version=__version__,
            description=f"The control API of the run {sim.fleet.run.name!r}.",
            path="/api/schema",  # (Litestar's own routes; ours are OPENAPI_PATH, DOCS_PATH)
            render_plugins=[DOCS_PAGE],
        ),
        logging_config=None,  # the run's own output stays as it is; nothing is logged per request
        debug=False,
    )
    app.state["tasks"] = [task for built in parts for task in built.tasks]
    return app


def _tasks(app: Litestar) -> Sequence[Callable[[], Any]]:
    tasks: Sequence[Callable[[], Any]] = app.state["tasks"]
    return tasks


class ApiService:
    """The control API as a runtime service (``simulator.runtime.Service``). When attached,
    before the fleet starts, it binds ``api.host:api.port`` (so an address in use stops the
    run before any charger connects: :class:`ApiUnavailable`) and its metrics start observing
    the bus; once the fleet runs it serves there (``listen=False``: it binds nothing and only
    builds :attr:`app`, for tests that call it in memory) until cancelled, after the fleet has
    finished. ``notify`` hears the address as one line; ``serve``'s ``task_status`` gets the
    base URL (:attr:`url`, port 0 resolved)."""

    def __init__(self, api: Api, *, notify: Callable[[str], None] | None = None,
                 listen: bool = True) -> None:
        self.api = api
        self.metrics = FleetMetrics()
        self.app: Litestar | None = None
        self.url: str | None = None
        self._notify = notify
        self._listen = listen
        self._socket: socket.socket | None = None

    def attach(self, bus: EventBus) -> None:
        if self._listen and self._socket is None:
            api = self.api
            family = socket.AF_INET6 if ":" in api.host else socket.AF_INET
            try:
                self._socket = socket.create_server((api.host, api.port), family=family)
            except OSError as error:  # (its strerror names the address again: the errno's)
                cause = os.strerror(error.errno) if error.errno else str(error)
                raise ApiUnavailable(f"the API cannot listen on {api.host}:{api.port}: "
                                     f"{cause}") from None
        bus.observe(self.metrics.observe)

    async def serve(self, sim: Simulation, *,
                    task_status: trio.TaskStatus[str | None] = trio.TASK_STATUS_IGNORED) -> None:
        app = self.app = build_app(sim, self.api, self.metrics)
        async with trio.open_nursery() as nursery:
            for task in _tasks(app):
                nursery.start_soon(task)
            if self._socket is None:
                task_status.started(None)
                return
            host, port = self._socket.getsockname()[:2]
            config = Config()
            config.bind = [f"fd://{self._socket.detach()}"]  # (hypercorn owns it from now on)
            self._socket = None
            config.accesslog = None
            config.errorlog = None
            config.graceful_timeout = 1.0
            asgi: Any = app  # (hypercorn's ASGI type is narrower than Litestar's own)
            await nursery.start(
                lambda task_status: serve(asgi, config, shutdown_trigger=trio.sleep_forever,
                                          task_status=task_status),
                name="api server",
            )
            self.url = url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            if self._notify is not None:
                self._notify(f"dashboard on {url}/ (API {url}/api, docs {url}/api/docs, "
                             f"metrics {url}/metrics)")
            task_status.started(url)


__all__ = ["PARTS", "ApiService", "ApiUnavailable", "build_app"]
