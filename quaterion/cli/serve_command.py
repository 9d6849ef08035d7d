"""`quaterion serve`: a servable and its store behind HTTP (extra `quaterion[serve]`)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion serve`."""
    from quaterion.serving.http import Limits
    from quaterion.serving.locations import DEFAULT_COLLECTION

    parser.add_argument("servable", help="directory written by `quaterion fit` / save_servable")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="directory of the store `quaterion index` wrote")
    where.add_argument("--url", help="URL of a Qdrant server, e.g. http://localhost:6333")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="server collection")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require the API key held by environment variable NAME on every API request",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=Limits.max_batch,
        help=f"most objects per forward pass across requests (default {Limits.max_batch})",
    )
    parser.add_argument(
        "--encode-batch-size",
        type=int,
        default=8,
        help="objects per forward pass within a batch; texts are ordered by length first, so "
        "small passes pad little (default 8)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        help="under load, how long a batch that is not full waits for more requests "
        "(default 10; 0: never)",
    )
    parser.add_argument(
        "--inspect-limit",
        type=int,
        default=5000,
        help="most stored points the page's map and confusions read (default 5000)",
    )


def _api_key(name: str | None) -> str | None:
    if name is None:
        return None
    key = os.environ.get(name, "")
    if not key:
        raise ValueError(f"--api-key-env {name}: the environment variable {name} is unset or empty")
    return key


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_serve(args: argparse.Namespace) -> int:
    """Load the servable, open the store read-only and serve until interrupted."""
    from quaterion.serving.http import Limits, SearchService, create_app
    from quaterion_models.encoders.extras.optional_import import import_optional

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}")
    if min(args.max_batch, args.inspect_limit, args.encode_batch_size) < 1:
        raise ValueError("--max-batch, --inspect-limit and --encode-batch-size must be at least 1")
    if not args.max_wait_ms >= 0:
        raise ValueError(f"--max-wait-ms must be at least 0, got {args.max_wait_ms}")
    key = _api_key(args.api_key_env)
    uvicorn = import_optional("uvicorn", "serve", "quaterion serve")
    if not _is_loopback(args.host) and key is None:
        print(
            f"warning: serving on {args.host} without an API key; anyone who can reach it can "
            "query the model (use --api-key-env NAME)",
            file=sys.stderr,
        )
    service = SearchService.open(
        args.servable,
        args.url or args.store,
        args.collection,
        args.inspect_limit,
        args.encode_batch_size,
    )
    try:
        limits = Limits(max_batch=args.max_batch)
        app = create_app(service, limits, api_key=key, max_wait_s=args.max_wait_ms / 1000)
        print(f"Serving {args.servable} on http://{args.host}:{args.port}/ (Ctrl+C stops)")
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        service.close()
    return 0
