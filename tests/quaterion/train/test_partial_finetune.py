"""Training the top layers of a transformer on the cached output of its frozen bottom."""

import pytest
import torch

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType, InMemoryCacheEncoder
from quaterion.train.cache.in_memory_cache_encoder import RaggedRows
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras.huggingface_encoder import HuggingFaceEncoder
from quaterion_models.encoders.extras.layer_split import LowerLayers
from quaterion_models.encoders.extras.sentence_transformer_encoder import (
    SentenceTransformerEncoder,
)
from quaterion_models.heads import LinearHead

TEXTS = [
    ("a small dog barks", 0), ("the puppy is playing in the garden all day", 0),
    ("dogs chase cats", 0), ("my hound sleeps", 0),
    ("stock prices fell sharply on monday", 1), ("the market rallied", 1),
    ("investors sold shares", 1), ("bonds and equities", 1),
]  # fmt: skip


class PartialModel(TrainableModel):
    def __init__(self, path, storage_dtype=None):
        self.path, self.storage_dtype = path, storage_dtype
        super().__init__()

    def configure_encoders(self):
        return HuggingFaceEncoder(self.path, trainable_layers=1)

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, storage_dtype=self.storage_dtype, batch_size=3)

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        return TripletLoss(mining="hard")

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.01)


def loader():
    samples = [SimilarityGroupSample(obj=text, group=group) for text, group in TEXTS]
    return GroupSimilarityDataLoader(samples, batch_size=4, shuffle=True)


def test_split_forward_equals_the_models_own_forward(tiny_bert_3):
    texts = [text for text, _ in TEXTS]
    full = HuggingFaceEncoder(tiny_bert_3)
    split = HuggingFaceEncoder(tiny_bert_3, trainable_layers=2)
    batch = full.get_collate_fn()(texts)
    with torch.no_grad():
        assert torch.allclose(split(batch), full(batch), atol=1e-6)
    trainable = {name for name, p in split.named_parameters() if p.requires_grad}
    assert trainable and all(
        name.startswith(("model.encoder.layer.1.", "model.encoder.layer.2.", "model.pooler."))
        for name in trainable
    )


def test_trains_top_layers_on_hidden_states_computed_once(tiny_bert_3, fast_trainer, monkeypatch,
                                                          tmp_path):  # fmt: skip
    calls = []
    lower_forward = LowerLayers.forward

    def counted(self, batch):
        calls.append(len(batch["input_ids"]))
        return lower_forward(self, batch)

    monkeypatch.setattr(LowerLayers, "forward", counted)
    torch.manual_seed(0)
    model = PartialModel(tiny_bert_3)
    before = {name: p.detach().clone() for name, p in model.model.named_parameters()}
    Quaterion.fit(model, fast_trainer(max_epochs=3), loader())
    assert sum(calls) == len(TEXTS)  # each object's bottom layers ran once over 3 epochs

    after = dict(model.model.named_parameters())
    top = [name for name in before if ".encoder.layer.2." in name]
    frozen = [name for name in before if ".embeddings." in name or ".encoder.layer.0." in name]
    assert top and frozen
    assert any(not torch.equal(before[name], after[name]) for name in top)
    assert all(torch.equal(before[name], after[name]) for name in frozen)

    # the embeddings training computes (cached bottom + trained top) are those encode gives
    model.eval()
    model.setup_dataloader(train_loader := loader())
    model.setup_cache(None, train_loader, None)
    cached = model.model.encoders["default"]
    assert isinstance(cached, InMemoryCacheEncoder) and cached.trainable
    with torch.no_grad():
        trained = model.model.head(cached.embeddings("train"), meta=None)
    model.unwrap_cache()
    model.save_servable(str(tmp_path / "servable"))
    servable = SimilarityModel.load(str(tmp_path / "servable"))
    encoded = servable.encode([text for text, _ in TEXTS], to_numpy=False)
    assert (encoded - trained).abs().max() <= 1e-5
    loaded = servable.encoders["default"]
    assert loaded.trainable_layers == 1
    assert torch.equal(
        dict(loaded.named_parameters())[top[0][top[0].index("model.encoder.") :]], after[top[0]]
    )


def test_hidden_states_are_stored_without_padding(tiny_bert_3):
    model = PartialModel(tiny_bert_3, storage_dtype=torch.float16)
    model.setup_dataloader(train_loader := loader())
    model.setup_cache(None, train_loader, None)
    ragged = model.model.encoders["default"].ragged("train")
    encoder = HuggingFaceEncoder(tiny_bert_3)
    lengths = [len(encoder.tokenizer(text)["input_ids"]) for text, _ in TEXTS]
    assert sorted(torch.diff(ragged.offsets).tolist()) == sorted(lengths)
    assert ragged.values.dtype == torch.float16
    assert ragged.nbytes == sum(lengths) * 32 * 2 + (len(TEXTS) + 1) * 8


def test_ragged_rows_gather_pads_each_row_with_zeros():
    rows = RaggedRows(torch.arange(12.0).view(6, 2), torch.tensor([0, 1, 4, 6]))
    values, mask = rows.gather(torch.tensor([2, 0, 1]))
    assert mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert values[0].tolist() == [[8, 9], [10, 11], [0, 0]]
    assert values[2].tolist() == [[2, 3], [4, 5], [6, 7]]


def test_sentence_transformer_split_equals_its_own_pipeline():
    from quaterion_models.encoders.extras import minilm_path

    texts = [text for text, _ in TEXTS]
    full = SentenceTransformerEncoder(minilm_path())
    split = SentenceTransformerEncoder(minilm_path(), trainable_layers=2)
    batch = full.get_collate_fn()(texts)
    with torch.no_grad():
        expected = full(batch)
        assert torch.allclose(split(batch), expected, atol=1e-5)
        values, mask = split.frozen_lower(batch)
        assert torch.allclose(split.forward_upper(values, mask), expected, atol=1e-5)
    assert split.trainable and split.get_config_dict()["trainable_layers"] == 2
    assert not any(p.requires_grad for p in split.model[0].auto_model.embeddings.parameters())


@pytest.mark.parametrize(
    "options, message",
    [({"trainable_layers": 4}, "between 1 and the model's 3"),
     ({"trainable_layers": 1, "trainable": True}, "not both")],
)  # fmt: skip
def test_bad_trainable_layers_name_the_problem(tiny_bert_3, options, message):
    with pytest.raises(ValueError, match=message):
        HuggingFaceEncoder(tiny_bert_3, **options)
