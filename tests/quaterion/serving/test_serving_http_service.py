"""What the service computes apart from HTTP: the page's map and confusions (against a loop
oracle), stored points read back, the frozen baseline, image payloads, `quaterion index`'s
baseline and `quaterion serve`'s argument checks."""

import base64
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from quaterion.cli import main
from quaterion.serving import QdrantClientStore, QdrantEdgeStore, index_embeddings
from quaterion.serving.baseline import encode_with_baseline, frozen_baseline
from quaterion.serving.http import inspect_points
from quaterion.serving.http.service import nearest_other
from quaterion.serving.locations import baseline_location, open_store
from quaterion.serving.payloads import object_payload


def clustered(n, dim, seed):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, dim, generator=generator) * 2
    labels = torch.randint(0, 4, (n,), generator=generator)
    return centres[labels] + torch.randn(n, dim, generator=generator), labels


def test_nearest_other_matches_a_pairwise_loop():
    vectors = F.normalize(clustered(37, 6, seed=0)[0], dim=1)
    rows, scores = nearest_other(vectors, chunk_size=5)
    for i in range(len(vectors)):
        others = [(float(vectors[i] @ vectors[j]), j) for j in range(len(vectors)) if j != i]
        best_score, best = max(others)
        assert int(rows[i]) == best
        assert float(scores[i]) == pytest.approx(best_score, abs=1e-6)


def test_confusions_are_the_points_whose_nearest_neighbour_is_in_another_group():
    vectors, labels = clustered(40, 5, seed=1)
    labels[::7] = (labels[::7] + 1) % 4  # some points carry another group's label
    ids = torch.arange(100, 140)
    payloads = [{"label": f"g{int(g)}", "text": f"t{i}"} for i, g in enumerate(labels)]
    inspection = inspect_points(ids, vectors, payloads, baseline=(ids, vectors, payloads))
    unit = F.normalize(vectors, dim=1)
    expected = []
    for i in range(40):
        score, j = max((float(unit[i] @ unit[j]), j) for j in range(40) if j != i)
        if labels[i] != labels[j]:
            expected.append((-score, 100 + i, 100 + j))
    expected.sort()
    assert inspection.confused == inspection.baseline_confused == len(expected) > 0
    assert [(row["id"], row["neighbour"]["id"]) for row in inspection.confusions] == [
        (i, j) for _, i, j in expected
    ]
    first = inspection.confusions[0]
    assert first["group"] != first["neighbour"]["group"]
    assert first["object"] == f"t{first['id'] - 100}" and first["kind"] == "text"
    assert inspection.total == 40 and len(inspection.points) == 40
    assert {point["group"] for point in inspection.points} == {f"g{g}" for g in range(4)}


def test_map_coordinates_are_the_pca_of_the_vectors():
    vectors, labels = clustered(30, 8, seed=2)
    payloads = [{"label": int(g)} for g in labels]
    inspection = inspect_points(torch.arange(30), vectors, payloads)
    xy = torch.tensor([[p["x"], p["y"]] for p in inspection.points], dtype=torch.float64)
    centred = vectors.double() - vectors.double().mean(0)
    # the 2-D map keeps the variance of the top two principal components
    top_two = torch.linalg.svdvals(centred)[:2].pow(2).sum()
    assert float(xy.pow(2).sum()) == pytest.approx(float(top_two), rel=1e-4)
    assert inspection.baseline_confused is None


def test_a_single_point_has_a_map_and_no_confusions():
    inspection = inspect_points(torch.tensor([5]), torch.ones(1, 3), [{"label": "a"}])
    assert inspection.confusions == [] and inspection.total == 1
    assert len(inspection.points) == 1


@pytest.mark.parametrize("backend", ["edge", "client"])
def test_points_reads_back_every_stored_point_across_pages(tmp_path, backend):
    if backend == "edge":
        pytest.importorskip("qdrant_edge")
        store = QdrantEdgeStore(tmp_path / "shard", dim=4)
    else:
        pytest.importorskip("qdrant_client")
        store = QdrantClientStore("c", dim=4, location=":memory:")
    vectors = clustered(2500, 4, seed=3)[0]
    with store:
        index_embeddings(store, vectors, [{"row": i} for i in range(2500)])
        ids, stored, payloads = store.points()
        order = ids.argsort()
        assert ids[order].tolist() == list(range(2500))
        assert [payloads[i]["row"] for i in order.tolist()] == list(range(2500))
        torch.testing.assert_close(stored[order], F.normalize(vectors, dim=1), atol=1e-5, rtol=0)
        assert len(store.points(limit=1100)[0]) == 1100


def test_client_store_refuses_a_missing_collection_when_asked_not_to_create(tmp_path):
    pytest.importorskip("qdrant_client")
    with pytest.raises(FileNotFoundError, match="No collection 'absent'"):
        QdrantClientStore("absent", dim=4, path=tmp_path / "local", create=False)


def test_baseline_is_the_encoders_output_and_the_head_gives_the_servable(servable):
    from quaterion_models import SimilarityModel

    model = SimilarityModel.load(servable).train()
    texts = ["a small cat", "a hammer", "soup"]
    frozen, trained = encode_with_baseline(model, texts, batch_size=2)
    assert model.head.training  # the head's mode is restored
    np.testing.assert_allclose(trained.numpy(), model.encode(texts), atol=1e-5)
    np.testing.assert_allclose(frozen.numpy(), frozen_baseline(model).encode(texts), atol=1e-6)
    assert frozen.shape == (3, 384) and trained.shape == (3, 32)


def test_image_objects_are_stored_as_png_data_urls():
    image = torch.zeros(1, 4, 3)
    image[0, 1, 2] = 1.0
    payload = object_payload(image)
    assert payload["image"].startswith("data:image/png;base64,")
    from PIL import Image

    decoded = Image.open(io.BytesIO(base64.b64decode(payload["image"].split(",", 1)[1])))
    assert decoded.size == (3, 4)
    assert np.asarray(decoded)[1, 2] == 255 and np.asarray(decoded).sum() == 255
    assert object_payload("a text") == {"text": "a text"}
    assert object_payload(3.5) == {}


def test_index_stores_the_frozen_baseline_beside_unless_told_not_to(
    store, servable, groups_csv, tmp_path
):
    where, collection = baseline_location(str(store))
    with open_store(where, 384, collection) as baseline:
        assert baseline.count() == 24
    plain = tmp_path / "plain"
    args = ["index", str(servable), str(groups_csv), "--store", str(plain), "--no-baseline"]
    assert main(args) == 0
    with pytest.raises(FileNotFoundError, match="No vector store"):
        open_store(baseline_location(str(plain))[0], 384)


def test_serve_refuses_an_unset_api_key_variable(servable, store, capsys, monkeypatch):
    monkeypatch.delenv("QUATERION_TEST_KEY", raising=False)
    args = ["serve", str(servable), "--store", str(store), "--api-key-env", "QUATERION_TEST_KEY"]
    assert main(args) == 1
    assert "QUATERION_TEST_KEY is unset or empty" in capsys.readouterr().err


def test_serve_on_a_directory_without_a_store_names_the_fix(servable, tmp_path, capsys):
    assert main(["serve", str(servable), "--store", str(tmp_path)]) == 1
    assert "create one with `quaterion index" in capsys.readouterr().err


def test_a_store_of_pairs_gets_a_map_and_no_confusions(servable, groups, tmp_path):
    """Pairs carry a pair score, not a group: nothing may be shown as confused."""
    from quaterion.serving.http import SearchService

    texts = [text for members in groups.values() for text in members]
    rows = [
        f'"{a}","{b}",{int(i % 3 == 0)}'
        for i, (a, b) in enumerate(zip(texts[:-1], texts[1:], strict=True))
    ]
    data = tmp_path / "pairs.csv"
    data.write_text("obj_a,obj_b,score\n" + "\n".join(rows) + "\n")
    assert main(["index", str(servable), str(data), "--store", str(tmp_path / "store")]) == 0
    service = SearchService.open(str(servable), str(tmp_path / "store"))
    try:
        _, _, payloads = service.store.points()
        assert all("pair_score" in p and "label" not in p for p in payloads)
        inspection = service.inspection()
        assert inspection.grouped is False and inspection.confusions == []
        assert inspection.confused == 0 and inspection.baseline_confused is None
        assert len(inspection.points) == len(payloads) == len(set(texts[1:]))
        assert {point["group"] for point in inspection.points} == {None}
    finally:
        service.close()
    grouped = inspect_points(torch.arange(3), torch.eye(3), [{"label": g} for g in "aab"])
    assert grouped.grouped is True
