"""The HTTP API and page of `quaterion serve` (FastAPI; extra `quaterion[serve]`).

    GET  /          the page (static HTML + JS from `static/`, nothing fetched from outside)
    GET  /health    model, store, embedding size, number of points
    POST /encode    {"objects": ["text", ...]}           -> {"embeddings": [[...], ...]}
    POST /search    {"query": "text", "limit": 10, "baseline": true}
                    or {"id": 123, ...}: a stored point's vectors as the query
                                                         -> {"hits": [...], "baseline": [...]}
    GET  /inspect   the page's PCA map and confusions

Bodies are parsed here rather than by FastAPI's models so that every bad request (too large, not
UTF-8, not JSON, a wrong type, an empty query) gets a 4xx `{"error": "..."}` naming the problem.
The model runs on one thread behind two micro-batchers (`batcher.py`).
"""

import asyncio
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quaterion.serving.http.batcher import MicroBatcher
from quaterion.serving.http.service import SearchService, StoredPoint
from quaterion_models.encoders.extras.optional_import import import_optional

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Args:
        max_body_bytes: largest request body.
        max_objects: objects of one /encode request.
        max_text_chars: characters of one object or query.
        max_limit: hits of one /search.
        max_batch: objects per forward pass, across requests.
    """

    max_body_bytes: int = 1 << 20  # request body
    max_objects: int = 256  # objects of one /encode request
    max_text_chars: int = 10_000  # characters of one object or query
    max_limit: int = 100  # hits of one /search
    max_batch: int = 64  # objects per forward pass, across requests


class ApiError(Exception):
    """A request the service refuses: HTTP `status` and a message naming the problem.

    Args:
        status: the HTTP status code.
        message: what is wrong and how to fix it.
    """

    def __init__(self, status: int, message: str):  # noqa: D107
        super().__init__(message)
        self.status = status
        self.message = message


def _decode_json(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`, or an ApiError saying why it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            f"request body is not valid UTF-8 (byte {body[exc.start]:#04x} at position "
            f"{exc.start}); send JSON encoded as UTF-8",
        ) from exc
    if not text.strip():
        raise ApiError(400, "request body is empty; send a JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(422, f"request body must be a JSON object, got {_json_type(data)}")
    return data


def _json_type(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    names.update({list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def _fields(data: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """ApiError for a missing required field or an unknown one."""
    valid = required + optional
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}; valid fields: {', '.join(valid)}")
    for name in required:
        if name not in data:
            raise ApiError(422, f"missing field {name!r}")


def _text(value: Any, what: str, limits: Limits) -> str:
    """`value` as a non-empty string of at most `max_text_chars`, or an ApiError."""
    if not isinstance(value, str):
        raise ApiError(422, f"{what} must be a string, got {_json_type(value)}")
    if not value.strip():
        raise ApiError(422, f"{what} is empty; send some text")
    if len(value) > limits.max_text_chars:
        raise ApiError(
            413, f"{what} has {len(value)} characters; the limit is {limits.max_text_chars}"
        )
    return value


def parse_encode(data: dict[str, Any], limits: Limits) -> list[str]:
    """The objects of a `/encode` body.

    Args:
        data: the parsed request body.
        limits: the service's limits.
    """
    _fields(data, ("objects",), ())
    objects = data["objects"]
    if not isinstance(objects, list):
        raise ApiError(422, f"'objects' must be an array of strings, got {_json_type(objects)}")
    if not objects:
        raise ApiError(422, "'objects' is empty; send at least one text")
    if len(objects) > limits.max_objects:
        raise ApiError(
            413,
            f"'objects' has {len(objects)} items; the limit is {limits.max_objects} per request",
        )
    return [_text(obj, f"objects[{i}]", limits) for i, obj in enumerate(objects)]


def parse_search(data: dict[str, Any], limits: Limits) -> tuple[str | StoredPoint, int, bool]:
    """The (query, limit, baseline) of a `/search` body: the query is a text (`"query"`) or a
    stored point (`"id"`: search with its stored vectors); `baseline: true` asks for the frozen
    encoder's hits beside the trained model's (when the store has them).

    Args:
        data: the parsed request body.
        limits: the service's limits.
    """
    _fields(data, (), ("query", "id", "limit", "baseline"))
    if ("query" in data) == ("id" in data):
        raise ApiError(422, "send either 'query' (a text) or 'id' (a stored point), not both")
    if "id" in data:
        point_id = data["id"]
        if isinstance(point_id, str) and point_id.isascii() and point_id.isdigit():
            point_id = int(point_id)  # the page sends ids as strings: they exceed 2**53
        if isinstance(point_id, bool) or not isinstance(point_id, int) or point_id < 0:
            raise ApiError(
                422,
                f"'id' must be a stored point's id (an integer, or its decimal string), got "
                f"{_json_type(point_id)}",
            )
        query: str | StoredPoint = StoredPoint(point_id)
    else:
        query = _text(data["query"], "'query'", limits)
    limit = data.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ApiError(422, f"'limit' must be an integer, got {_json_type(limit)}")
    if not 1 <= limit <= limits.max_limit:
        raise ApiError(422, f"'limit' must be between 1 and {limits.max_limit}, got {limit}")
    baseline = data.get("baseline", False)
    if not isinstance(baseline, bool):
        raise ApiError(422, f"'baseline' must be true or false, got {_json_type(baseline)}")
    return query, limit, baseline


def create_app(
    service: SearchService,
    limits: Limits | None = None,
    api_key: str | None = None,
    max_wait_s: float = 0.01,
) -> Any:
    """The FastAPI application serving `service`; with `api_key`, every API route needs it
    (`Authorization: Bearer KEY` or `X-API-Key: KEY`); the page and `/health` stay open.

    Args:
        service: the loaded servable and store.
        limits: request limits (default: `Limits()`).
        api_key: a key every API request must carry, or None.
        max_wait_s: under load, how long a batch that is not full waits for more requests
            (see `MicroBatcher`); whole batches of length-ordered texts pad less.
    """
    fastapi = import_optional("fastapi", "serve", "quaterion serve")
    from fastapi import Request  # annotations below are evaluated: FastAPI reads them
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    limits = limits or Limits()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quaterion-model")
    encoder = MicroBatcher(
        service.encode_batch, executor, limits.max_batch, size=len, max_wait_s=max_wait_s
    )
    searcher = MicroBatcher(service.search_batch, executor, limits.max_batch, max_wait_s=max_wait_s)

    @asynccontextmanager
    async def lifespan(app: Any):
        yield
        executor.shutdown(wait=True)  # the service stays open: its owner closes it

    app = fastapi.FastAPI(title="quaterion serve", lifespan=lifespan)
    app.state.service = service
    app.state.batchers = {"encode": encoder, "search": searcher}

    @app.exception_handler(ApiError)
    async def api_error(request: Any, exc: ApiError) -> Any:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: HTTPException) -> Any:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    def authorize(request: Any) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else None
        given = given or request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key; send it as 'Authorization: Bearer KEY'")

    async def read_json(request: Any) -> dict[str, Any]:
        authorize(request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise ApiError(413, _too_large(int(declared), limits))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                raise ApiError(413, _too_large(len(body), limits))
        return _decode_json(bytes(body))

    async def run(batcher: MicroBatcher, item: Any) -> Any:
        try:
            return await batcher.submit(item)
        except (TypeError, ValueError) as exc:  # the encoder cannot take these objects
            raise ApiError(422, str(exc)) from exc
        except LookupError as exc:  # a stored point that is not there
            raise ApiError(404, exc.args[0] if exc.args else str(exc)) from exc

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health() -> Any:
        return service.health()

    @app.post("/encode")
    async def encode(request: Request) -> Any:
        objects = parse_encode(await read_json(request), limits)
        return _json({"embeddings": await run(encoder, objects)})

    @app.post("/search")
    async def search(request: Request) -> Any:
        query, limit, baseline = parse_search(await read_json(request), limits)
        return _json({"query": query, **await run(searcher, (query, limit, baseline))})

    @app.get("/inspect")
    async def inspect(request: Request) -> Any:
        authorize(request)
        loop = asyncio.get_running_loop()
        inspection = await loop.run_in_executor(executor, service.inspection)
        return _json(inspection.as_json())

    return app


def _json(content: Any) -> Any:
    """A JSON response of plain lists, dicts, strings and numbers, serialized once by `json`
    (FastAPI's default walks the content through its encoder first, a cost per request)."""
    from fastapi.responses import Response

    return Response(json.dumps(content, ensure_ascii=False), media_type="application/json")


def _too_large(size: int, limits: Limits) -> str:
    return f"request body has {size} bytes; the limit is {limits.max_body_bytes}"
