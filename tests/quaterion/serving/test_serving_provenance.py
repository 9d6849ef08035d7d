"""Stores record what built them: index never overwrites by position, search refuses another
servable's store, and a directory that is not a store is refused and left untouched.

Both backends: embedded Qdrant Edge (a directory) and qdrant-client (its on-disk local mode
stands in for a server, reached through the same location-based functions)."""

from pathlib import Path

import pytest
import torch

from quaterion.serving import QdrantClientStore, QdrantEdgeStore, indexing, provenance
from quaterion.serving.indexing import check_index, index_objects
from quaterion.serving.provenance import (
    check_store_servable,
    point_ids,
    read_store_record,
    servable_fingerprint,
)
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead

pytest.importorskip("qdrant_edge")
pytest.importorskip("qdrant_client")

DIM = 8


class TextLengthEncoder(Encoder):
    """Strings -> (length, vowel count, ...) features: a tiny real encoder for servables."""

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 4

    def get_collate_fn(self):
        return lambda texts: torch.tensor(
            [[len(t), sum(c in "aeiou" for c in t), t.count(" "), 1.0] for t in texts]
        )

    def forward(self, batch):
        return batch.float()

    def save(self, output_path: str) -> None:
        pass

    @classmethod
    def load(cls, input_path: str) -> "TextLengthEncoder":
        return cls()


def make_servable(path: Path, seed: int) -> str:
    torch.manual_seed(seed)
    SimilarityModel(TextLengthEncoder(), LinearHead(4, DIM)).save(path)
    return str(path)


@pytest.fixture
def servables(tmp_path):
    """Two servables of the same architecture with different weights."""
    return make_servable(tmp_path / "servable-a", 0), make_servable(tmp_path / "servable-b", 1)


@pytest.fixture(params=["edge", "client"])
def location(request, tmp_path, monkeypatch):
    """A store location for either backend (client: local mode behind a URL-like name)."""
    if request.param == "edge":
        return str(tmp_path / "store")
    root = tmp_path / "qdrant-local"

    def open_local(location, dim, collection="quaterion", create=False, recreate=False):
        if not create and not (root / "collection" / collection).is_dir():
            raise FileNotFoundError(f"No collection {collection!r}")
        return QdrantClientStore(collection, dim=dim, path=root, create=create, recreate=recreate)

    monkeypatch.setattr(indexing, "open_store", open_local)
    monkeypatch.setattr(provenance, "open_store", open_local)
    return "http://local-qdrant"


def rows(texts, seed=0):
    """(objects, labels, payloads, embeddings) of `texts`, as `quaterion index` builds them."""
    generator = torch.Generator().manual_seed(seed)
    labels = [f"group-{i % 3}" for i in range(len(texts))]
    payloads = [{"label": label, "text": text} for text, label in zip(texts, labels, strict=True)]
    return texts, labels, payloads, torch.randn(len(texts), DIM, generator=generator)


def stored(location, collection="quaterion"):
    """(ids, payloads) of every point at `location`."""
    with indexing.open_store(location, DIM, collection, create=False) as store:
        ids, _, payloads = store.points()
        return ids.tolist(), payloads


def texts(n, start=0):
    return [f"object number {i}" for i in range(start, start + n)]


def test_point_ids_are_stable_content_derived_and_non_negative():
    ids = point_ids(["a", "b", "a", torch.arange(3.0)])
    assert ids[0] == ids[2] != ids[1]
    assert all(0 <= i < 2**63 for i in ids)
    assert point_ids([torch.arange(3.0)]) == [ids[3]]
    assert point_ids([torch.arange(3)]) != [ids[3]]  # another dtype is another object


def test_indexing_into_an_existing_store_needs_append_or_replace(location, servables):
    servable, _ = servables
    first = rows(texts(300))
    report = index_objects(location, servable, *first, baseline=first[3][:, :4])
    assert (report.added, report.updated, report.total) == (300, 0, 300)
    with pytest.raises(FileExistsError, match="already exists.*--append.*--replace"):
        index_objects(location, servable, *rows(texts(50, start=1000)))
    assert len(stored(location)[0]) == 300  # refused before anything was written

    # the original bug: 50 new rows overwrote ids 0-49 and left 250 stale points
    report = index_objects(location, servable, *rows(texts(50, start=1000)), mode="append")
    assert (report.added, report.updated, report.total) == (50, 0, 350)
    ids, payloads = stored(location)
    assert sorted(p["text"] for p in payloads) == sorted(texts(300) + texts(50, start=1000))
    assert sorted(ids) == sorted(point_ids(texts(300) + texts(50, start=1000)))

    # re-indexing the same objects updates them: no duplicates
    report = index_objects(location, servable, *rows(texts(20), seed=5), mode="append")
    assert (report.added, report.updated, report.total) == (0, 20, 350)

    report = index_objects(location, servable, *rows(texts(50, start=1000)), mode="replace")
    assert (report.added, report.total) == (50, 50)
    assert sorted(p["text"] for p in stored(location)[1]) == sorted(texts(50, start=1000))


def test_records_hold_the_servable_and_every_data_set(location, servables):
    servable, _ = servables
    index_objects(location, servable, *rows(texts(5)))
    index_objects(location, servable, *rows(texts(5, start=5)), mode="append")
    record = read_store_record(location, DIM)
    assert record.servable == servable_fingerprint(servable) and record.complete
    assert len(record.data) == 2 and record.data[0] != record.data[1]


def test_duplicate_objects_in_one_data_set_are_one_point(location, servables):
    servable, _ = servables
    report = index_objects(location, servable, *rows(["x", "y", "x"]))
    assert (report.objects, report.distinct, report.total) == (3, 2, 2)


def test_another_servable_is_refused_for_search_and_append(location, servables, tmp_path):
    servable, other = servables
    index_objects(location, servable, *rows(texts(10)))
    check_store_servable(location, servable, DIM)  # the one that built it: accepted
    with pytest.raises(ValueError, match="another servable.*--replace"):
        check_store_servable(location, other, DIM)
    with pytest.raises(ValueError, match="another servable.*--replace"):
        check_index(location, other, DIM, "append")
    resaved = make_servable(tmp_path / "resaved-a", 0)  # the same model saved again: same
    assert servable_fingerprint(resaved) == servable_fingerprint(servable)
    index_objects(location, other, *rows(texts(10)), mode="replace")
    check_store_servable(location, other, DIM)


def test_an_interrupted_index_is_recognised(location, servables, monkeypatch):
    servable, _ = servables
    original = indexing.index_embeddings

    def crash(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(indexing, "index_embeddings", crash)
    with pytest.raises(KeyboardInterrupt):
        index_objects(location, servable, *rows(texts(10)))
    monkeypatch.setattr(indexing, "index_embeddings", original)
    with pytest.raises(ValueError, match="interrupted.*--replace"):
        check_store_servable(location, servable, DIM)
    with pytest.raises(ValueError, match="not completed.*--replace"):
        check_index(location, servable, DIM, "append")
    index_objects(location, servable, *rows(texts(10)), mode="replace")


def test_a_store_without_a_record_is_refused(tmp_path, servables):
    servable, _ = servables
    with QdrantEdgeStore(tmp_path / "bare", dim=DIM) as store:  # made through the API
        store.upsert([1], torch.ones(1, DIM))
    with pytest.raises(ValueError, match="records no servable.*--replace"):
        check_store_servable(str(tmp_path / "bare"), servable, DIM)


@pytest.mark.parametrize("content", ["empty", "files"])
def test_a_directory_that_is_not_a_store(tmp_path, servables, content):
    """`search` refuses it and leaves it as it was; `index` creates a store only in a new or
    empty directory."""
    servable, _ = servables
    folder = tmp_path / "folder"
    folder.mkdir()
    if content == "files":
        (folder / "notes.txt").write_text("mine")
    before = sorted(p.name for p in folder.rglob("*"))
    with pytest.raises(FileNotFoundError, match="No vector store at"):
        indexing.open_store(str(folder), DIM, create=False)
    with pytest.raises(FileNotFoundError, match="No vector store at"):
        QdrantEdgeStore(folder, dim=DIM, create=False)
    assert sorted(p.name for p in folder.rglob("*")) == before
    if content == "files":
        for mode in ("new", "append", "replace"):
            with pytest.raises(FileExistsError, match="not a vector store"):
                index_objects(str(folder), servable, *rows(texts(3)), mode=mode)
        assert sorted(p.name for p in folder.rglob("*")) == before
    else:
        assert index_objects(str(folder), servable, *rows(texts(3))).total == 3


def test_client_store_metadata_survives_reopening(tmp_path):
    with QdrantClientStore("c", dim=2, path=tmp_path / "q") as store:
        assert store.metadata() == {}
        store.write_metadata({"servable": "abc", "data": []})
    with QdrantClientStore("c", dim=2, path=tmp_path / "q", create=False) as store:
        assert store.metadata() == {"servable": "abc", "data": []}
    with QdrantClientStore("c", dim=2, path=tmp_path / "q", recreate=True) as store:
        assert store.metadata() == {} and store.count() == 0


def test_the_http_service_refuses_a_store_of_another_servable(servable, store, tmp_path):
    """`quaterion serve` checks the store like `quaterion search` (conftest's MiniLM store)."""
    from quaterion.serving.http import SearchService

    model = SimilarityModel.load(servable)
    with torch.no_grad():
        model.head.layer.weight.mul_(2.0)
    model.save(tmp_path / "other")
    with pytest.raises(ValueError, match="another servable"):
        SearchService.open(str(tmp_path / "other"), str(store))
    SearchService.open(str(servable), str(store)).close()
