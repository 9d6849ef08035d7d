"""Micro-batching: requests that arrive while the model is busy run together in one call.

A single forward pass over 32 texts costs far less than 32 passes over one text, so a service
that encodes each request on its own wastes most of its CPU under load. `MicroBatcher` queues
what concurrent requests submit and hands it to `process` in batches: the first request runs
at once; the ones that arrive while it runs form the next batch. Throughput therefore grows with
concurrency without adding latency when the service is idle.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Runs `process(items) -> results` (one result per item, in order) on queued items.

    Args:
        process: the batched function; it runs in `executor`, never on the event loop.
        executor: where `process` runs. Share one single-thread executor between batchers so
            forward passes never compete for the CPU.
        max_batch: most units (see `size`) per call.
        size: units an item counts for (e.g. the objects of one `/encode` request); an item
            larger than `max_batch` runs alone.
        max_wait_s: under load (the previous batch held more than one item), how long a
            batch that is not full waits for more items before it runs; 0: only what queued
            while the previous batch ran. Without the wait, concurrent clients settle into two
            alternating half batches (one runs while the other's clients send their next
            request). A lone request on an idle service never waits.
    """

    def __init__(
        self,
        process: Callable[[list[Item]], list[Result]],
        executor: Executor,
        max_batch: int = 64,
        size: Callable[[Item], int] = lambda item: 1,
        max_wait_s: float = 0.0,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if not max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be at least 0, got {max_wait_s}")
        self.process = process
        self.executor = executor
        self.max_batch = max_batch
        self.size = size
        self.max_wait_s = max_wait_s
        self.calls = 0  # batches processed: what the batching saves is requests - calls
        self._last_batch = 0  # items of the previous batch: more than one means load
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait for its result (or the exception `process` raised for it).

        Args:
            item: one request's input.
        """
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run batches until the queue is empty."""
        while self._queue:
            if (
                self.max_wait_s > 0
                and self._last_batch > 1
                and self._queued_units() < self.max_batch
            ):
                await asyncio.sleep(self.max_wait_s)
            batch = self._take_batch()
            self._last_batch = len(batch)
            await self._run(batch)

    def _queued_units(self) -> int:
        return sum(self.size(item) for item, _ in self._queue)

    def _take_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """Items from the front of the queue up to `max_batch` units (at least one item)."""
        batch = [self._queue.popleft()]
        units = self.size(batch[0][0])
        while self._queue and units + self.size(self._queue[0][0]) <= self.max_batch:
            item = self._queue.popleft()
            units += self.size(item[0])
            batch.append(item)
        return batch

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Process `batch`; when it fails, each item again on its own so one bad request
        gets its own error and the others their results."""
        loop = asyncio.get_running_loop()
        items = [item for item, _ in batch]
        self.calls += 1
        try:
            results = await loop.run_in_executor(self.executor, self.process, items)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exception=exc)
                return
            for single in batch:
                await self._run([single])
            return
        if len(results) != len(batch):
            error = RuntimeError(f"process returned {len(results)} results for {len(batch)} items")
            for _, future in batch:
                _settle(future, exception=error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future, result: object = None, exception: BaseException | None = None):
    """Resolve `future` unless its request already went away (client disconnected)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
