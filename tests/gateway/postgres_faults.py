"""A PostgreSQL that goes away, for outage tests, without touching the shared test server.

:class:`FaultProxy` is a TCP forwarder on 127.0.0.1 in front of the test PostgreSQL; a store
given its URL sees the real server until the test says otherwise:

- :meth:`FaultProxy.down`: connections are refused and the open ones dropped (a stopped server);
- :meth:`FaultProxy.freeze`: every connection stays open and new ones are accepted, but nothing
  passes either way (a server stopped with SIGSTOP, or a network partition: TCP still accepts,
  nothing ever answers);
- :meth:`FaultProxy.restore`: traffic flows again (what was held back goes on, as after SIGCONT).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from .stores import fresh_postgres_database


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:   # closed: down() or close()
                return
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                self._flowing.wait()      # frozen: held here, as a stopped process's kernel holds it
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        self._flowing.clear()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):   # wakes the thread in accept(), which close() alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self._drop_connections()

    def restore(self) -> None:
        if self._listener is None:
            self._listen()
        self._flowing.set()

    def close(self) -> None:
        self.down()
        self._flowing.set()

    def _drop_connections(self) -> None:
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for s in doomed:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@contextlib.contextmanager
def proxied_postgres(password: str | None = None) -> Iterator[tuple[str, FaultProxy]]:
    """A fresh database on the test PostgreSQL, reached through a :class:`FaultProxy`; yields
    the URL through the proxy (with ``password`` in it when given: the test server trusts
    loopback, so any password is accepted, and a test can look for it where it must not be)."""
    with fresh_postgres_database() as direct:
        url = make_url(direct)
        proxy = FaultProxy(url.host or "127.0.0.1", url.port or 5432)
        try:
            through = url.set(host="127.0.0.1", port=proxy.port)
            if password is not None:
                through = through.set(password=password)
            yield through.render_as_string(hide_password=False), proxy
        finally:
            proxy.close()
