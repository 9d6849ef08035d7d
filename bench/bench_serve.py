"""`quaterion serve` under load: /search requests per second and p50/p99 latency at 1, 8 and 32
concurrent clients, against the same process's batched `encode` throughput on the same texts.

The service (uvicorn on 127.0.0.1, a random port) runs in this process on the demo's MiniLM
servable and store; the clients run in a child process (keep-alive connections on asyncio), so
they do not share this process's interpreter lock. Queries are the texts stored in the store.
The baseline is `model.encode(texts, batch_size=32)` timed in this process (32 clients can at
most form batches of 32) just before and just after each level, so a shared machine's load
affects both sides alike; each level's ratio is against the mean of the two. That baseline orders
all the texts by length before it cuts them into batches, which no service can do with the
requests of the moment; the service instead orders each micro-batch and encodes it in passes of
`--encode-batch-size`; under load a batch that is not full waits up to `--max-wait-ms` for
more requests, so 32 clients form whole batches of 32. CPU seconds (this process per request,
and the baseline's per text) are reported beside the rates: on a loaded machine they vary less
than wall-clock rates. Every loop is bounded (`--requests` per level). Prints one JSON line.

    quaterion demo   # writes runs/demo/servable and runs/demo/qdrant
    python bench/bench_serve.py [--servable runs/demo/servable] [--store runs/demo/qdrant]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time

CONCURRENCY = (1, 8, 32)


def clients(port: int, texts: list[str], concurrency: int, requests: int, out) -> None:
    """Child process: `requests` /search calls from `concurrency` concurrent keep-alive
    connections. A minimal HTTP/1.1 client on asyncio streams: a full-featured client costs
    more CPU per request than the service and would be what gets measured on a small machine."""

    async def client(queue: list[int], latencies: list[float]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body = json.dumps({"query": texts[queue.pop() % len(texts)], "limit": 10}).encode()
            started = time.perf_counter()
            writer.write(
                b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            if head[0].split()[1] != "200":
                raise RuntimeError(f"/search answered {head[0]}")
            length = next(
                int(h.split(":")[1]) for h in head if h.lower().startswith("content-length")
            )
            json.loads(await reader.readexactly(length))
            latencies.append(time.perf_counter() - started)
        writer.close()

    async def run() -> tuple[float, list[float]]:
        queue, latencies = list(range(requests)), []
        started = time.perf_counter()
        await asyncio.gather(*(client(queue, latencies) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies

    out.send(asyncio.run(run()))


def measure(port: int, texts: list[str], concurrency: int, requests: int) -> tuple[float, list]:
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("spawn").Process(
        target=clients, args=(port, texts, concurrency, requests, send)
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
    parser.add_argument(
        "--max-wait-ms", type=float, default=10.0, help="the service's gather window under load"
    )
    parser.add_argument(
        "--encode-batch-size", type=int, default=8, help="the service's passes (see SearchService)"
    )
    args = parser.parse_args()

    import torch

    from quaterion.serving.http import SearchService, create_app
    from quaterion.serving.http.background import serve_in_background

    service = SearchService.open(
        args.servable, args.store, encode_batch_size=args.encode_batch_size
    )
    _, _, payloads = service.store.points(args.texts)
    texts = [payload["text"] for payload in payloads]
    service.model.encode(texts[:32], batch_size=32)  # burn-in

    def encode_per_s() -> tuple[float, float]:
        """(texts per second, CPU seconds per text) of the batched baseline."""
        started, cpu = time.perf_counter(), time.process_time()
        service.model.encode(texts, batch_size=32)
        return (
            len(texts) / (time.perf_counter() - started),
            (time.process_time() - cpu) / len(texts),
        )

    app = create_app(service, max_wait_s=args.max_wait_ms / 1000)
    searcher = app.state.batchers["search"]
    levels = {}
    with serve_in_background(app) as port:
        measure(port, texts, 8, 32)  # burn-in of the HTTP path
        for concurrency in CONCURRENCY:
            before = encode_per_s()
            calls, cpu = searcher.calls, time.process_time()
            seconds, latencies = measure(port, texts, concurrency, args.requests)
            cpu = (time.process_time() - cpu) / len(latencies)
            after = encode_per_s()
            encode = (before[0] + after[0]) / 2
            levels[concurrency] = {
                "encode_texts_per_s": round(encode, 1),
                "encode_cpu_ms_per_text": round(500 * (before[1] + after[1]), 2),
                "server_cpu_ms_per_request": round(1000 * cpu, 2),
                "requests_per_s": round(len(latencies) / seconds, 1),
                "ratio": round(len(latencies) / seconds / encode, 3),
                "p50_ms": round(1000 * statistics.median(latencies), 1),
                "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
                "mean_batch": round(len(latencies) / (searcher.calls - calls), 1),
            }
    service.close()
    print(
        json.dumps(
            {
                "bench": "serve",
                "servable": args.servable,
                "texts": len(texts),
                "requests_per_level": args.requests,
                "encode_batch_size": args.encode_batch_size,
                "max_wait_ms": args.max_wait_ms,
                "torch_threads": torch.get_num_threads(),
                "search": levels,
                "ratio_at_32": levels[32]["ratio"],
            }
        )
    )


if __name__ == "__main__":
    main()
