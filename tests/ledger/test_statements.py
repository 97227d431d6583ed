"""Multi-row statements: rows split into power-of-two statements within SQLite's limits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from simulator.ledger.statements import MAX_ROWS_PER_STATEMENT, RowsStatement, RowWriter

PAIRS = RowsStatement(2, "INSERT INTO pairs (a, b) VALUES {}", "(?, ?)")


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE pairs (a INTEGER, b TEXT)")
    try:
        yield conn
    finally:
        conn.close()


def test_rows_per_statement_stays_within_sqlites_variable_limit(conn: sqlite3.Connection) -> None:
    assert RowWriter(conn).rows_per_statement(8) in (64, 128, 256)
    assert RowWriter(conn).max_rows == MAX_ROWS_PER_STATEMENT
    assert RowWriter(conn, max_rows=4).rows_per_statement(8) == 4
    variables = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    assert RowWriter(conn, max_rows=10**9).rows_per_statement(3) * 3 <= variables


@pytest.mark.parametrize(("max_rows", "total", "sizes"), [
    (4, 11, [4, 4, 2, 1]),
    (256, 11, [8, 2, 1]),
    (1, 3, [1, 1, 1]),
    (8, 0, []),
])
def test_rows_go_in_the_largest_statements_first_and_in_order(
    conn: sqlite3.Connection, max_rows: int, total: int, sizes: list[int]
) -> None:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    params: list[object] = []
    for n in range(total):
        params += (n, f"r{n}")
    RowWriter(conn, max_rows=max_rows).execute(PAIRS, params)
    conn.set_trace_callback(None)
    inserts = [sql for sql in statements if sql.startswith("INSERT")]
    assert [sql.count("(") - 1 for sql in inserts] == sizes  # the column list, then a row each
    assert conn.execute("SELECT a, b FROM pairs ORDER BY rowid").fetchall() == [
        (n, f"r{n}") for n in range(total)
    ]


def test_a_row_limit_below_one_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        RowWriter(conn, max_rows=0)
