"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from tests.oracle import ORACLE, SchemaOracle


@pytest.fixture(scope="session")
def oracle() -> SchemaOracle:
    """The official OCPP 1.6 schemas as a validator (see ``tests.oracle``)."""
    return ORACLE
