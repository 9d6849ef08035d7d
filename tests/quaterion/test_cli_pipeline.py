"""`quaterion fit / evaluate / export / index / search` end to end on a tiny text model.

The encoder is a 1-layer, 32-wide BERT with MiniLM's tokenizer and seeded random weights,
saved as a local Hugging Face directory (config `encoder.name: hf`), so the whole chain runs
in seconds; the data are small CSV / JSONL files of groups and pairs written here.
"""

import json

import pytest
import torch
from cli_support import ANIMALS, TOOLS, run_cli, write_groups_csv


@pytest.fixture(scope="module")
def groups_csv(tmp_path_factory):
    return write_groups_csv(tmp_path_factory.mktemp("data") / "groups.csv")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_bert, groups_csv):
    """(config path, servable dir, fit output) of one tiny `quaterion fit` run."""
    root = tmp_path_factory.mktemp("fit")
    config = root / "config.toml"
    config.write_text(
        f"""
epochs = 2
batch_size = 8
lr = 0.01
cache_dir = "{root / "cache"}"
output_dir = "{root / "servable"}"

[data]
kind = "csv"
path = "{groups_csv}"
val_fraction = 0.3

[encoder]
name = "hf"
path = "{tiny_bert}"

[head]
name = "LinearHead"
kwargs = {{ output_size = 16 }}

[loss]
name = "TripletLoss"
kwargs = {{ mining = "all" }}
"""
    )
    return config, root / "servable"


def test_fit_saves_a_servable_and_persists_the_cache(capsys, fitted):
    config, servable = fitted
    code, out, err = run_cli(capsys, "fit", config)
    assert code == 0, err
    assert "Servable saved to" in out
    assert (servable / "config.json").is_file()
    cache_files = list((config.parent / "cache").rglob("*.safetensors"))
    assert cache_files, "the cache_dir of the config must hold the persisted cache"

    from quaterion_models import SimilarityModel

    model = SimilarityModel.load(servable)
    embeddings = model.encode(ANIMALS[:2])
    assert embeddings.shape == (2, 16)


def test_evaluate_reports_metrics_of_the_held_out_split(capsys, fitted):
    config, servable = fitted
    code, out, err = run_cli(capsys, "evaluate", servable, config, "-k", "1", "2", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    for name in ("precision@1", "precision@2", "r_precision", "map@r", "mrr", "ndcg@2"):
        assert 0.0 <= metrics[name] <= 1.0

    # oracle: nearest other held-out sample by cosine, in a plain loop
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion_models import SimilarityModel

    _, samples = load_evaluation_samples(str(config))
    vectors = SimilarityModel.load(servable).encode([s.obj for s in samples], to_numpy=False)
    hits = []
    for i, query in enumerate(vectors):
        others = [j for j in range(len(samples)) if j != i]
        best = max(others, key=lambda j: float(torch.cosine_similarity(query, vectors[j], dim=0)))
        hits.append(float(samples[best].group == samples[i].group))
    assert metrics["precision@1"] == pytest.approx(sum(hits) / len(hits), abs=1e-6)


def test_evaluate_baseline_scores_the_encoders_without_the_head(capsys, fitted):
    config, servable = fitted
    code, out, err = run_cli(
        capsys, "evaluate", servable, config, "-k", "1", "--json", "--baseline"
    )
    assert code == 0, err
    report = json.loads(out)
    code, out, err = run_cli(capsys, "evaluate", servable, config, "-k", "1", "--json")
    assert report["trained"] == json.loads(out)

    # oracle: the encoder's own outputs (its collate + forward), nearest other by cosine
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion_models import SimilarityModel

    _, samples = load_evaluation_samples(str(config))
    encoder = SimilarityModel.load(servable).encoders["default"].eval()
    with torch.no_grad():
        vectors = encoder(encoder.get_collate_fn()([s.obj for s in samples]))
    unit = torch.nn.functional.normalize(vectors, dim=1)
    similarity = (unit @ unit.T).fill_diagonal_(-2)
    hits = [
        float(samples[int(best)].group == samples[i].group)
        for i, best in enumerate(similarity.argmax(dim=1))
    ]
    assert report["baseline"]["precision@1"] == pytest.approx(sum(hits) / len(hits), abs=1e-6)

    code, out, err = run_cli(capsys, "evaluate", servable, config, "-k", "1", "--baseline")
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "frozen", "encoder", "+", "trained", "head", "change"]
    row = next(line for line in out.splitlines() if line.startswith("precision@1 "))
    baseline, trained, change = (float(value) for value in row.split()[1:])
    assert baseline == pytest.approx(report["baseline"]["precision@1"], abs=1e-4)
    assert change == pytest.approx(trained - baseline, abs=2e-4)


def test_evaluate_on_a_pairs_file_ranks_answers_for_questions(capsys, fitted, tmp_path):
    _, servable = fitted
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"obj_a": "cat", "obj_b": "a small cat", "score": 1.0},
        {"obj_a": "hammer", "obj_b": "a heavy hammer", "score": 1.0},
        {"obj_a": "saw", "obj_b": "a long saw", "score": 1.0},
    ]
    pairs.write_text("\n".join(json.dumps(line) for line in lines))
    code, out, err = run_cli(capsys, "evaluate", servable, pairs, "-k", "1", "--json")
    assert code == 0, err
    assert 0.0 <= json.loads(out)["mrr"] <= 1.0


def test_export_writes_an_onnx_graph_matching_torch(capsys, fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    _, servable = fitted
    target = tmp_path / "model.onnx"
    code, out, err = run_cli(capsys, "export", servable, "--onnx", target)
    assert code == 0, err
    assert target.is_file()
    difference = float(out.rsplit("=", 1)[1])
    assert difference < 1e-4


def test_index_then_search_finds_the_indexed_text(capsys, fitted, groups_csv, tmp_path):
    pytest.importorskip("qdrant_edge")
    _, servable = fitted
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "index", servable, groups_csv, "--store", store)
    assert code == 0, err
    assert "Indexed 20 objects" in out

    code, out, err = run_cli(capsys, "search", store, servable, TOOLS[1], "-k", "3")
    assert code == 0, err
    hits = out.strip().splitlines()
    assert len(hits) == 3
    assert TOOLS[1] in hits[0]  # the query text itself is stored, so it is the nearest point


def test_search_without_a_store_names_the_missing_directory(capsys, fitted, tmp_path):
    _, servable = fitted
    code, _, err = run_cli(capsys, "search", tmp_path / "nowhere", servable, "a query")
    assert code == 1
    assert "No vector store at" in err and "quaterion index" in err


def test_index_into_an_existing_store_and_search_with_another_servable(
    capsys, fitted, groups_csv, tmp_path
):
    pytest.importorskip("qdrant_edge")
    from quaterion_models import SimilarityModel

    _, servable = fitted
    store = tmp_path / "store"
    assert run_cli(capsys, "index", servable, groups_csv, "--store", store)[0] == 0
    code, _, err = run_cli(capsys, "index", servable, groups_csv, "--store", store)
    assert code == 1 and "--append" in err and "--replace" in err
    code, out, err = run_cli(capsys, "index", servable, groups_csv, "--store", store, "--append")
    assert code == 0, err
    assert "0 new points, 10 already there and updated; the store holds 10 points" in out

    other = tmp_path / "other-servable"
    model = SimilarityModel.load(servable)
    with torch.no_grad():
        next(model.head.parameters()).add_(0.1)
    model.save(other)
    code, _, err = run_cli(capsys, "search", store, other, "a query")
    assert code == 1 and "another servable" in err
    code, _, err = run_cli(capsys, "index", other, groups_csv, "--store", store, "--append")
    assert code == 1 and "another servable" in err
    code, out, err = run_cli(capsys, "index", other, groups_csv, "--store", store, "--replace")
    assert code == 0, err
    assert run_cli(capsys, "search", store, other, TOOLS[1])[0] == 0


def test_search_on_a_directory_that_is_not_a_store_leaves_it_untouched(capsys, fitted, tmp_path):
    _, servable = fitted
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "search", folder, servable, "a query")
    assert code == 1 and "No vector store at" in err
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]
    code, _, err = run_cli(capsys, "index", servable, folder / "notes.txt", "--store", folder)
    assert code != 0
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]
