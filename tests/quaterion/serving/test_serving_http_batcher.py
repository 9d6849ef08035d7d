"""MicroBatcher: concurrent submissions share calls, in order, within max_batch, and one bad
item fails alone."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from quaterion.serving.http import MicroBatcher


class Recorder:
    """A batched function that records its batches; its first call waits for `release`."""

    def __init__(self):
        self.batches = []
        self.release = threading.Event()

    def __call__(self, items):
        if not self.batches:
            self.release.wait(timeout=10)
        self.batches.append(list(items))
        if any(item == "bad" for item in items):
            raise ValueError("cannot take 'bad'")
        return [f"<{item}>" for item in items]


def run_concurrently(batcher, recorder, items):
    async def main():
        tasks = [asyncio.create_task(batcher.submit(items[0]))]
        await asyncio.sleep(0.05)  # the first item's call has started and blocks
        tasks += [asyncio.create_task(batcher.submit(item)) for item in items[1:]]
        await asyncio.sleep(0.05)  # the rest queue while it runs
        recorder.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main())


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def test_requests_that_arrive_during_a_call_run_together_in_order(executor):
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_batch=64)
    items = [f"q{i}" for i in range(20)]
    results = run_concurrently(batcher, recorder, items)
    assert results == [f"<{item}>" for item in items]
    assert recorder.batches == [["q0"], items[1:]]  # 2 calls for 20 requests
    assert batcher.calls == 2


def test_batches_never_exceed_max_batch_units(executor):
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_batch=5, size=len)
    items = ["a", "bb", "ccc", "dd", "e", "ffffff", "g"]  # sizes 1 2 3 2 1 6 1
    results = run_concurrently(batcher, recorder, items)
    assert results == [f"<{item}>" for item in items]
    assert recorder.batches == [["a"], ["bb", "ccc"], ["dd", "e"], ["ffffff"], ["g"]]


def test_a_failing_item_gets_its_error_and_the_others_their_results(executor):
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_batch=64)
    results = run_concurrently(batcher, recorder, ["x", "y", "bad", "z"])
    assert results[:2] == ["<x>", "<y>"]
    assert isinstance(results[2], ValueError) and "cannot take 'bad'" in str(results[2])
    assert results[3] == "<z>"


def test_max_batch_must_be_positive(executor):
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        MicroBatcher(lambda items: items, executor, max_batch=0)


def test_under_load_a_batch_that_is_not_full_waits_for_more_but_a_lone_request_does_not(
    executor,
):
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(recorder, executor, max_batch=8, max_wait_s=0.5)

    async def main():
        started = time.perf_counter()
        await batcher.submit("alone")  # an idle service: no wait
        alone = time.perf_counter() - started
        await asyncio.gather(batcher.submit("a"), batcher.submit("b"))  # a batch of 2: load
        late = asyncio.create_task(batcher.submit("c"))
        await asyncio.sleep(0.1)  # within the window: joins c's batch
        await asyncio.gather(late, batcher.submit("d"))
        return alone

    assert asyncio.run(main()) < 0.4
    assert recorder.batches == [["alone"], ["a", "b"], ["c", "d"]]
    with pytest.raises(ValueError, match="max_wait_s must be at least 0"):
        MicroBatcher(recorder, executor, max_wait_s=-1)
