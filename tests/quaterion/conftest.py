"""Fixtures of the CLI tests: a tiny local Hugging Face text model."""

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from quaterion_models.encoders.extras import minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
