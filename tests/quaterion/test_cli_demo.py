"""`quaterion demo` at a tiny size: every artefact of the real run is produced."""

import re

import pytest

from quaterion.cli import main
from quaterion.demo import DEMO_CATEGORIES, DEMO_QUERIES, MIN_PER_CATEGORY, load_demo_data


def test_demo_data_splits_are_disjoint_and_cover_every_category():
    data = load_demo_data(samples=20 * len(DEMO_CATEGORIES), seed=0)
    splits = (data.train, data.validation, data.held_out)
    texts = [{text for text, _ in split} for split in splits]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    for split in splits:
        assert {group for _, group in split} == set(range(len(DEMO_CATEGORIES)))


def test_demo_rejects_a_sample_count_too_small_to_split(capsys):
    assert main(["demo", "--samples", "10"]) == 1
    assert f"({MIN_PER_CATEGORY} per category)" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_demo_writes_servable_store_figure_and_prints_the_table(tmp_path, capsys):
    pytest.importorskip("qdrant_edge")
    samples = MIN_PER_CATEGORY * len(DEMO_CATEGORIES)
    code = main(["demo", "--output", str(tmp_path), "--samples", str(samples), "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "servable" / "config.json").is_file()
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((tmp_path / "cache").rglob("*.safetensors"))
    row = re.search(r"precision@10\s+([\d.]+)\s+([\d.]+)\s+([-+][\d.]+)", out)
    assert row is not None, out
    before, after, change = (float(value) for value in row.groups())
    assert change == pytest.approx(after - before, abs=2e-4)
    assert out.count("query: ") == len(DEMO_QUERIES)


def test_demo_rejects_trainable_layers_minilm_does_not_have(capsys):
    assert main(["demo", "--trainable-layers", "7"]) == 1
    assert "--trainable-layers must be between 0 (the head alone) and 6" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_demo_trains_the_top_layer_on_cached_lower_layers(tmp_path, capsys):
    pytest.importorskip("qdrant_edge")
    from quaterion_models import SimilarityModel

    samples = MIN_PER_CATEGORY * len(DEMO_CATEGORIES)
    args = ["--output", str(tmp_path), "--samples", str(samples), "--epochs", "1"]
    assert main(["demo", *args, "--trainable-layers", "1"]) == 0
    out = capsys.readouterr().out
    assert "Trained the top 1 MiniLM layer and the head, on the cached output of the 5" in out
    assert any((tmp_path / "cache").rglob("*.safetensors"))  # hidden states kept for a rerun
    row = re.search(r"r_precision\s+([\d.]+)\s+([\d.]+)\s+([-+][\d.]+)", out)
    assert row is not None and "+ top 1 + head" in out, out
    assert (
        SimilarityModel.load(str(tmp_path / "servable")).encoders["default"].trainable_layers == 1
    )


def test_pca_projection_of_planar_points_keeps_their_distances():
    import torch

    from quaterion.plots import pca_2d

    generator = torch.Generator().manual_seed(0)
    plane = torch.linalg.qr(torch.randn(8, 2, generator=generator)).Q.T  # 2 orthonormal rows
    points = torch.randn(50, 2, generator=generator) * torch.tensor([3.0, 1.0]) @ plane + 5.0
    projected = pca_2d(points)
    assert projected.shape == (50, 2)
    distances = torch.cdist(points.double(), points.double())
    assert torch.allclose(torch.cdist(projected.double(), projected.double()), distances, atol=1e-4)
    assert projected[:, 0].var() > projected[:, 1].var()  # first axis carries most variance
