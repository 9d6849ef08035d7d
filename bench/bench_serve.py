"""`quaterion serve` under load: /search requests per second and p50/p99 latency at 1, 8 and 32
concurrent clients, against the same process's batched `encode` throughput on the same texts.

The service (uvicorn on 127.0.0.1, a random port) runs in this process on the demo's MiniLM
servable and store; the clients run in a child process (asyncio + httpx), so they do not share
this process's interpreter lock. Queries are the texts stored in the store. The baseline is
`model.encode(texts, batch_size=32)` timed in this process: 32 clients can at most form batches
of 32. Every loop is bounded (`--requests` per level). Prints one JSON line.

    quaterion demo   # writes runs/demo/servable and runs/demo/qdrant
    python bench/bench_serve.py [--servable runs/demo/servable] [--store runs/demo/qdrant]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import threading
import time

CONCURRENCY = (1, 8, 32)


def clients(url: str, texts: list[str], concurrency: int, requests: int, out) -> None:
    """Child process: `requests` /search calls from `concurrency` concurrent clients."""
    import httpx

    async def run() -> tuple[float, list[float]]:
        latencies: list[float] = []
        queue = list(range(requests))
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:

            async def client() -> None:
                while queue:
                    index = queue.pop()
                    started = time.perf_counter()
                    body = {"query": texts[index % len(texts)], "limit": 10}
                    response = await http.post("/search", json=body)
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return time.perf_counter() - started, latencies

    out.send(asyncio.run(run()))


def measure(url: str, texts: list[str], concurrency: int, requests: int) -> tuple[float, list]:
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("spawn").Process(
        target=clients, args=(url, texts, concurrency, requests, send)
    )
    child.start()
    result = receive.recv()
    child.join(timeout=60)
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servable", default="runs/demo/servable")
    parser.add_argument("--store", default="runs/demo/qdrant")
    parser.add_argument("--texts", type=int, default=256, help="distinct query texts")
    parser.add_argument("--requests", type=int, default=512, help="requests per level")
    args = parser.parse_args()

    import torch
    import uvicorn

    from quaterion.serving.http import SearchService, create_app

    service = SearchService.open(args.servable, args.store)
    _, _, payloads = service.store.points(args.texts)
    texts = [payload["text"] for payload in payloads]
    service.model.encode(texts[:32], batch_size=32)  # burn-in
    started = time.perf_counter()
    service.model.encode(texts, batch_size=32)
    encode_per_s = len(texts) / (time.perf_counter() - started)

    app = create_app(service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    searcher = app.state.batchers["search"]
    levels = {}
    try:
        measure(url, texts, 8, 32)  # burn-in of the HTTP path
        for concurrency in CONCURRENCY:
            calls = searcher.calls
            seconds, latencies = measure(url, texts, concurrency, args.requests)
            levels[concurrency] = {
                "requests_per_s": round(len(latencies) / seconds, 1),
                "p50_ms": round(1000 * statistics.median(latencies), 1),
                "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
                "mean_batch": round(len(latencies) / (searcher.calls - calls), 1),
            }
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        service.close()
    print(
        json.dumps(
            {
                "bench": "serve",
                "servable": args.servable,
                "texts": len(texts),
                "requests_per_level": args.requests,
                "torch_threads": torch.get_num_threads(),
                "encode_texts_per_s_batch32": round(encode_per_s, 1),
                "search": levels,
                "ratio_at_32": round(levels[32]["requests_per_s"] / encode_per_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
