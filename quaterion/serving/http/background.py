"""Run an app with uvicorn on a background thread: for notebooks, tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quaterion_models.encoders.extras.optional_import import import_optional


@contextmanager
def serve_in_background(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 60.0
) -> Iterator[int]:
    """Serve `app` on `host` from a daemon thread while the block runs; yields the bound port
    (`port=0`: a free one the system picks) and stops the server on exit.

    Args:
        app: an ASGI application, e.g. from `create_app`.
        host: the interface to bind.
        port: the port; 0 lets the system pick a free one.
        timeout_s: how long to wait for the server to start.
    """
    uvicorn = import_optional("uvicorn", "serve", "serve_in_background")
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True, name="quaterion-serve")
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port} within {timeout_s} s")
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
