"""The official OCPP 1.6 JSON schemas, for ``schema_clean`` under ``[run] validate_csms = true``.

The schemas ship in the PyPI ``ocpp`` package (``ocpp/v16/schemas``, 78 files) and are applied
with ``jsonschema`` (Draft 4, ``date-time`` checked through ``rfc3339-validator``, numbers parsed
as ``Decimal`` so that ``multipleOf: 0.1`` judges ``21.4`` right): the optional extra
``ocpp-chaos-simulator[validate]``. The frames are judged after the run, from the raw text the
ledger kept, not in the chargers' receive path: the jsonschema path is slow, and a run's timing
must not depend on whether it is judged. The files are read without importing the ``ocpp``
package's asyncio modules.
"""

from __future__ import annotations

import decimal
import importlib.resources
import importlib.util
import json
from typing import Any, Final

import msgspec

PACKAGES: Final = ("ocpp", "jsonschema", "rfc3339_validator")
"""The modules the official schemas need."""

MAX_REMEMBERED: Final = 100_000
"""Distinct payloads whose judgement is kept (most frames repeat an earlier payload)."""

INSTALL_HINT: Final = "pip install 'ocpp-chaos-simulator[validate]'"

_EXACT: Final = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX,
                                Emin=decimal.MIN_EMIN)


def missing_packages() -> list[str]:
    """The modules of :data:`PACKAGES` that are not installed."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


_envelope: Final = msgspec.json.Decoder(list[msgspec.Raw])


def _load(text: str | bytes) -> Any:
    return json.loads(text, parse_float=decimal.Decimal)


class OfficialSchemas:
    """The 78 schemas, ready to validate payloads (build with :meth:`load`)."""

    def __init__(self, validators: dict[tuple[str, bool], Any]) -> None:
        self._validators = validators
        self._judged: dict[tuple[str, bool, bytes], str | None] = {}  # payloads repeat a lot

    @classmethod
    def load(cls) -> OfficialSchemas:
        """Read every schema file. Raises ``ModuleNotFoundError`` naming :data:`INSTALL_HINT`
        when a package of :data:`PACKAGES` is missing."""
        missing = missing_packages()
        if missing:
            raise ModuleNotFoundError(f"the official schemas need {', '.join(missing)}:"
                                      f" {INSTALL_HINT}")
        from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
            Draft4Validator,
            FormatChecker,
        )

        folder = importlib.resources.files("ocpp") / "v16" / "schemas"
        checker = FormatChecker()
        validators: dict[tuple[str, bool], Any] = {}
        for entry in folder.iterdir():
            if entry.name.endswith(".json"):
                stem = entry.name.removesuffix(".json")
                response = stem.endswith("Response")
                action = stem.removesuffix("Response") if response else stem
                schema = _load(entry.read_text(encoding="utf-8-sig"))
                validators[(action, response)] = Draft4Validator(schema, format_checker=checker)
        return cls(validators)

    def problem(self, raw: str, message_type: Any, action: Any) -> str | None:
        """What is wrong with the payload of frame ``raw`` (a CALL of ``action``, or a
        CALLRESULT answering one) by the official schema, or ``None``: it fits, or there is no
        schema to judge it by (a CALLERROR, an unknown action, a result nobody asked for)."""
        if message_type not in (2, 3) or not isinstance(action, str):
            return None
        validator = self._validators.get((action, message_type == 3))
        if validator is None:
            return None
        try:
            parts = _envelope.decode(raw)
        except msgspec.DecodeError:
            return "not JSON"
        if len(parts) < 3:
            return None  # not a frame: the simulator's own decoding says so
        key = (action, message_type == 3, bytes(parts[-1]))
        if key not in self._judged:
            with decimal.localcontext(_EXACT):
                error = next(iter(validator.iter_errors(_load(key[2]))), None)
            problem = None
            if error is not None:
                where = "/".join(str(part) for part in error.absolute_path)
                problem = f"{where + ': ' if where else ''}{error.message}"[:200]
            if len(self._judged) >= MAX_REMEMBERED:
                return problem
            self._judged[key] = problem
        return self._judged[key]
