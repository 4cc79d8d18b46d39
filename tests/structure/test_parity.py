"""Sync and async twins stay twins (the rule is :mod:`cloverleaf._sync_async`): every public
method of one has its twin on the other, with the same parameters."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import cloverleaf
from cloverleaf._sync_async import twin_name

PAIRS = [(cloverleaf.Client, cloverleaf.AsyncClient), (cloverleaf.Stream, cloverleaf.AsyncStream)]
#: Dunders that are part of a class's public face (the rest are Python's machinery).
FACE_DUNDERS = {"__enter__", "__exit__", "__iter__", "__next__", "__aenter__", "__aexit__", "__aiter__",
                "__anext__"}


def _public(cls: type) -> dict[str, Any]:
    return {name: member for name, member in inspect.getmembers(cls)
            if (not name.startswith("_") or name in FACE_DUNDERS) and (callable(member) or isinstance(
                inspect.getattr_static(cls, name), property))}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(fn, property):
        return []
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


@pytest.mark.parametrize("sync_cls, async_cls", PAIRS, ids=lambda c: c.__name__)
def test_twin_classes_have_the_same_methods_and_signatures(sync_cls: type, async_cls: type) -> None:
    sync, asyn = _public(sync_cls), _public(async_cls)
    expected = {twin_name(name, prefixed=False): name for name in sync}
    assert set(expected) == set(asyn), (f"only on {sync_cls.__name__}: {sorted(set(expected) - set(asyn))}; "
                                        f"only on {async_cls.__name__}: {sorted(set(asyn) - set(expected))}")
    for async_name, sync_name in expected.items():
        assert _params(sync[sync_name]) == _params(asyn[async_name]), f"{sync_name} / {async_name}"
        if sync_name in ("close", "__exit__"):
            assert _is_async(asyn[async_name]), f"{async_cls.__name__}.{async_name} must be awaitable"


def test_provider_has_an_async_twin_for_every_call() -> None:
    provider = _public(cloverleaf.Provider)
    calls = {name for name, fn in provider.items()
             if not isinstance(fn, property) and not _is_async(fn) and not name.startswith("a")}
    calls -= {"astream"}
    assert calls >= {"chat", "stream", "embed", "generate_image", "close", "__enter__", "__exit__"}
    for name in calls:
        twin = twin_name(name, prefixed=True)
        assert twin in provider, f"Provider.{name} has no twin {twin}"
        assert _params(provider[name]) == _params(provider[twin]), f"{name} / {twin}"


def test_module_level_functions_have_async_twins() -> None:
    for name in ("chat", "stream", "embed", "generate_image"):
        sync, asyn = getattr(cloverleaf, name), getattr(cloverleaf, twin_name(name, prefixed=True))
        assert _params(sync) == _params(asyn), name


def test_a_provider_closes_what_it_opened() -> None:
    """``get_provider`` used to leave a connection pool open per call site; now it closes."""
    with cloverleaf.get_provider("fake", model="echo") as provider:
        assert provider.chat("hi").content == "hi"
        engine = provider._client.engine
    assert engine.transport._httpx._sync.peek() is None  # closed, nothing left open


async def test_an_async_provider_closes_what_it_opened() -> None:
    async with cloverleaf.get_provider("fake", model="echo") as provider:
        assert (await provider.achat("hi")).content == "hi"
        assert len((await provider.agenerate_image("a leaf", model="image")).images) == 1
        assert provider._aclient is not None
    assert provider._aclient is None


def test_a_client_passed_in_stays_open() -> None:
    client = cloverleaf.Client()
    provider = cloverleaf.Provider("fake", model="echo", client=client)
    provider.close()
    assert client.chat("fake/echo", "still open").content == "still open"
    client.close()
