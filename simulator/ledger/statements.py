"""Multi-row statements: one ``INSERT``/``DELETE`` over many rows, stepped once.

The ledger writes every batch (events, and the outbox rows of its saves) with statements of
power-of-two row counts instead of ``executemany``: ``executemany`` steps once per row, and the
sqlite3 module hands the GIL to the busy event loop and back at every step, where one statement
of up to :data:`MAX_ROWS_PER_STATEMENT` rows steps once (the costs are in
``tools/bench/README.md``, "Ledger"). The few statement texts (one per power of two) stay in the
connection's statement cache.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Final

MAX_ROWS_PER_STATEMENT: Final = 256
"""Rows per statement at most, by default (SQLite's variable limit may allow fewer)."""


class RowsStatement:
    """A statement over any number of rows: ``sql(n)`` is its text for ``n`` rows of
    ``columns`` parameters each, ``template`` with ``row`` repeated ``n`` times, comma-separated,
    in place of its ``{}`` (cached per ``n``)."""

    def __init__(self, columns: int, template: str, row: str) -> None:
        self.columns = columns
        self._template = template
        self._row = row
        self.sql = functools.cache(self._text)

    def _text(self, rows: int) -> str:
        return self._template.format(", ".join([self._row] * rows))


class RowWriter:
    """Runs :class:`RowsStatement` s over flat parameter lists on one connection, in statements
    of at most ``max_rows`` rows (and within SQLite's limit on a statement's parameters).

    Runs in the caller's transaction; commits nothing. Raises ``ValueError`` when ``max_rows``
    is not positive."""

    def __init__(self, conn: sqlite3.Connection, max_rows: int = MAX_ROWS_PER_STATEMENT) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self._conn = conn
        self._max_rows = max_rows
        self._variables = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    @property
    def max_rows(self) -> int:
        """Rows per statement at most, as asked for."""
        return self._max_rows

    def rows_per_statement(self, columns: int) -> int:
        """The most rows of ``columns`` parameters one statement takes: the largest power of two
        within SQLite's variable limit, and at most :attr:`max_rows`."""
        return min(self._max_rows, 1 << ((self._variables // columns).bit_length() - 1))

    def execute(self, statement: RowsStatement, params: Sequence[object]) -> None:
        """Run ``statement`` over the rows in ``params`` (flat, ``statement.columns`` values a
        row, in order), largest statements first; nothing for no rows."""
        columns = statement.columns
        row, total = 0, len(params) // columns
        size = self.rows_per_statement(columns)
        while row < total:
            while size > total - row:
                size //= 2
            start = row * columns
            self._conn.execute(statement.sql(size), params[start:start + size * columns])
            row += size
