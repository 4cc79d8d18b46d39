"""An image call split into several requests, when one of them fails.

Imagen makes at most four images a ``:predict`` call and Gemini's own image models one a
``generateContent`` call, so ``n`` images are several requests. Each one that succeeds is paid
for. When a later one failed, the whole call raised: the images already made were billed by the
provider, recorded nowhere and given to no one. Now the images that came back are returned, and
billed as any answer is (per image made, or by the usage of the requests that answered), with
:attr:`~cloverleaf.ImageResponse.incomplete` saying how many requests failed and why: never
charged without a record, never lost without a word. Only when no request succeeded does the
call raise (the first failure), as a single request's failure does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import CloverleafError
from ._http import HttpRequest, HttpResponse, is_success
from ._upstream_errors import upstream_error

#: What one request of a split call came to: its response (any status), or the error sending it raised.
Outcome = HttpResponse | CloverleafError


def send_pieces(send: Callable[[HttpRequest], HttpResponse], requests: list[HttpRequest]) -> list[Outcome]:
    """Each request sent in turn, until one fails (a failing upstream is not sent the rest)."""
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            outcome: Outcome = send(request)
        except CloverleafError as exc:
            if len(requests) == 1:
                raise
            outcome = exc
        outcomes.append(outcome)
        if not _succeeded(outcome):
            break
    return outcomes


async def asend_pieces(send: Callable[[HttpRequest], Awaitable[HttpResponse]],
                       requests: list[HttpRequest]) -> list[Outcome]:
    """Every request sent at once; a CloverleafError is kept as the outcome of its request."""
    if len(requests) == 1:
        return [await send(requests[0])]
    results = await asyncio.gather(*(send(r) for r in requests), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, CloverleafError):
            raise result   # cancelled, or a fault of ours: not an upstream's answer
    return [r for r in results if isinstance(r, HttpResponse | CloverleafError)]


def answered(target: Any, outcomes: list[Outcome]) -> tuple[list[HttpResponse], CloverleafError | None, int]:
    """(the successful responses, the first failure as the error it raises, how many failed).
    Raises that failure when nothing succeeded."""
    made = [o for o in outcomes if isinstance(o, HttpResponse) and is_success(o.status)]
    failures = [o if isinstance(o, CloverleafError) else upstream_error(target, o)
                for o in outcomes if not _succeeded(o)]
    if failures and not made:
        raise failures[0]
    return made, (failures[0] if failures else None), len(failures)


def incomplete_note(asked: int, made: int, pieces: int, sent: int, failed: int, failure: CloverleafError) -> str:
    """What :attr:`ImageResponse.incomplete` says: how much came back, and why not the rest."""
    unsent = f", {pieces - sent} not sent after it" if sent < pieces else ""
    return (f"{made} of {asked} images: this call was split into {pieces} requests and {failed} failed{unsent} "
            f"({type(failure).__name__}: {failure}); the images made are returned and billed")


def _succeeded(outcome: Outcome) -> bool:
    return isinstance(outcome, HttpResponse) and is_success(outcome.status)
