"""FasttextEncoder on a tiny gensim FastText model trained in the test."""

import numpy as np
import pytest
import torch

from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import FasttextEncoder, load_fasttext_model
from quaterion_models.heads import EmptyHead

gensim_models = pytest.importorskip("gensim.models")

CORPUS = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "ate", "my", "homework"],
    ["cats", "and", "dogs", "are", "pets"],
] * 4


class WordsEncoder(FasttextEncoder):
    @classmethod
    def get_tokens(cls, batch):
        return [text.split() for text in batch]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = gensim_models.FastText(
        sentences=CORPUS, vector_size=10, min_count=1, epochs=3, seed=7, workers=1, bucket=500
    )
    path = tmp_path_factory.mktemp("fasttext") / "tiny.model"
    model.save(str(path))
    return path


def test_embedding_size_and_aggregations_against_plain_numpy(model_file):
    encoder = WordsEncoder(model_file, on_disk=False, aggregations=["avg", "max"])
    assert encoder.embedding_size == 20
    out = encoder(encoder.get_collate_fn()(["the cat", "unseenword dog"]))
    assert out.shape == (2, 20) and out.dtype == torch.float32
    wv = load_fasttext_model(model_file)
    rows = np.stack([wv["unseenword"], wv["dog"]]).astype(np.float32)  # OOV via sub-words
    expected = np.concatenate([rows.mean(axis=0), rows.max(axis=0)])
    assert np.allclose(out[1].numpy(), expected, atol=1e-6)


def test_empty_token_lists_give_float32_zeros(model_file):
    encoder = WordsEncoder(model_file, on_disk=False, aggregations=["avg", "max"])
    out = encoder([[], []])
    assert out.shape == (2, 20)
    assert out.dtype == torch.float32
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("on_disk", [False, True])
def test_servable_round_trip_without_pickles(tmp_path, model_file, on_disk):
    encoder = WordsEncoder(model_file, on_disk=on_disk, aggregations=["min", "avg"])
    model = SimilarityModel(encoder, EmptyHead(encoder.embedding_size))
    texts = ["the cat", "homework of unseen words", ""]
    before = model.encode(texts, to_numpy=False)
    model.save(tmp_path / "servable")
    files = {p.name for p in (tmp_path / "servable" / "encoders" / "default").iterdir()}
    assert files == {"config.json", "vectors.safetensors", "vocab.json"}
    loaded = SimilarityModel.load(tmp_path / "servable")
    assert loaded.encoders["default"].aggregations == ["min", "avg"]
    assert torch.allclose(loaded.encode(texts, to_numpy=False), before, atol=1e-6)


def test_plain_keyed_vectors_skip_unknown_words(tmp_path):
    keyed = gensim_models.KeyedVectors(vector_size=3)
    keyed.add_vectors(["a", "b"], np.array([[1, 2, 3], [3, 4, 5]], dtype=np.float32))
    encoder = WordsEncoder(keyed, on_disk=False)
    out = encoder([["a", "zzz", "b"], ["zzz"]])
    assert torch.equal(out, torch.tensor([[2.0, 3.0, 4.0], [0.0, 0.0, 0.0]]))
    encoder.save(str(tmp_path))
    assert torch.equal(WordsEncoder.load(str(tmp_path))([["a", "zzz", "b"]]), out[:1])


def test_bad_arguments_raise(tmp_path, model_file):
    with pytest.raises(ValueError, match="choose one or more of"):
        WordsEncoder(model_file, on_disk=False, aggregations=["median"])
    with pytest.raises(RuntimeError, match="Unknown operation: sum"):
        FasttextEncoder.aggregate(torch.ones(2, 3), "sum")
    with pytest.raises(FileNotFoundError, match="No word-vector model"):
        load_fasttext_model(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="junk.model"):
        load_fasttext_model(junk)
