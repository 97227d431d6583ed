"""The API's own errors, importable without loading the web stack."""

from __future__ import annotations


class ApiUnavailable(Exception):
    """The API cannot listen where it was told (the address is in use, not this machine's)."""


__all__ = ["ApiUnavailable"]
