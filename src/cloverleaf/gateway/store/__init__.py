"""Where call records, traces, budgets, virtual keys and model entries live: one interface,
SQLite by default and PostgreSQL for shared deployments, through SQLAlchemy Core.

- ``sqlite:///path`` (default: ``$XDG_DATA_HOME/cloverleaf/cloverleaf.db``) in WAL mode, so
  readers (``cloverleaf traces``) never block the writer, and a crash never corrupts it;
  ``sqlite://`` is an in-memory database (tests).
- ``postgresql://…`` / ``postgresql+psycopg://…`` (psycopg 3; ``pip install cloverleaf[postgres]``).

Call records, traces and budget spend are written by a :class:`~.writer.BatchWriter` off
the request path (the live budget counters are in the gateway's state backend; the ledger
here is what they are seeded from). The old synchronous reservation API
(``budget_reserve``/``budget_settle``) remains for ``[state] budgets = "store"``. Schema
changes go through numbered migrations (``migrations/``).

The :class:`Store` is assembled from three parts, one idea each: ``CallLog`` (calls,
attempts, traces, spend queries, retention), ``BudgetLedger`` (reservations and spend per
scope and period) and ``AdminTables`` (virtual keys and model entries for the server).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..._errors import ConfigError

try:   # every part below is built on it: say which extra to install, not "No module named 'sqlalchemy'"
    import sqlalchemy
except ImportError:  # pragma: no cover - exercised in a subprocess by tests/gateway/test_missing_extras.py
    raise ImportError("the gateway (routes, limits, budgets, the call store) needs SQLAlchemy: "
                      "pip install 'cloverleaf[gateway]'") from None

from .admin import AdminTables
from .budgets import BudgetLedger
from .calls import CallLog
from .handovers import Handovers
from .outage import StoreUnavailable
from .postgres import unbounded
from .records import AttemptRecord, CallRecord, ModelEntryRow, SpendRow, TraceRecord, VirtualKeyRow
from .spend import SpendBatch


class Store(CallLog, BudgetLedger, AdminTables):
    def __init__(self, url: str, *, batch_size: int = 100, flush_ms: int = 200,
                 wall: Callable[[], float] = time.time, existing: bool = False) -> None:
        """``existing``: open only a database that is a cloverleaf store already, at this code's
        schema, and change nothing (see :func:`open_store`); without it, an older schema is upgraded."""
        from . import migrations, schema
        from .rollups import RollupUpdater
        from .writer import BatchWriter

        self.url = url
        self.engine = create_engine(url)
        self.wall = wall
        try:
            with unbounded():   # a migration may rightly take long on a large database
                self.schema_version = migrations.migrate(self.engine, existing=existing)
        except sqlalchemy.exc.DBAPIError as exc:
            self.engine.dispose()
            raise unreachable(url, exc) from None
        except migrations.NoStoreHere as found:
            self.engine.dispose()
            raise NotAStore(url, found.tables) from None
        except migrations.SchemaBehind as behind:
            self.engine.dispose()
            raise StoreBehind(url, behind.version, behind.newest, behind.missing) from None
        except migrations.SchemaAhead as ahead:
            self.engine.dispose()
            raise StoreAhead(url, ahead.unknown, ahead.newest) from None
        self.writer = BatchWriter(self.engine, batch_size=batch_size, flush_ms=flush_ms)
        #: the server's bookkeeping in flight for calls already answered: what :meth:`flush` waits for first
        self.handovers = Handovers()
        self.writer.after_insert(schema.calls, RollupUpdater(self.engine.dialect))
        self.spend_batch = SpendBatch(self.writer.run, wall)
        self.writer.after_transaction(self.spend_batch.transaction_ended)
        self.writer.after_fork(self.spend_batch.forked)
        self.writer.after_fork(self.handovers.forked)
        self._closed = False

    def record_spend(self, scope: str, period: str, cost: float) -> None:
        """Add ``cost`` to the ledger's spend for ``scope``/``period`` with the next batch
        (off the request path; see ``spend.py``)."""
        self.spend_batch.add(scope, period, cost)

    def record_spend_many(self, counters: Sequence[str], cost: float) -> None:
        """:meth:`record_spend` for one call's ``"<scope>|<period>"`` counters at once."""
        self.spend_batch.add_many(counters, cost)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ping(self) -> None:
        """Raise if the database cannot be reached (``/ready``, ``cloverleaf doctor``)."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every record handed over so far is committed, and first for the records of
        calls whose clients already have their answers while their bookkeeping still runs
        (:mod:`.handovers`): a reader that flushes counts every call answered before it."""
        if not self.handovers.in_flight:
            return self.writer.flush(timeout)
        started = time.monotonic()
        self.handovers.wait(timeout)
        return self.writer.flush(None if timeout is None else max(0.0, timeout - (time.monotonic() - started)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"


def open_store(url: str, *, batch_size: int = 100, flush_ms: int = 200,
               wall: Callable[[], float] = time.time, existing: bool = False) -> Store:
    """The store at ``url``; a database that cannot be reached is a :class:`ConfigError` naming
    it (password hidden) and what to check. ``existing=True`` is for commands that only read
    (``traces``, ``spend``, ``doctor``): a SQLite file that is not there is reported, not created
    empty at what may be a mistyped path, and a store at an older schema is refused
    (:class:`StoreBehind`), not upgraded under a server of the older version that may be using it.
    A store a newer cloverleaf upgraded is refused (:class:`StoreAhead`) either way."""
    if existing:
        path = sqlite_path(url)
        if path is not None and not path.exists():
            raise ConfigError(f"no store at {path}; nothing has been recorded there yet (calls through the gateway "
                              "or `cloverleaf serve` create it): check [store] url or CLOVERLEAF_STORE_URL")
        tables = _sqlite_tables(path) if path is not None else None
        if tables is not None and "schema_version" not in tables:
            # looked at read-only: opening it as a store would switch it to WAL mode before any check
            raise NotAStore(url, sorted(tables))
    return Store(url, batch_size=batch_size, flush_ms=flush_ms, wall=wall, existing=existing)


class NotAStore(ConfigError):
    """A database a read-only command was pointed at that holds no cloverleaf store: another
    application's (``tables`` lists some of them) or an empty one (nothing recorded yet).
    Nothing was written to it: migrating it would have put cloverleaf's tables into it."""

    def __init__(self, url: str, tables: list[str]) -> None:
        self.tables = tables
        where = redact_url(url)
        if tables:
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
            message = (f"{where} is not a cloverleaf store (it holds other tables: {shown}; no schema_version); "
                       "it was left untouched: check [store] url or CLOVERLEAF_STORE_URL")
        else:
            message = (f"no store at {where} yet: the database is empty, nothing has been recorded there (calls "
                       "through the gateway or `cloverleaf serve` create it): check [store] url or CLOVERLEAF_STORE_URL")
        super().__init__(message)


class StoreBehind(ConfigError):
    """A store a read-only command was pointed at whose schema is older than this code's. Read-only
    commands never migrate: one run beside a live server of the older version would change the
    schema under it (0004's rollup backfill ran once, and that server's later calls were never
    folded in). ``cloverleaf serve`` of this version upgrades it, under a lock, once."""

    def __init__(self, url: str, version: int, newest: int, missing: list[int]) -> None:
        self.version, self.newest, self.missing = version, newest, missing
        gaps = "" if missing == list(range(version + 1, newest + 1)) else \
            f" (migrations {', '.join(map(str, missing))} are not applied)"
        super().__init__(f"the store at {redact_url(url)} is at schema {version}; this cloverleaf needs {newest}{gaps}: "
                         "start `cloverleaf serve` of this version (which upgrades it) after stopping servers of the "
                         "older version; read-only commands (doctor, traces, spend) never upgrade a store")


class StoreAhead(ConfigError):
    """A store upgraded by a newer cloverleaf (it records migrations this code does not have):
    this code would read and write tables whose shape it does not know, so it refuses it."""

    def __init__(self, url: str, unknown: list[int], newest: int) -> None:
        self.unknown, self.newest = unknown, newest
        super().__init__(f"the store at {redact_url(url)} was upgraded by a newer cloverleaf (migration {max(unknown)}; "
                         f"this one knows migrations up to {newest}): run that version or newer")


def _sqlite_tables(path: Path) -> set[str] | None:
    """The tables of a SQLite file, read without writing a byte; None when it cannot be read so
    (the store's own check, inside its migration transaction, then decides)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def unreachable(url: str, exc: BaseException) -> ConfigError:
    """A database that cannot be reached, said with its URL (no password) and what to check."""
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return ConfigError(f"cannot reach the store at {redact_url(url)} ({cause[0] if cause else type(exc).__name__}); "
                       "check that the database is running and [store] url (or CLOVERLEAF_STORE_URL) is right")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` store (None for in-memory SQLite and other databases)."""
    if not url.startswith("sqlite") or url in ("sqlite://", "sqlite:///:memory:") or "///" not in url:
        return None
    return Path(url.split("///", 1)[1]).expanduser()


#: What a store URL may be, for the errors that refuse one.
STORE_URL_FORMS = ("sqlite:///relative/path.db or sqlite:////absolute/path.db (a file), sqlite:// (in memory, "
                   "this process only) or postgresql://user:password@host:5432/dbname")
#: The most of a refused URL an error quotes.
_SHOWN_CHARS = 200


def redact_url(url: str) -> str:
    """The URL without its password (for reprs and errors): the one of ``user:password@``, and
    any credential-named query parameter's (libpq takes ``?password=``, which was shown whole by
    ``doctor``, every store error and the server's start-up line). One SQLAlchemy cannot parse
    (``memory``, ``sqlite:/x.db``) is shown as given, but for what stands between the scheme's
    user name and the last ``@``: it was ``<unparseable store url>``, which named nothing to fix."""
    from sqlalchemy.engine import make_url

    from ..._secret_urls import masked_query

    shown: str | None = None
    if url.partition("://")[2].count("@") <= 1:   # a password with an '@': SQLAlchemy cuts it at the first
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - shown by hand, without what could be a password
            shown = None
    # split by hand: urlunsplit turned sqlite:////abs/path into sqlite://abs/path
    parsed = shown is not None
    head, mark, query = (shown if shown is not None else _without_password(url)).partition("?")
    shown = head + mark + masked_query(query, "***")
    if parsed or len(shown) <= _SHOWN_CHARS:
        return shown
    return f"{shown[:_SHOWN_CHARS]}... ({len(shown)} characters)"   # not a URL: quote enough to recognise it


def _without_password(url: str) -> str:
    """``url`` with any ``user:password@`` password as ``***`` (everything from the first ``:``
    of the user part to the last ``@``: a password may hold an ``@`` or a ``/``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        user, at, host = rest.rpartition("@")
        name, colon, _ = user.partition(":")
        rest = f"{name}:***{at}{host}" if colon else rest
    return f"{scheme}{sep}{rest}"


def refused_url(url: str) -> ConfigError:
    """The error for a store URL that is neither SQLite nor PostgreSQL, or a SQLite one in a
    form that names no file: what was given (no password) and every form that is taken."""
    hint = " ('memory' is a [state] or [cache] url; an in-memory store is sqlite://)" if url.strip() == "memory" else ""
    return ConfigError(f"[store] url (or CLOVERLEAF_STORE_URL) {redact_url(url)!r} is not a store URL{hint}: "
                       f"use {STORE_URL_FORMS}")


def create_engine(url: str):  # type: ignore[no-untyped-def]
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("the gateway store needs SQLAlchemy: pip install 'cloverleaf[gateway]'") from None
    from sqlalchemy import event
    from sqlalchemy.pool import StaticPool

    from ..sqlite_wal import enable_wal, limit_wal

    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ImportError("a PostgreSQL store needs psycopg: pip install 'cloverleaf[postgres]'") from None
        from .postgres import postgres_engine

        return postgres_engine(url)   # bounded waits: see postgres.py
    if not url.startswith("sqlite") or not _parses(url):
        raise refused_url(url)
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if memory:
        engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = sqlite_path(url)
        if path is not None:
            _create_private(path)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        if not memory:
            enable_wal(cur)
            limit_wal(cur)
            # NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
            # only an OS crash or power loss may roll back the last commits.
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def _parses(url: str) -> bool:
    """Whether SQLAlchemy takes ``url`` (``sqlite:/x.db``, one slash, was its ArgumentError traceback)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(url)
    except Exception:  # noqa: BLE001 - any refusal is the same ConfigError
        return False
    return True


def _create_private(db: Path) -> None:
    """A new SQLite store readable by its owner alone (0600, in a 0700 folder when the folder is
    new): it holds prompts, answers and spend. SQLite gives its -wal and -shm files the database
    file's permissions. Existing files and folders keep theirs. A path that cannot be made (a
    file where a folder belongs, a folder this user may not write, a read-only disk) is a
    ConfigError saying which and what to do: it was a NotADirectoryError traceback."""
    try:
        if not db.parent.exists():
            os.makedirs(db.parent, mode=0o700, exist_ok=True)
        if not db.exists():
            try:
                os.close(os.open(db, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:   # another process made it meanwhile
                pass
    except OSError as exc:
        raise ConfigError(uncreatable(db) or _cannot_create(db, f"{exc.strerror or type(exc).__name__}: "
                                                                f"{exc.filename or db}")) from None


def uncreatable(db: Path) -> str | None:
    """Why a SQLite store that does not exist yet could not be created at ``db`` by this user
    (``cloverleaf doctor`` asks before ``serve`` would fail), in the words ``serve`` refuses it
    with; None when it can be. Judged first from the nearest folder on its path that exists,
    then tried for real as ``serve`` does it (the missing folders, a file beside where the store
    goes), and everything the trial made removed again: from permissions alone,
    ``/proc/nope/x.db`` (a folder nobody can make, whatever its mode says) looked creatable to
    root, and the doctor said "none yet" to a path ``serve`` refused."""
    ancestor = db.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return _cannot_create(db, f"{ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return _cannot_create(db, f"this user may not create files in {ancestor}")
    return _trial_creation(db, ancestor)


def _trial_creation(db: Path, ancestor: Path) -> str | None:
    """Make the folders from ``ancestor`` (which exists) down to ``db``'s, and a file of a name
    of its own in the last (never the store's own name: a server starting meanwhile keeps its
    file), then remove them; why that failed, or None."""
    import tempfile

    made: list[Path] = []
    try:
        for folder in reversed(db.parents[:len(db.parents) - len(ancestor.parents) - 1]):
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:   # made meanwhile: not ours to remove
                continue
            made.append(folder)
        try:
            handle, probe = tempfile.mkstemp(prefix=".cloverleaf-doctor-", dir=db.parent)
        except OSError as exc:
            exc.filename = str(db)   # the file serve would create, as serve's error names it
            raise
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return _cannot_create(db, f"{exc.strerror or type(exc).__name__}: {exc.filename or db}")
    finally:
        for folder in reversed(made):
            try:
                os.rmdir(folder)
            except OSError:   # something else put a file there meanwhile: left as it is
                pass
    return None


def _cannot_create(db: Path, why: str) -> str:
    return (f"cannot create the store at {db}: {why}; set [store] url (or CLOVERLEAF_STORE_URL) to "
            "sqlite:///PATH in a folder this user can write, or fix that folder")


__all__ = ["Store", "StoreUnavailable", "NotAStore", "StoreBehind", "StoreAhead", "open_store", "uncreatable", "CallRecord", "AttemptRecord", "TraceRecord", "SpendRow",
           "VirtualKeyRow", "ModelEntryRow", "redact_url"]
