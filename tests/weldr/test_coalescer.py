"""Concurrent compose listings share one service call, but never hide a change made before the request."""

from __future__ import annotations

import asyncio

from osbuildd.api.weldr.compose import ListCoalescer


class SlowService:
    """A compose service whose list() takes a while (as ComposeService.list does with many composes)."""

    def __init__(self) -> None:
        self.calls = 0
        self.items = ["a"]

    async def list(self) -> list[str]:
        self.calls += 1
        snapshot = list(self.items)
        await asyncio.sleep(0.05)
        return snapshot


async def test_concurrent_lists_share_one_call() -> None:
    svc, lists = SlowService(), ListCoalescer()
    results = await asyncio.gather(*(lists.list(svc) for _ in range(20)))
    assert svc.calls == 1 and all(r == ["a"] for r in results)


async def test_a_change_starts_a_fresh_list() -> None:
    svc, lists = SlowService(), ListCoalescer()
    first = asyncio.create_task(lists.list(svc))
    await asyncio.sleep(0.01)  # the first listing has read its snapshot
    svc.items.append("b")
    lists.changed()  # what the compose POST does once the compose is stored
    second = await lists.list(svc)
    assert second == ["a", "b"] and await first == ["a"] and svc.calls == 2


async def test_failure_reaches_every_joined_caller() -> None:
    class Broken(SlowService):
        async def list(self) -> list[str]:
            self.calls += 1
            await asyncio.sleep(0.02)
            raise RuntimeError("db gone")

    svc, lists = Broken(), ListCoalescer()
    results = await asyncio.gather(*(lists.list(svc) for _ in range(5)), return_exceptions=True)
    assert svc.calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    # and the next call tries again
    assert isinstance((await asyncio.gather(lists.list(svc), return_exceptions=True))[0], RuntimeError)
    assert svc.calls == 2
