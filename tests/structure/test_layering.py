"""The layering of ``src/cloverleaf``, enforced (DESIGN.md, "Import rules").

Read from the source by :mod:`.imports`, so a lazy import inside a function and an import under
``TYPE_CHECKING`` count like any other. The layers, bottom up:

- the SDK core: ``cloverleaf/_*.py``, ``streams/``, ``providers/``, ``transport/``,
  ``attachments/``;
- ``gateway/``: routing, fallback, limits, budgets, traces, store;
- ``server/``: the HTTP API;
- applications on top, which may import any layer: ``cli/`` (``cloverleaf serve`` starts the
  server), ``workflows/`` (runs steps through the gateway; it never imports the server).

The one documented hook from the SDK up: ``Client.gateway`` (``cloverleaf/_client.py``) builds
the gateway on first use, with a function-level import, so ``import cloverleaf`` never loads it.
"""

from __future__ import annotations

import ast

from .imports import cycles, edges, modules

#: (importer, imported): the documented lazy hooks from the SDK to the layers above it.
HOOKS = frozenset({("cloverleaf._client", "cloverleaf.gateway")})


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is(module: str, *packages: str) -> bool:
    return any(module == f"cloverleaf.{p}" or module.startswith(f"cloverleaf.{p}.") for p in packages)


def _violations(rule: str, importer_in: tuple[str, ...], forbidden: tuple[str, ...],
                allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    found = []
    for importer, targets in edges().items():
        if not _is(importer, *importer_in):
            continue
        for target, line in targets.items():
            if _is(target, *forbidden) and (importer, target) not in allowed:
                found.append(f"{rule}: {importer} imports {target} (line {line})")
    return found


def test_adapters_and_stream_decoders_never_import_the_transport() -> None:
    assert _violations("adapters do no I/O", ("providers", "streams"), ("transport",)) == []


def test_the_transport_never_imports_providers_or_anything_above_it() -> None:
    above = ("providers", "gateway", "server", "cli", "workflows", "_engine", "_client", "_provider")
    assert _violations("the transport knows no provider", ("transport",), above) == []


def test_the_sdk_never_imports_the_gateway_or_the_server_but_through_the_one_hook() -> None:
    sdk = tuple(sorted({_layer(m) for m in modules()} - {"gateway", "server", "cli", "workflows", ""}))
    assert _violations("the SDK stands alone", sdk, ("gateway", "server"), HOOKS) == []


def test_the_hook_is_lazy() -> None:
    """The allowed SDK -> gateway import sits inside a function, never at module level."""
    for importer, target in HOOKS:
        tree = ast.parse(modules()[importer].read_text(encoding="utf-8"))
        top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = {alias.name for node in top_level for alias in node.names}
        modules_named = {node.module for node in top_level if isinstance(node, ast.ImportFrom)}
        short = target.rsplit(".", 1)[-1]
        assert short not in names and short not in modules_named, f"{importer} imports {target} at module level"
        assert target in edges()[importer], f"the hook {importer} -> {target} is gone: update HOOKS and this docstring"


def test_the_gateway_never_imports_the_server() -> None:
    assert _violations("the gateway stands without the server", ("gateway",), ("server",)) == []


def test_workflows_never_import_the_server() -> None:
    assert _violations("workflows run on the gateway", ("workflows",), ("server",)) == []


def test_no_import_cycles_anywhere_in_src() -> None:
    assert cycles() == []


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    """The reader itself: both kinds of import the rules depend on are found."""
    assert "cloverleaf.gateway" in edges()["cloverleaf._client"]  # inside a property
    assert "cloverleaf.transport.h1.pool" in edges()["cloverleaf.transport.auto"]  # inside a function


def test_inside_a_vendor_package_imports_go_one_way_away_from_the_adapter() -> None:
    """adapter -> stream decoder -> shared parse helpers: nothing in a vendor package but the
    package's own ``__init__`` (a lazy factory) imports the package's adapter module."""
    from cloverleaf.providers.registry import KINDS

    adapters = {target.partition(":")[0] for target in KINDS.values()}
    found = []
    for importer, targets in edges().items():
        for target in targets:
            vendor = target.rpartition(".")[0]
            if (target in adapters and importer not in adapters and importer != vendor
                    and importer.startswith(vendor + ".")):
                found.append(f"{importer} imports its adapter {target}")
    assert found == []
