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
    if isinstance(exc, sa_exc.TimeoutError):
        return f"no connection to the store was free in time ({_first_line(exc)})"
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return None


def _first_line(exc: BaseException) -> str:
    """The message's first line (SQLAlchemy appends the SQL and its parameters on later ones),
    cut short, with anything that looks like a password hidden."""
    line = (str(exc).strip().splitlines() or [""])[0]
    line = line.split("[SQL: ", 1)[0].split("(Background on this error", 1)[0].strip()
    for pattern, hidden in _SECRETS:
        line = pattern.sub(hidden, line)
    return line[:300]
