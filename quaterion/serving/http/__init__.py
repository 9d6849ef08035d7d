"""`quaterion serve`: a servable and its store behind HTTP, with a page to inspect them.

Depends on `quaterion_models` and the stores only, never on training code. FastAPI and uvicorn
come with the extra `quaterion[serve]` and are imported when an app is built.
"""

from quaterion.serving.http.app import ApiError, Limits, create_app
from quaterion.serving.http.background import serve_in_background
from quaterion.serving.http.batcher import MicroBatcher
from quaterion.serving.http.service import Inspection, SearchService, inspect_points

__all__ = [
    "ApiError",
    "Inspection",
    "Limits",
    "MicroBatcher",
    "SearchService",
    "create_app",
    "inspect_points",
    "serve_in_background",
]
