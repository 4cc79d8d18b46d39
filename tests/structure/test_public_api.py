"""``cloverleaf/__init__.py`` is the only public face, and every name on it works.

The first test runs in a fresh interpreter, as a user's script would: it touches every name in
``__all__`` and every lazy attribute, then calls every module-level function one after another on
the fake provider. This is the test that would have caught ``cloverleaf.stream`` turning into the
module ``cloverleaf/stream.py`` after the first call (a submodule import binds its name on the
package, shadowing a function of the same name).
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path

import cloverleaf

SCRIPT = r'''
import asyncio, json, sys, types
import cloverleaf

report = {"names": [], "lazy": [], "calls": []}
for name in cloverleaf.__all__:
    value = getattr(cloverleaf, name)
    if isinstance(value, types.ModuleType):
        sys.exit(f"cloverleaf.{name} is a module")
    report["names"].append(name)
for name in cloverleaf._LAZY:
    report["lazy"].append((name, getattr(cloverleaf, name).__name__))

def check_functions(when):
    for name in ("chat", "stream", "embed", "generate_image", "achat", "astream", "aembed", "agenerate_image",
                 "get_provider", "default_client"):
        if not callable(getattr(cloverleaf, name)) or isinstance(getattr(cloverleaf, name), types.ModuleType):
            sys.exit(f"after {when}: cloverleaf.{name} is {getattr(cloverleaf, name)!r}")

def sync_calls():
    check_functions("import")
    report["calls"].append(cloverleaf.chat("fake/echo", "one").content)
    check_functions("chat")
    report["calls"].append("".join(cloverleaf.stream("fake/echo", "two").text_stream))
    check_functions("stream")
    report["calls"].append(len(cloverleaf.embed("fake/embed", ["three", "four"]).vectors))
    check_functions("embed")
    report["calls"].append(len(cloverleaf.generate_image("fake/image", "five").images))
    check_functions("generate_image")

async def async_calls():
    report["calls"].append((await cloverleaf.achat("fake/echo", "six")).content)
    report["calls"].append("".join([t async for t in cloverleaf.astream("fake/echo", "seven").text_stream()]))
    report["calls"].append(len((await cloverleaf.aembed("fake/embed", ["eight"])).vectors))
    report["calls"].append(len((await cloverleaf.agenerate_image("fake/image", "nine")).images))
    check_functions("the async calls")

sync_calls()
asyncio.run(async_calls())
sync_calls()  # once more: nothing the first round imported may shadow a function
with cloverleaf.get_provider("fake", model="echo") as provider:
    report["calls"].append(provider.chat("ten").content)
print(json.dumps(report))
'''


def test_every_public_name_and_function_works_in_a_fresh_interpreter(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOVERLEAF_")}
    src = str(Path(cloverleaf.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["names"] == list(cloverleaf.__all__)
    assert {name for name, _ in report["lazy"]} == set(cloverleaf._LAZY)
    assert all(name == value for name, value in report["lazy"])
    assert report["calls"] == ["one", "two", 2, 1, "six", "seven", 1, 1, "one", "two", 2, 1, "ten"]


def test_no_public_name_shadows_a_builtin() -> None:
    """``from cloverleaf import *`` must not replace a builtin (``TimeoutError`` was one)."""
    assert not set(cloverleaf.__all__) & set(dir(builtins))
    # the old name still works for ``except cloverleaf.TimeoutError``
    assert cloverleaf.TimeoutError is cloverleaf.RequestTimeout
    assert issubclass(cloverleaf.ReadTimeout, cloverleaf.TimeoutError)


def test_internal_modules_are_private() -> None:
    """Every module under ``cloverleaf/`` that is not a package of its own starts with ``_``
    (openai-python's manner), so no submodule can collide with a public function."""
    root = Path(cloverleaf.__file__).parent
    public = sorted(p.name for p in root.glob("*.py") if not p.name.startswith("_"))
    assert public == [], f"public modules at the top level: {public}"
    colliding = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in cloverleaf.__all__)
    assert colliding == []


def test_transport_errors_are_classes_with_retryable_on_the_class() -> None:
    expected = {cloverleaf.ConnectError: True, cloverleaf.ConnectTimeout: True, cloverleaf.ReadTimeout: True,
                cloverleaf.RemoteProtocolError: True, cloverleaf.InvalidURL: False,
                cloverleaf.LocalProtocolError: False, cloverleaf.TLSError: False}
    for cls, retryable in expected.items():
        assert issubclass(cls, cloverleaf.TransportError)
        assert cls.retryable is retryable, cls
        assert "retryable" not in cls("x").__dict__  # never set per instance
