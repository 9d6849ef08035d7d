"""The HTTP API of `quaterion serve` on a real servable and store: answers, limits, errors,
the API key, the page, and batching of concurrent requests over real HTTP."""

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from quaterion.serving.http import Limits, SearchService, create_app
from quaterion.serving.http.service import StoredPoint
from tests.quaterion.serving.conftest import same_group

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def service(servable, store):
    service = SearchService.open(str(servable), str(store))
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(service):
    limits = Limits(max_body_bytes=4096, max_objects=8, max_text_chars=200, max_limit=20)
    app = create_app(service, limits)
    with TestClient(app) as client:
        yield client


def test_health_reports_model_store_size_and_points(client, servable, store):
    assert client.get("/health").json() == {
        "status": "ok",
        "model": str(servable),
        "store": str(store),
        "embedding_size": 32,
        "points": 24,
        "baseline": True,
    }


def test_encode_returns_what_the_servable_returns(client, service):
    texts = ["a cat", "a hammer", "a very long sentence about soup and bread"]
    response = client.post("/encode", json={"objects": texts})
    assert response.status_code == 200
    embeddings = np.array(response.json()["embeddings"], dtype=np.float32)
    expected = service.model.encode(texts)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_search_returns_the_stores_neighbours_with_group_and_object(client, service, groups):
    body = {"query": "a kitten playing", "limit": 5, "baseline": True}
    response = client.post("/search", json=body)
    assert response.status_code == 200
    answer = response.json()
    query = service.model.encode(["a kitten playing"])
    expected = service.store.search(query, k=5)
    assert [hit["id"] for hit in answer["hits"]] == expected.ids[0].tolist()
    assert [hit["score"] for hit in answer["hits"]] == pytest.approx(expected.scores[0].tolist())
    texts = {text: group for group, members in groups.items() for text in members}
    for hit in answer["hits"]:
        assert hit["kind"] == "text" and same_group(hit["group"], texts[hit["object"]])
    assert len(answer["baseline"]) == 5  # the frozen encoder's neighbours, beside
    assert same_group(answer["baseline"][0]["group"], "animal")  # MiniLM knows kittens


def test_baseline_hits_are_the_frozen_encoders_neighbours(client, service):
    body = {"query": "something to eat", "limit": 3, "baseline": True}
    answer = client.post("/search", json=body).json()
    frozen = service.baseline.encode(["something to eat"])
    expected = service.baseline_store.search(frozen, k=3)
    assert [hit["id"] for hit in answer["baseline"]] == expected.ids[0].tolist()


def test_a_stored_point_as_the_query_searches_with_its_stored_vectors(client, service):
    ids, vectors, payloads = service.store.points()
    frozen_ids, frozen_vectors, _ = service.baseline_store.points()
    point = int(ids[5])
    body = {"id": point, "limit": 4, "baseline": True}
    answer = client.post("/search", json=body).json()
    shown = {"id": point, "ref": str(point), "group": payloads[5]["label"], **_shown(payloads[5])}
    assert answer["query"] == shown
    by_ref = client.post("/search", json={**body, "id": str(point)}).json()  # as the page does
    assert by_ref == answer
    expected = service.store.search(vectors[5:6], k=4)
    assert [hit["id"] for hit in answer["hits"]] == expected.ids[0].tolist()
    assert answer["hits"][0]["id"] == point and answer["hits"][0]["score"] == pytest.approx(1)
    row = frozen_ids.tolist().index(point)  # the baseline holds the same point, same id
    frozen = service.baseline_store.search(frozen_vectors[row : row + 1], k=4)
    assert [hit["id"] for hit in answer["baseline"]] == frozen.ids[0].tolist()
    # mixed in one batch with texts and a missing point: each gets its own answer
    mixed = [("soup", 2, False), (StoredPoint(point), 2, False), (StoredPoint(99999), 2, True)]
    with pytest.raises(LookupError, match="no stored point has id 99999"):
        service.search_batch(mixed)
    answers = service.search_batch(mixed[:2])
    assert answers[1]["hits"][0]["id"] == point and "query" not in answers[0]


def _shown(payload):
    return {"object": payload["text"], "kind": "text"}


def test_baseline_hits_only_when_asked_and_mixed_batches_answer_each_as_asked(client, service):
    assert "baseline" not in client.post("/search", json={"query": "soup", "limit": 2}).json()
    texts = ["soup", "a hammer", "a dog", "bread", "pliers", "a cow"]
    answers = service.search_batch([(text, 3, i % 2 == 0) for i, text in enumerate(texts)])
    frozen = service.baseline_store.search(service.baseline.encode(texts), k=3)
    trained = service.store.search(service.model.encode(texts), k=3)
    for i, answer in enumerate(answers):
        assert [hit["id"] for hit in answer["hits"]] == trained.ids[i].tolist()
        if i % 2 == 0:
            assert [hit["id"] for hit in answer["baseline"]] == frozen.ids[i].tolist()
        else:
            assert "baseline" not in answer


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": 3}, 422, "'query' must be a string, got a number"),
        ({"query": ["a"]}, 422, "'query' must be a string, got an array"),
        ({"query": "   "}, 422, "'query' is empty"),
        ({"query": "x" * 201}, 413, "'query' has 201 characters; the limit is 200"),
        ({}, 422, "send either 'query' (a text) or 'id' (a stored point), not both"),
        ({"query": "a", "id": 3}, 422, "send either 'query' (a text) or 'id' (a stored point)"),
        ({"id": "3a"}, 422, "'id' must be a stored point's id (an integer, or its decimal"),
        ({"id": -1}, 422, "'id' must be a stored point's id"),
        ({"id": 12345}, 404, "no stored point has id 12345; pick the id of a hit"),
        (
            {"query": "a", "k": 3},
            422,
            "unknown field 'k'; valid fields: query, id, limit, baseline",
        ),
        ({"query": "a", "baseline": 1}, 422, "'baseline' must be true or false, got a number"),
        ({"query": "a", "limit": 21}, 422, "'limit' must be between 1 and 20, got 21"),
        ({"query": "a", "limit": 0}, 422, "'limit' must be between 1 and 20, got 0"),
        ({"query": "a", "limit": "5"}, 422, "'limit' must be an integer, got a string"),
        ({"query": "a", "limit": True}, 422, "'limit' must be an integer, got a boolean"),
        (["a"], 422, "request body must be a JSON object, got an array"),
    ],
)
def test_bad_search_bodies_get_a_json_error_naming_the_problem(client, body, status, message):
    response = client.post("/search", json=body)
    assert response.status_code == status
    assert response.json() == {"error": message} or message in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"objects": "a cat"}, 422, "'objects' must be an array of strings, got a string"),
        ({"objects": []}, 422, "'objects' is empty"),
        ({"objects": ["a", 2]}, 422, "objects[1] must be a string, got a number"),
        ({"objects": ["a", ""]}, 422, "objects[1] is empty"),
        ({"objects": ["a"] * 9}, 413, "'objects' has 9 items; the limit is 8 per request"),
    ],
)
def test_bad_encode_bodies_get_a_json_error_naming_the_problem(client, body, status, message):
    response = client.post("/encode", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_non_utf8_invalid_json_and_oversized_bodies_are_refused(client):
    headers = {"Content-Type": "application/json"}
    response = client.post("/search", content=b'{"query": "caf\xe9"}', headers=headers)
    assert response.status_code == 400
    assert "not valid UTF-8 (byte 0xe9 at position 14)" in response.json()["error"]
    response = client.post("/search", content=b'{"query": ', headers=headers)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = client.post("/search", content=b"", headers=headers)
    assert response.status_code == 400 and "body is empty" in response.json()["error"]
    big = json.dumps({"query": "a" * 5000}).encode()
    response = client.post("/search", content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == f"request body has {len(big)} bytes; the limit is 4096"


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/nothing").json() == {"error": "Not Found"}
    assert client.get("/search").status_code == 405


def test_page_is_served_with_everything_it_loads_from_this_service(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<form id="search-form"' in page.text
    for path in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert path.startswith("/static/"), path  # nothing fetched from outside
        assert client.get(path).status_code == 200
    script = client.get("/static/app.js").text
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in script


def test_inspect_gives_a_map_point_per_stored_object_and_the_confusions(client, groups):
    inspection = client.get("/inspect").json()
    assert inspection["total"] == 24 and len(inspection["points"]) == 24
    assert len({point["group"] for point in inspection["points"]}) == len(groups)
    assert inspection["confused"] == len(inspection["confusions"])
    assert isinstance(inspection["baseline_confused"], int)
    scores = [row["score"] for row in inspection["confusions"]]
    assert scores == sorted(scores, reverse=True)
    for row in inspection["confusions"]:
        assert row["group"] != row["neighbour"]["group"]


def test_api_key_is_required_on_api_routes_when_set(service):
    app = create_app(service, api_key="s3cret")
    with TestClient(app) as client:
        refused = client.post("/search", json={"query": "a cat"})
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        wrong = client.post("/search", json={"query": "a"}, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        assert client.get("/inspect").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert client.post("/search", json={"query": "a cat"}, headers=auth).status_code == 200
        assert client.post("/encode", json={"objects": ["a"]}, headers={"X-API-Key": "s3cret"})
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200


def tree_state(path):
    """(relative path, size, mtime, sha256) of every file under `path`."""
    return sorted(
        (
            os.path.relpath(os.path.join(root, name), path),
            os.stat(os.path.join(root, name)).st_size,
            os.stat(os.path.join(root, name)).st_mtime_ns,
            hashlib.sha256(open(os.path.join(root, name), "rb").read()).hexdigest(),
        )
        for root, _, names in os.walk(path)
        for name in names
    )


def test_serving_never_writes_to_the_store(servable, store):
    before = tree_state(store)
    service = SearchService.open(str(servable), str(store))
    with TestClient(create_app(service)) as client:
        assert client.post("/search", json={"query": "a dog"}).status_code == 200
        assert client.get("/inspect").status_code == 200
    assert tree_state(store) == before


def test_opening_a_directory_that_is_no_store_names_the_fix(servable, tmp_path):
    with pytest.raises(FileNotFoundError, match="create one with `quaterion index"):
        SearchService.open(str(servable), str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_concurrent_http_requests_share_forward_passes(service, groups):
    """Over real HTTP (uvicorn on 127.0.0.1, random port): 32 concurrent /search requests
    take fewer forward passes than requests, and each gets its own right answer."""
    pytest.importorskip("uvicorn")
    import httpx

    from quaterion.serving.http.background import serve_in_background

    app = create_app(service)
    queries = [text for members in groups.values() for text in members] + ["a dog", "a saw"] * 4
    searcher = app.state.batchers["search"]
    calls_before = searcher.calls
    with (
        serve_in_background(app) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):

        def ask(query):
            return http.post("/search", json={"query": query, "limit": 1}).json()

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(ask, queries))
    for query, answer in zip(queries[:24], answers[:24], strict=True):
        assert answer["hits"][0]["object"] == query  # each answer is its own query's
    assert searcher.calls - calls_before < len(queries)
