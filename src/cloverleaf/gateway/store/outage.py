"""When the store cannot serve at all: which errors mean that, and how to say it safely.

A request that needs the database (a virtual key not cached yet, a budget counted in the
store, a stored Response, the admin API) cannot be answered while the database is down,
unreachable or not answering. That is a dependency outage — the server answers 503 and the
client retries, as for a Redis outage — not a bug to file with a traceback. Which errors are
such an outage:

- :class:`StoreUnavailable`, raised where the gateway gives up waiting for the store;
- the driver's ``OperationalError`` and ``InterfaceError`` (PEP 249: errors of the database's
  operation, not of the query — connection refused, dropped, timed out, a statement cancelled
  by ``statement_timeout``, SQLite's "database is locked"), as SQLAlchemy wraps them;
- any DBAPI error SQLAlchemy recognised as a lost connection;
- SQLAlchemy's pool timeout (every connection busy, none free in time).

A query the database rejects (a constraint, a syntax error) is not an outage: it stays a 500.
Nor is a schema that lacks a table or column the code uses (:func:`schema_problem`), although
SQLite says so with an ``OperationalError``: retrying never helps, so it is a 500 logged
naming what is missing, not a 503 telling the client to retry shortly.

The description is one line for the log: the driver's message without the SQL, the bound
parameters (they may hold prompts or key hashes) or a password.
"""

from __future__ import annotations

import re

from ..._errors import CloverleafError

#: (pattern, replacement): a URL's password, a conninfo's ``password=``
_SECRETS = ((re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
            (re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE), r"\1***"))


class StoreUnavailable(CloverleafError):
    """The gateway's store (its database) cannot be reached or did not answer in time."""

    retryable = True


def outage(exc: BaseException) -> str | None:
    """One log line saying why the store failed, when ``exc`` means it is unavailable; None
    for any other error (a query the database refused, a bug)."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - no SQLAlchemy, so no database error either
        return None
    if schema_problem(exc) is not None:
        return None
    if isinstance(exc, sa_exc.TimeoutError):
        return f"no connection to the store was free in time ({_first_line(exc)})"
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return None


#: SQLite's words for a table or column that is not there (it has no error codes for them)
_SQLITE_MISSING = ("no such table", "no such column", "has no column named")
#: PostgreSQL's SQLSTATEs for the same: undefined_column, undefined_table
_POSTGRES_MISSING = ("42703", "42P01")


def schema_problem(exc: BaseException) -> str | None:
    """One log line naming the table or column the store lacks, when ``exc`` says the schema is
    not the one this code uses (a migration edited after it shipped, one not applied, a store
    changed by hand); None for any other error. Permanent: no retry helps."""
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - no SQLAlchemy, so no database error either
        return None
    if not isinstance(exc, sa_exc.DBAPIError) or exc.orig is None:
        return None
    cause = exc.orig
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    line = _first_line(cause)
    if code in _POSTGRES_MISSING or (code is None and any(words in line for words in _SQLITE_MISSING)):
        return f"{type(cause).__name__}: {line}"
    return None


def _first_line(exc: BaseException) -> str:
    """The message's first line (SQLAlchemy appends the SQL and its parameters on later ones),
    cut short, with anything that looks like a password hidden."""
    line = (str(exc).strip().splitlines() or [""])[0]
    line = line.split("[SQL: ", 1)[0].split("(Background on this error", 1)[0].strip()
    for pattern, hidden in _SECRETS:
        line = pattern.sub(hidden, line)
    return line[:300]
