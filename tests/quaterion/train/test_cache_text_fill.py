"""The fill encodes texts in batches of similar length (fewer padded positions) and keeps their
rows in the order read: the same rows as encoding each text on its own."""

import random

import torch
from support import HeadModel

from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityGroupSample,
    SimilarityPairSample,
)
from quaterion.loss import ContrastiveLoss, TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models.encoders import Encoder

BATCH = 4


class PaddingTextEncoder(Encoder):
    """Frozen; pads a batch of texts to its longest (counting the positions) and embeds each
    text by its real positions only: [length, mean code, first code]."""

    def __init__(self):
        super().__init__()
        self.positions = []  # B * T per collated batch

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 3

    def get_collate_fn(self):
        return self.pad

    def pad(self, texts):
        longest = max(map(len, texts))
        self.positions.append(len(texts) * longest)
        codes = torch.zeros(len(texts), longest)
        for row, text in enumerate(texts):
            codes[row, : len(text)] = torch.tensor([float(ord(c)) for c in text])
        return codes, torch.tensor([len(text) for text in texts])

    def forward(self, batch):
        codes, lengths = batch
        mean = codes.sum(dim=1) / lengths
        return torch.stack([lengths.float(), mean, codes[:, 0]], dim=1)

    def save(self, output_path: str) -> None:
        pass


class TextModel(HeadModel):
    def __init__(self, loss):
        super().__init__(3, loss)
        self.text_encoder = self.model.encoders["default"]

    def configure_encoders(self):
        return PaddingTextEncoder()

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, batch_size=BATCH)


def texts(count, seed=0):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 40) for _ in range(count)]
    return ["".join(rng.choice("abcdefgh") for _ in range(length)) for length in lengths]


def oracle(encoder, objects):
    return torch.cat([encoder(encoder.pad([text])) for text in objects])


def unsorted_positions(objects, per_batch):
    batches = [objects[i : i + per_batch] for i in range(0, len(objects), per_batch)]
    return sum(len(batch) * max(map(len, batch)) for batch in batches)


def test_group_texts_are_encoded_by_length_and_rows_match_encoding_one_by_one():
    words = texts(50)
    model = TextModel(TripletLoss)
    loader = GroupSimilarityDataLoader(
        [SimilarityGroupSample(obj=text, group=i % 5) for i, text in enumerate(words)],
        batch_size=8,
    )
    model.setup_dataloader(loader)
    model.setup_cache(None, loader, None)
    encoder, positions = model.model.encoders["default"], model.text_encoder.positions
    assert len(positions) == 13  # 50 texts in batches of 4
    sorted_positions = sum(positions)
    assert torch.allclose(encoder.embeddings("train"), oracle(model.text_encoder, words), atol=1e-5)
    assert sorted_positions < 0.75 * unsorted_positions(words, BATCH)
    assert sorted_positions >= sum(map(len, words))


def test_pair_texts_keep_their_object_ids():
    words = texts(40, seed=1)
    model = TextModel(ContrastiveLoss)
    samples = [SimilarityPairSample(words[i], words[i + 20], score=1.0) for i in range(20)]
    loader = PairsSimilarityDataLoader(samples, batch_size=8)
    model.setup_dataloader(loader)
    model.setup_cache(None, loader, None)
    positions = sum(model.text_encoder.positions)
    by_id = [text for i in range(20) for text in (words[i], words[i + 20])]  # a_0, b_0, a_1, ...
    assert torch.allclose(
        model.model.encoders["default"].embeddings("train"), oracle(model.text_encoder, by_id)
    )
    # unsorted, a fill batch of 4 pairs encodes their 4 obj_a and then their 4 obj_b
    batches = [words[i : i + BATCH] + words[20 + i : 20 + i + BATCH] for i in range(0, 20, BATCH)]
    assert positions < unsorted_positions(sum(batches, []), 2 * BATCH)
