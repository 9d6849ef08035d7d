"""The frozen baseline of a servable whose encoder's top layers trained (`trainable_layers`):
rebuilt from the original model it recorded, or refused with the fix named when that model is
gone or was never recorded; a head on a frozen encoder keeps sharing its encoder."""

import json
import shutil

import numpy as np
import pytest
import torch

from quaterion.cli import main
from quaterion.cli.evaluate_command import evaluate_samples
from quaterion.serving.baseline import encode_with_baseline, frozen_baseline
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras.huggingface_encoder import HuggingFaceEncoder
from quaterion_models.encoders.extras.sentence_transformer_encoder import (
    SentenceTransformerEncoder,
)
from quaterion_models.heads import EmptyHead, LinearHead

TEXTS = ["a small cat", "a heavy hammer", "a bowl of soup", "a wild wolf howling"]


def trained_top_servable(original, path, encoder_class=HuggingFaceEncoder, record=True):
    """A servable at `path` whose encoder (built on `original`, top layer changed as training
    would) sits under a seeded head; `record=False` saves it as older versions did."""
    encoder = encoder_class(original, trainable_layers=1)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in encoder.parameters():
            if parameter.requires_grad:  # the top layer (and what follows it)
                parameter.add_(torch.randn_like(parameter) * 0.5)
    if not record:
        encoder.source = None
    model = SimilarityModel(encoder, LinearHead(encoder.embedding_size, 8))
    model.save(path)
    return path


def frozen_original(original, encoder_class=HuggingFaceEncoder):
    encoder = encoder_class(original)
    return SimilarityModel(encoder, EmptyHead(encoder.embedding_size))


@pytest.mark.parametrize("encoder_class", [HuggingFaceEncoder, SentenceTransformerEncoder])
def test_baseline_of_a_trained_top_is_the_frozen_original(tiny_bert_3, tmp_path, encoder_class):
    servable = trained_top_servable(tiny_bert_3, tmp_path / "servable", encoder_class)
    config = json.loads((servable / "encoders" / "default" / "quaterion_encoder.json").read_text())
    assert config["source"] == str(tiny_bert_3.resolve())
    model = SimilarityModel.load(servable)
    expected = frozen_original(tiny_bert_3, encoder_class).encode(TEXTS)
    np.testing.assert_allclose(frozen_baseline(model).encode(TEXTS), expected, atol=1e-6)
    # the trained encoder differs: scoring it without its head (the old baseline) was wrong
    trained = SimilarityModel(model.encoders["default"], EmptyHead(expected.shape[1]))
    assert np.abs(trained.encode(TEXTS) - expected).max() > 1e-2
    before, after = encode_with_baseline(model, TEXTS, batch_size=3)
    np.testing.assert_allclose(before.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(after.numpy(), model.encode(TEXTS), atol=1e-6)


def test_evaluate_baseline_scores_the_frozen_original(tiny_bert_3, tmp_path, groups_csv, capsys):
    servable = trained_top_servable(tiny_bert_3, tmp_path / "servable")
    args = ["evaluate", str(servable), str(groups_csv), "-k", "1", "3", "--json", "--baseline"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    from quaterion.cli.data_sources import load_evaluation_samples

    kind, samples = load_evaluation_samples(str(groups_csv))
    expected = evaluate_samples(frozen_original(tiny_bert_3), kind, samples, [1, 3])
    assert report["baseline"] == pytest.approx(expected, abs=1e-6)
    trained = evaluate_samples(SimilarityModel.load(servable), kind, samples, [1, 3])
    assert report["trained"] == pytest.approx(trained, abs=1e-6)


def test_a_missing_original_is_refused_with_the_fix(tiny_bert_3, tmp_path, groups_csv, capsys):
    original = shutil.copytree(tiny_bert_3, tmp_path / "original")
    servable = str(trained_top_servable(original, tmp_path / "servable"))
    shutil.rmtree(original)
    assert main(["evaluate", servable, str(groups_csv), "--baseline"]) == 1
    err = capsys.readouterr().err
    assert f"original model at {original.resolve()} is not available" in err
    assert "put the original model back at that path" in err
    assert "without --baseline" in err and "--no-baseline" in err
    store = str(tmp_path / "store")
    assert main(["index", servable, str(groups_csv), "--store", store]) == 1
    assert "is not available" in capsys.readouterr().err
    # without the baseline both commands work: the servable itself is whole
    assert main(["evaluate", servable, str(groups_csv)]) == 0
    assert main(["index", servable, str(groups_csv), "--store", store, "--no-baseline"]) == 0


def test_a_servable_without_a_recorded_original_is_refused(tiny_bert_3, tmp_path):
    servable = trained_top_servable(tiny_bert_3, tmp_path / "servable", record=False)
    config = json.loads((servable / "encoders" / "default" / "quaterion_encoder.json").read_text())
    assert "source" not in config
    with pytest.raises(ValueError, match="does not record the model it was built from"):
        frozen_baseline(SimilarityModel.load(servable))


def test_a_frozen_encoder_is_its_own_baseline(tiny_bert_3, tmp_path):
    SimilarityModel(HuggingFaceEncoder(tiny_bert_3), LinearHead(32, 8)).save(tmp_path / "s")
    config = json.loads((tmp_path / "s/encoders/default/quaterion_encoder.json").read_text())
    assert "source" not in config  # saved exactly as before
    model = SimilarityModel.load(tmp_path / "s")
    assert frozen_baseline(model).encoders["default"] is model.encoders["default"]


def test_serving_without_the_original_drops_only_the_baseline(tiny_bert_3, tmp_path, groups_csv):
    from quaterion.serving.http.service import SearchService

    original = shutil.copytree(tiny_bert_3, tmp_path / "original")
    servable = str(trained_top_servable(original, tmp_path / "servable"))
    store = str(tmp_path / "store")
    assert main(["index", servable, str(groups_csv), "--store", store]) == 0  # with baseline
    shutil.rmtree(original)
    with pytest.warns(UserWarning, match="Serving without the frozen baseline.*is not available"):
        service = SearchService.open(servable, store)
    try:
        assert service.health()["baseline"] is False
        hits = service.search_batch([("a small cat", 2, True)])[0]
        assert len(hits["hits"]) == 2 and "baseline" not in hits
    finally:
        service.close()
