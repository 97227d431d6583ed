"""RFC 9457 problem documents: every error the API answers is ``application/problem+json``.

A bad request (a body that does not match the fleet file's types, an unknown charger, a
command the fleet cannot carry out) is a 4xx with ``type``, ``title``, ``status`` and
``detail``; an unexpected error is a 500 whose detail names no internals (never a traceback).
Handlers raise :func:`problem` (or :class:`~simulator.simulation.CommandError`, a 404 or 409)
and let the handlers here write the document.
"""

from __future__ import annotations

import http
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from simulator.simulation import CommandError

PROBLEM_JSON: Final = "application/problem+json"


class Problem(HTTPException):
    """A 4xx the API answers with a problem document (``detail``: one line for a person;
    ``extra``: more members of the document, such as the invalid ``errors``)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(status_code=status, detail=detail)
        self.members = extra


def problem(status: int, detail: str, **extra: Any) -> Problem:
    """A :class:`Problem` to raise: ``raise problem(404, "no charger 'CP9' in this fleet")``."""
    return Problem(status, detail, **extra)


def problem_response(status: int, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    """The problem document for ``status`` (its title is the HTTP reason phrase)."""
    title = http.HTTPStatus(status).phrase
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="sim"'} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, Problem):
        return problem_response(exc.status_code, exc.detail, **exc.members)
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        detail = "; ".join(
            f"{e.get('key') or 'body'}: {e.get('message')}" for e in errors if isinstance(e, dict)
        ) or exc.detail
        return problem_response(400, detail, errors=errors)
    return problem_response(exc.status_code, exc.detail)


def _command_error(_: Request[Any, Any, Any], exc: CommandError) -> Response[dict[str, Any]]:
    text = str(exc)
    return problem_response(404 if text.startswith("no ") else 409, text)


def _too_deep(_: Request[Any, Any, Any], __: RecursionError) -> Response[dict[str, Any]]:
    return problem_response(400, "the body is nested too deeply to be read")


async def html_not_found(response: Response[Any]) -> Response[Any]:
    """An ``after_request`` hook: Litestar's own schema routes answer an unknown path with an
    HTML 404 page; the API answers every error with a problem document."""
    media_type = getattr(response.media_type, "value", response.media_type)
    if response.status_code == 404 and str(media_type).startswith("text/html"):
        return problem_response(404, "Not Found")
    return response


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return problem_response(500, f"the simulator could not answer ({type(exc).__name__}); "
                                 "the run goes on")


EXCEPTION_HANDLERS: Final[dict[int | type[Exception], Any]] = {
    404: _http_error,  # (by status too: Litestar's router raises these before any handler)
    405: _http_error,
    HTTPException: _http_error,
    CommandError: _command_error,
    RecursionError: _too_deep,  # (msgspec on a body nested thousands deep)
    Exception: _unexpected,
}
"""The app's exception handlers (``Litestar(exception_handlers=...)``)."""

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "Problem", "html_not_found", "problem",
           "problem_response"]
