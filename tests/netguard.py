"""Tests never leave loopback: a process-wide audit hook over every socket the suite opens.

``sys.addaudithook`` sees each ``socket.connect``/``connect_ex``/``sendto`` and each real
``socket.getaddrinfo`` (resolvers that tests patch in do not raise the event, so they are not
judged). An address outside loopback is refused on the spot (``LeftLoopback``, an OSError, so
the code under test sees a failed connection instead of reaching the network) *and* recorded:
the session fails at the end when any were recorded, even if the code under test swallowed
the error. A test that means to try (the proof that the guard works) wraps the attempt in
:func:`expect_leaving`, which takes its records back.

Why a hook and not a patched ``socket``: the hook also sees sockets opened by C extensions'
Python callers and by code that imported ``socket.socket`` before the suite started
(botocore's instance-metadata fetcher, httpx, asyncio), and it cannot be un-patched by a test.

Child Python processes (``cloverleaf serve`` started by a test, the README's blocks) get the same
hook through ``tests/netguard_site/sitecustomize.py`` on ``PYTHONPATH``; they append what they
catch to the file named by ``CLOVERLEAF_NETGUARD_LOG``, which the session reads at the end.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: (event, address) of every attempt to leave loopback, in order.
violations: list[tuple[str, str]] = []
_lock = threading.Lock()
_expecting = threading.local()
_installed = False
_child = False
#: File where child processes record what they caught.
LOG_ENV = "CLOVERLEAF_NETGUARD_LOG"


class LeftLoopback(ConnectionRefusedError):
    """A test tried to reach an address outside loopback."""


def _is_loopback_host(host: Any) -> bool:
    if host is None or host == "":
        return True  # passive/wildcard lookups (bind), never a remote address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True
    name = host.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False  # a DNS name: resolving it asks a resolver off this machine
    if ip.is_unspecified:
        return True  # 0.0.0.0 / :: mean "this host" to connect() as well
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _address_host(address: Any) -> Any:
    if isinstance(address, tuple) and address:
        return address[0]
    return None  # AF_UNIX paths and other families never leave the machine


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        host = _address_host(address)
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if _is_loopback_host(host):
        return
    with _lock:
        violations.append((event, str(host)))
    log = os.environ.get(LOG_ENV) if _child else None
    if log:
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{event}\t{host}\t{os.getpid()}\n")
        except OSError:
            pass
    raise LeftLoopback(f"test suite tried to leave loopback: {event} to {host!r} (tests must use 127.0.0.1)")


def install(*, child: bool = False) -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    global _installed, _child
    _child = child
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def child_violations() -> list[tuple[str, str]]:
    """What child processes recorded in the log file."""
    log = os.environ.get(LOG_ENV)
    if not log or not os.path.exists(log):
        return []
    with open(log, encoding="utf-8") as f:
        return [(parts[0], parts[1]) for parts in (line.rstrip("\n").split("\t") for line in f) if len(parts) >= 2]


@contextmanager
def expect_leaving() -> Iterator[list[tuple[str, str]]]:
    """Run a deliberate attempt to leave loopback; yield what the hook caught (and forget it)."""
    with _lock:
        start = len(violations)
    caught: list[tuple[str, str]] = []
    try:
        yield caught
    finally:
        with _lock:
            caught.extend(violations[start:])
            del violations[start:]
