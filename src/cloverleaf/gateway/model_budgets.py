"""Budgets keyed on a model id: which calls may reach the model, by whatever name they use.

``[budgets."openai/gpt-4o"]`` caps that model, and a client can name it many ways: the id
itself, ``openai:gpt-4o``, a registry entry whose ``provider/identifier`` it is, or a route
with it among its targets. Looked up by the name the client sent, the budget applied to one
spelling only and the others went round it. So a model-id budget's key is resolved to the
model it means (``provider/model`` after the registry: :func:`model_of`), and a call reserves
against it whenever its route's targets include that model — whichever target then answers,
since any of them may: a budget never overspent.

Settled, though, it is charged only what its model answered: the call's cost when the attempt
the provider bills (the answer, or the last attempt of a call it may bill anyway) went to the
model, and 0 when another target of the route answered — the first target failed over, or
the budgeted model was a fallback never tried — which releases its reservation
(:func:`charges`). It once took the whole call's cost whichever target answered, and a model
that served nothing ran out of budget for the others' answers.

Per call this is a lookup: :class:`Budgets` works a route's scopes out once per resolved
target list (a new list when the registry changes) and keeps them. The call records of such a
budget (what its ledger row starts from, :meth:`ModelBudgets.covers`) are those whose target —
the one the call was charged to — reaches the model: its own spellings, the targets of the
configured routes that mean it, and every target this process has seen reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

#: a model id → the model it means ("provider/model"), or None when it names none
Canonical = Callable[[str], "str | None"]


def model_of(target: Any, fallback: str) -> str:
    """The ``provider/model`` a resolved target (the Engine's Target) reaches."""
    spec, model = getattr(target, "spec", None), getattr(target, "model", None)
    name = getattr(spec, "name", None)
    return f"{name}/{model}" if name and model else fallback


def engine_canonical(engine: Any) -> Canonical:
    """:data:`Canonical` through ``engine``'s resolver (cached there per registry version); an
    id it cannot resolve (an unknown provider) means no model, and the budget keeps its name."""
    def canonical(model_id: str) -> str | None:
        try:
            return model_of(engine.resolve(model_id, max_retries=0), "") or None
        except Exception:  # noqa: BLE001 - not a model id: the budget applies by its name only
            return None

    return canonical


def reader_canonical(engine: Any) -> Canonical:
    """:data:`Canonical` for one reading of the call log (``/admin/spend`` and ``/admin/traces``
    by model, the dashboard, ``cloverleaf spend``/``traces``): each name resolved once per
    reading, through the engine's resolver and aside from its cache of targets: the request
    path relies on that cache, and a store with thousands of logged names filled it past its
    bound, which empties it, so the request path resolved its own targets again."""
    from .._resolve import CallSettings

    resolver = getattr(engine, "resolver", None)
    memo: dict[str, str | None] = {}

    def resolve(model_id: str) -> Any:
        return (engine.resolve(model_id, max_retries=0) if resolver is None
                else resolver.resolve(model_id, CallSettings(max_retries=0)))

    def canonical(model_id: str) -> str | None:
        if model_id not in memo:
            try:
                memo[model_id] = model_of(resolve(model_id), "") or None
            except Exception:  # noqa: BLE001 - not a model id: it keeps its own name
                memo[model_id] = None
        return memo[model_id]

    return canonical


class ModelBudgets:
    """The model-id budgets among a gateway's route budgets (those not named after a route)."""

    def __init__(self, scopes: Mapping[str, Any], routes: Mapping[str, Any], canonical: Canonical) -> None:
        self._scopes = dict(scopes)       # budget name → BudgetScope
        self._routes = routes             # configured routes (name → RouteConfig)
        self._canonical = canonical
        #: scope key → the model it means, as last worked out (:meth:`applying`)
        self._model: dict[str, str] = {}
        #: scope key → the target keys whose calls it covers in the call records
        self._covers: dict[str, set[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._scopes)

    def applying(self, route_name: str, targets: Sequence[Any]) -> list[Any]:
        """The model-id budgets a call on ``route_name`` reserves against: those whose model is
        among ``targets`` (the route's resolved targets). Worked out once per target list."""
        by_model: dict[str, Any] = {}
        for name, scope in self._scopes.items():
            model = self._canonical(name)
            if model is not None:
                by_model[model] = scope
                self._model[scope.key] = model
        found = []
        for t in targets:
            scope = by_model.get(model_of(getattr(t, "target", None), ""))
            if scope is not None:
                self._names(scope).add(getattr(t, "key", "") or route_name)
                if scope not in found:
                    found.append(scope)
        return found

    def models(self, scopes: Sequence[Any]) -> tuple[str | None, ...]:
        """The model each of a call's ``scopes`` is a budget of (None: not a model-id budget),
        or () when none is: settled as every budget is (:func:`charges`)."""
        models = tuple([self._model.get(s.key) for s in scopes]) if self._model else ()
        return models if any(m is not None for m in models) else ()

    def covers(self, scope_key: str) -> tuple[str, ...]:
        """The target keys whose calls count against ``scope_key`` in the call records (empty:
        not a model-id budget; its calls are those requested by its own name)."""
        names = self._covers.get(scope_key)
        if names is None:
            scope = self._scopes.get(scope_key.partition(":")[2])
            if scope is None or scope.key != scope_key or self._canonical(scope_key.partition(":")[2]) is None:
                return ()
            names = self._names(scope)
        return tuple(sorted(names))

    def label(self, scope_key: str) -> str:
        """How a person reads ``scope_key``: ``model:openai/gpt-4o`` for a model-id budget,
        which caps the model by every name that reaches it (not the route of that name), else
        the key itself. Its counter and ledger row keep the ``route:`` key they have always had
        (renamed, a running budget's history would be left under the old one): only what the
        dashboard's Spend page and a 402 show says what the budget is."""
        name = scope_key.partition(":")[2]
        scope = self._scopes.get(name)
        if scope is None or scope.key != scope_key or self._canonical(name) is None:
            return scope_key
        return f"model:{name}"

    def _names(self, scope: Any) -> set[str]:
        names = self._covers.get(scope.key)
        if names is None:
            name = scope.key.partition(":")[2]
            names = self._covers[scope.key] = {name}
            model = self._canonical(name)
            if model is not None:
                provider, _, rest = model.partition("/")
                names |= {model, f"{provider}:{rest}"}
                for route in self._routes.values():   # the configured targets that reach it
                    names.update(t.key for t in getattr(route, "targets", ()) if self._canonical(t.model) == model)
        return names


def charges(models: Sequence[str | None], answered: str | None, cost: float) -> list[float] | None:
    """What each of a call's budgets (``models``: :meth:`ModelBudgets.models`) is charged when
    the attempt it is billed for went to the model ``answered``: ``cost``, except a model-id
    budget of another model, charged 0. None when every budget is charged ``cost`` (the
    answering model is not known — then every budget is, as the conservative figure)."""
    if not models or answered is None:
        return None
    out = [cost if m is None or m == answered else 0.0 for m in models]
    return out if any(c != cost for c in out) else None


def model_named(target: str, canonical: Canonical) -> str:
    """The model a call's target counts under in spend by model: the model it means, or the
    target itself when it means none ("-", no target, stays as it is)."""
    return target if target == "-" else canonical(target) or target


def targets_meaning(model: str, targets: Iterable[str], canonical: Canonical) -> list[str]:
    """The names among ``targets`` (the calls' targets, ``store.call_targets()``) whose calls a
    spend-by-model row of ``model`` counts (:func:`model_named`), with ``model`` itself. Where
    ``/admin/spend?by=model`` showed one ``fake/echo`` row for calls answered as ``fake/echo``,
    ``fake:echo`` and a registry entry, ``/admin/traces?model=fake/echo`` listed only the
    first: the operator could not list the calls of the row. ``model`` may be any of its names."""
    wanted = model_named(model, canonical)
    return sorted({model, *(t for t in targets if model_named(t, canonical) == wanted)})


def spend_by_model(rows: Sequence[Any], canonical: Canonical) -> list[Any]:
    """Spend rows grouped by target (``store.spend("model")``), regrouped by the model each
    target means: ``mock:good-1``, the entry ``m-good`` and ``mock/good-1`` are one model, as
    its budget counts them. A target that resolves to no model keeps its own row."""
    from .store.records import SpendRow

    merged: dict[str, Any] = {}
    for row in rows:
        model = model_named(row.group, canonical)
        found = merged.get(model)
        merged[model] = SpendRow(model, row.calls, row.input_tokens, row.output_tokens, row.cost,
                                 row.unknown_cost) if found is None else SpendRow(
            model, found.calls + row.calls, found.input_tokens + row.input_tokens,
            found.output_tokens + row.output_tokens, found.cost + row.cost, found.unknown_cost + row.unknown_cost)
    return sorted(merged.values(), key=lambda r: -r.cost)


def spend_report(store: Any, by: str, canonical: Canonical, *, since: float | None = None,
                 until: float | None = None) -> list[Any]:
    """``store.spend(by)`` as ``/admin/spend`` and ``cloverleaf spend`` both answer it: by model,
    each model once, whatever names its calls used (:func:`spend_by_model`), as its budget counts
    them. One function for both, so the CLI's rows add up to the same figures as the server's."""
    rows = store.spend(by, since=since, until=until)
    return spend_by_model(rows, canonical) if by == "model" else rows
