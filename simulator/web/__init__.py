"""The browser side: the dashboard's and the HTML report's pages, scripts and styles, and the
vendored libraries they use (``vendor/``: uPlot, Redoc, with their licences).

Plain files shipped as package data; :func:`asset` reads one. Nothing here imports the rest of
the simulator: the API serves these files and the report inlines them.
"""

from __future__ import annotations

from importlib import resources


def asset(name: str) -> bytes:
    """The bytes of the shipped file ``name`` (a path under this folder, ``vendor/x.js``);
    ``FileNotFoundError`` if there is none."""
    if name.startswith("/") or ".." in name.split("/"):
        raise FileNotFoundError(name)
    return resources.files(__package__).joinpath(name).read_bytes()


__all__ = ["asset"]
