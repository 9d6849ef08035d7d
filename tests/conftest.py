"""Shared fixtures over the helpers in tests/support.py: a tiny vector encoder and model,
clustered synthetic data, a precision@1 oracle, a quiet trainer factory."""

import pytest
import torch
from support import HeadModel, VectorEncoder, group_samples, make_clusters, precision_at_1


@pytest.fixture
def vector_encoder():
    return VectorEncoder


@pytest.fixture
def head_model():
    return HeadModel


@pytest.fixture
def to_group_samples():
    return group_samples


@pytest.fixture
def clusters():
    return make_clusters


@pytest.fixture
def p_at_1():
    return precision_at_1


@pytest.fixture
def fast_trainer(tmp_path):
    """``pl.Trainer`` factory for tests: CPU, no logger, progress bar, summary or checkpoints."""
    import pytorch_lightning as pl

    def build(**overrides):
        options = dict(
            accelerator="cpu",
            devices=1,
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=str(tmp_path),
        )
        options.update(overrides)
        return pl.Trainer(**options)

    return build


def save_tiny_bert(path, num_layers):
    """A tiny random BERT with MiniLM's tokenizer, saved under `path` (fast text tests)."""
    transformers = pytest.importorskip("transformers")
    from quaterion_models.encoders.extras import minilm_path

    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), num_layers=1)


@pytest.fixture(scope="session")
def tiny_bert_3(tmp_path_factory):
    """The tiny BERT with 3 layers (to freeze some and train others)."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-3"), num_layers=3)
