"""All of one request's attachments at once, under the per-request caps.

A request may name many attachments; each is checked on its own by :mod:`.loader`, and
together they get three more bounds from the policy (see :mod:`.policy`): how many
(``max_per_request``), how many bytes in all (``max_request_bytes``, charged while downloads
arrive, so concurrent downloads cannot jointly overshoot), and how long in all
(``request_timeout``). Downloads run concurrently, so the request waits for the slowest one
rather than for the sum; the first refusal cancels the rest. Cancelling the caller (a client
that hung up) cancels every download in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .._errors import AttachmentError
from .._types import Attachment
from .fetch import ByteBudget
from .loader import SourceLike, aresolve
from .policy import AttachmentPolicy


def check_count(count: int, policy: AttachmentPolicy) -> None:
    if count > policy.max_per_request:
        raise AttachmentError(
            f"the request has {count} attachments, more than the {policy.max_per_request} allowed per request; "
            "send fewer ([attachments] max_per_request)", rule="too-many", detail=str(policy.max_per_request))


async def aresolve_all(atts: Sequence[SourceLike], policy: AttachmentPolicy) -> list[Attachment]:
    """Resolve ``atts`` concurrently within the request's caps; results in order."""
    check_count(len(atts), policy)
    budget = ByteBudget(policy.max_request_bytes)
    tasks = [asyncio.ensure_future(aresolve(att, policy=policy, budget=budget)) for att in atts]
    try:
        async with asyncio.timeout(policy.request_timeout):
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    except TimeoutError:
        raise AttachmentError(
            f"the request's attachments were not all loaded within {policy.request_timeout:g}s "
            "([attachments] request_timeout)", rule="request-timeout", detail=f"{policy.request_timeout:g}s") from None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def resolve_all(atts: Sequence[SourceLike], policy: AttachmentPolicy) -> list[Attachment]:
    """Blocking :func:`aresolve_all` (on a private event loop, in a worker thread when the
    calling thread already runs one), so sync callers get the same caps and concurrency."""
    if not atts:
        return []
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aresolve_all(atts, policy))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloverleaf-attachments") as pool:
        return pool.submit(asyncio.run, aresolve_all(atts, policy)).result()
