"""Every error cloverleaf raises survives pickling: multiprocessing, ProcessPoolExecutor and
celery send a worker's exception back to its caller pickled. Errors whose ``__init__`` takes
more than the message could not be loaded (``TypeError``: the caller got a BrokenProcessPool),
and CircuitOpen came back with its message wrapped twice. The classes are enumerated, so a new
one is covered the day it is added (one with a new signature needs a sample below)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import cloverleaf
import cloverleaf._errors as errors
import cloverleaf.gateway.store  # defines NotAStore
import cloverleaf.gateway.store.outage  # defines StoreUnavailable
from cloverleaf._errors import Attempt, CloverleafError, ProviderError, TransportError

CAUSE = errors.ServerError("upstream failed", provider="openai", model="gpt-4o", status=500, code="server_error")

#: Classes whose __init__ takes more than a message, with arguments that fill every attribute.
SAMPLES: dict[type[BaseException], Callable[[], BaseException]] = {
    errors.WorkflowError: lambda: errors.WorkflowError("flow.yaml", ["steps.a: unknown tool", "inputs.x: required"]),
    errors.WorkflowFailed: lambda: errors.WorkflowFailed("step b failed", run_id="run-1", step="b", cause=CAUSE),
    errors.AttachmentError: lambda: errors.AttachmentError("too large", rule="too-large", detail="21 MB > 20 MB"),
    errors.UnsupportedCapability: lambda: errors.UnsupportedCapability("anthropic", "embeddings", ["openai"],
                                                                       hint="use openai"),
    errors.BudgetExceeded: lambda: errors.BudgetExceeded("project:p", 10.0, 9.5, 1.0, reserved=0.25),
    errors.PrivacyViolation: lambda: errors.PrivacyViolation("local-only", "[privacy] default",
                                                             [("openai/gpt-4o", "a public provider")],
                                                             route="smart", where="chat"),
    errors.RateLimitExceeded: lambda: errors.RateLimitExceeded("key k_1", "rpm", 1.5),
    errors.CircuitOpen: lambda: errors.CircuitOpen("openai/gpt-4o", 12.0),
    errors.AllTargetsFailed: lambda: errors.AllTargetsFailed("smart", [Attempt("openai/gpt-4o", CAUSE, 12.0, 500),
                                                                       Attempt("dead", None, 3.0)]),
    errors.StreamInterrupted: lambda: errors.StreamInterrupted(
        "stream broke", cause=errors.RemoteProtocolError("dropped", url="http://127.0.0.1:9/v1")),
    errors.StructuredOutputError: lambda: errors.StructuredOutputError("not JSON", response={"text": "{oops"}),
    cloverleaf.gateway.store.NotAStore: lambda: cloverleaf.gateway.store.NotAStore("sqlite:////tmp/other.db",
                                                                                    ["users", "orders"]),
}

#: More than one shape of the same class.
VARIANTS: list[Callable[[], BaseException]] = [
    lambda: errors.BudgetExceeded("route:r", 5.0, 0.0, unpriced=("openai/new-model",)),
    lambda: errors.RateLimitExceeded("key k_1", "tpm", requested=50_000, limit=10_000, hint=" (estimated)"),
    lambda: errors.CircuitOpen("openai/gpt-4o"),
]


def _classes() -> list[type[BaseException]]:
    """Every exception class cloverleaf exports, defines in _errors, or derives from its base."""
    found: set[type[BaseException]] = set()
    for name in cloverleaf.__all__:
        value = getattr(cloverleaf, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            found.add(value)
    found.update(v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException))

    def below(cls: type[BaseException]) -> Iterator[type[BaseException]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    found.update(below(CloverleafError))
    return sorted((c for c in found if c.__module__.startswith("cloverleaf")), key=lambda c: c.__qualname__)


def _sample(cls: type[BaseException]) -> BaseException:
    if cls in SAMPLES:
        return SAMPLES[cls]()
    if issubclass(cls, ProviderError):
        return cls("the model is busy", provider="openai", model="gpt-4o", status=503, body='{"error": "busy"}',
                   code="overloaded", request_id="req_1", retry_after=2.0, should_retry=True)
    if issubclass(cls, TransportError):
        return cls("could not connect", url="http://127.0.0.1:9/v1")
    try:
        return cls("something went wrong")
    except TypeError as exc:  # pragma: no cover - a new signature: add it to SAMPLES
        pytest.fail(f"{cls.__qualname__} takes more than a message; add a sample to SAMPLES ({exc})")


def _plain(value: Any) -> Any:
    """A value with its errors and dataclasses spelled out, so two copies compare equal."""
    if isinstance(value, BaseException):
        return (type(value), str(value), _plain(vars(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(_plain(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def test_the_enumeration_finds_the_errors_that_could_not_be_unpickled() -> None:
    names = {c.__name__ for c in _classes()}
    assert {"AllTargetsFailed", "UnsupportedCapability", "BudgetExceeded", "RateLimitExceeded", "PrivacyViolation",
            "WorkflowError", "WorkflowFailed", "CircuitOpen", "NotAStore", "ProviderError", "ReadTimeout"} <= names


@pytest.mark.parametrize("make", [*(pytest.param(lambda c=c: _sample(c), id=c.__qualname__) for c in _classes()),
                                  *(pytest.param(v, id=f"variant{i}") for i, v in enumerate(VARIANTS))])
def test_every_error_round_trips_through_pickle_with_its_type_message_and_attributes(
        make: Callable[[], BaseException]) -> None:
    error = make()
    error.add_note("raised in a worker")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert _plain(vars(copy)) == _plain(vars(error))


def test_an_error_keeps_what_the_caller_reads_after_pickling() -> None:
    failed = pickle.loads(pickle.dumps(SAMPLES[errors.AllTargetsFailed]()))
    assert isinstance(failed, errors.AllTargetsFailed) and failed.route == "smart"
    assert failed.last_error is None and failed.attempts[0].status == 500
    assert isinstance(failed.attempts[0].error, errors.ServerError) and failed.attempts[0].error.model == "gpt-4o"
    limited = pickle.loads(pickle.dumps(VARIANTS[1]()))
    assert limited.never_fits and limited.retryable is False  # set on the instance, kept
    assert pickle.loads(pickle.dumps(errors.RateLimitExceeded("k", "rpm", 1.0))).retryable is True
