"""The offline fake provider, mounted on the transport like an httpx mount."""

from __future__ import annotations

from typing import Any

#: The fake provider's origin: requests to it are answered in-process by a FakeUpstream that
#: the engine mounts on its transport (``Transport.mount``), never sent to the network.
FAKE_ORIGIN = "http://fake.cloverleaf.invalid"


def new_upstream() -> Any:
    """A fresh in-process upstream (the mount's factory: httpx is imported only when used)."""
    from .adapter import FakeUpstream

    return FakeUpstream()
