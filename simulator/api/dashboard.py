"""The control API: the live dashboard's page (``GET /``) and the browser files it loads
(``GET /static/{path}``: the files of :mod:`simulator.web`, the vendored libraries under
``vendor/``).

These are the only routes served without the bearer token (the guard of
:mod:`simulator.api.server` lets ``/`` and ``/static/`` through): they hold no data of the run.
The page asks for the token when the API answers 401 and sends it itself.

Rules: a file is served only if its suffix is in :data:`CONTENT_TYPES` (the Python sources of
the package are not browser files); a path that climbs out of the folder, names a folder or
no file is a 404 problem document. A file is read once (package data does not change while
the run lasts) and kept, so a page reload costs the fleet no disk read.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Final

from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.api.problems import problem
from simulator.web import asset

PAGE: Final = "dashboard.html"
"""The dashboard's page, served at ``/``."""

CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".md": "text/plain",
    ".LICENSE": "text/plain",
}
"""The content type of each suffix served (Litestar adds ``; charset=utf-8`` to ``text/*``: the
files are UTF-8); any other suffix is not a browser file (404)."""

HEADERS: Final[dict[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
"""Headers of every file: no content sniffing; the browser revalidates (a new version of the
simulator serves new files at the same paths)."""


class Assets:
    """The browser files, read from the package once each and kept (a few hundred kB in all)."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def get(self, path: str) -> tuple[bytes, str]:
        """The bytes and content type of ``path`` (relative to :mod:`simulator.web`, with
        ``/`` separators); a 404 :func:`problem` for a path that is not a browser file there."""
        name = path.lstrip("/")
        parts = PurePosixPath(name).parts
        content_type = CONTENT_TYPES.get(PurePosixPath(name).suffix)
        if not parts or ".." in parts or "\\" in name or content_type is None:
            raise problem(404, f"no file {path!r} in the dashboard's files")
        body = self._files.get(name)
        if body is None:
            try:
                body = asset(name)
            except (OSError, ValueError):  # no such file, a folder, a NUL in the name
                raise problem(404, f"no file {path!r} in the dashboard's files") from None
            self._files[name] = body
        return body, content_type


@get("/", include_in_schema=False, media_type=MediaType.HTML)
async def dashboard_page(assets: NamedDependency[Assets]) -> Response[bytes]:
    """The live dashboard (one page; it loads its scripts from ``/static/``)."""
    body, content_type = assets.get(PAGE)
    return Response(body, media_type=content_type, headers=HEADERS)


@get("/static/{path:path}", include_in_schema=False)
async def static_file(path: FromPath[str], assets: NamedDependency[Assets]) -> Response[bytes]:
    """A file of the dashboard (``/static/dashboard.js``, ``/static/vendor/uPlot.iife.min.js``);
    404 for anything else."""
    body, content_type = assets.get(path)
    return Response(body, media_type=content_type, headers=HEADERS)


def part(ctx: ApiContext) -> ApiPart:
    """The page and its files; they share one :class:`Assets` cache."""
    return ApiPart(handlers=[dashboard_page, static_file],
                   dependencies={"assets": provide(Assets())})
