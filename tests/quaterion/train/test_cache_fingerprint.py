"""Fingerprints: stable for equal inputs, different as soon as weights, samples or key
extractors differ."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from quaterion.dataset import SimilarityGroupSample, SimilarityPairSample
from quaterion.train.cache.fill import label_view
from quaterion.train.cache.fingerprint import (
    callable_fingerprint,
    encoder_fingerprint,
    sample_digest,
    tensor_checksum,
)


def test_sample_digest_is_stable_and_sees_every_part_of_a_sample():
    base = SimilarityPairSample(obj_a=torch.arange(4.0), obj_b="text", score=1.0, subgroup=2)
    same = SimilarityPairSample(obj_a=torch.arange(4.0), obj_b="text", score=1.0, subgroup=2)
    assert sample_digest(base) == sample_digest(same)
    changes = [
        SimilarityPairSample(torch.arange(4.0) + 1e-6, "text", 1.0, 2),
        SimilarityPairSample(torch.arange(4.0).double(), "text", 1.0, 2),
        SimilarityPairSample(torch.arange(4.0).reshape(2, 2), "text", 1.0, 2),
        SimilarityPairSample(torch.arange(4.0), "texts", 1.0, 2),
        SimilarityPairSample(torch.arange(4.0), "text", 0.0, 2),
        SimilarityPairSample(torch.arange(4.0), "text", 1.0, 3),
        SimilarityGroupSample(obj=torch.arange(4.0), group=2),
    ]
    digests = {sample_digest(sample) for sample in changes} | {sample_digest(base)}
    assert len(digests) == len(changes) + 1
    # containers and numpy arrays: order and content matter, ["ab"] is not ["a", "b"]
    assert sample_digest(["ab"]) != sample_digest(["a", "b"])
    assert sample_digest({"a": np.ones(2)}) != sample_digest({"a": np.zeros(2)})


def test_encoder_fingerprint_follows_weights_and_structure():
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 2)
    copy = torch.nn.Linear(3, 2)
    copy.load_state_dict(linear.state_dict())
    assert encoder_fingerprint(linear) == encoder_fingerprint(copy)
    with torch.no_grad():
        copy.bias[0] += 1e-4
    assert encoder_fingerprint(linear) != encoder_fingerprint(copy)
    no_bias = torch.nn.Linear(3, 2, bias=False)
    no_bias.weight.data.copy_(linear.weight)
    assert encoder_fingerprint(no_bias) != encoder_fingerprint(linear)


def test_key_extractor_fingerprint_sees_the_code():
    first = lambda obj: obj[0]  # noqa: E731
    second = lambda obj: obj[1]  # noqa: E731
    assert callable_fingerprint(first) != callable_fingerprint(second)
    assert callable_fingerprint(str) == callable_fingerprint(str)


def test_checksum_of_bfloat16_rows():
    rows = torch.arange(6.0).reshape(2, 3).bfloat16()
    assert tensor_checksum(rows) == tensor_checksum(rows.clone())
    assert tensor_checksum(rows) != tensor_checksum(rows.float())


@dataclass(frozen=True)
class Record:
    image: object
    label: int
    name: str


def test_label_view_drops_objects_and_keeps_labels():
    sample = SimilarityPairSample(obj_a=torch.ones(3), obj_b=[1, 2], score=0.5, subgroup=1)
    view = label_view(sample)
    assert view == SimilarityPairSample(obj_a=None, obj_b=None, score=0.5, subgroup=1)
    assert torch.equal(sample.obj_a, torch.ones(3))  # the original is untouched
    frozen = label_view(Record(image=np.zeros(4), label=3, name="x"))
    assert frozen == Record(image=None, label=3, name="x")
    assert label_view((1, 2)) == (1, 2)  # not a dataclass: as is


class SavingEncoder(torch.nn.Linear):
    """A module whose saved files hold a setting that is neither a tensor nor in its repr."""

    def __init__(self, setting: str):
        super().__init__(2, 2)
        torch.nn.init.ones_(self.weight)
        torch.nn.init.zeros_(self.bias)
        self.setting = setting

    def save(self, output_path: str) -> None:
        (Path(output_path) / "settings.txt").write_text(self.setting)


def test_encoder_fingerprint_follows_every_file_save_writes():
    assert encoder_fingerprint(SavingEncoder("a")) == encoder_fingerprint(SavingEncoder("a"))
    assert encoder_fingerprint(SavingEncoder("a")) != encoder_fingerprint(SavingEncoder("b"))


def test_encoder_fingerprint_sees_non_persistent_buffers():
    first, second = torch.nn.Module(), torch.nn.Module()
    first.register_buffer("mean", torch.zeros(3), persistent=False)
    second.register_buffer("mean", torch.full((3,), 0.5), persistent=False)
    assert first.state_dict() == second.state_dict() == {}
    assert encoder_fingerprint(first) != encoder_fingerprint(second)


def test_text_encoder_changed_in_place_changes_the_fingerprint():
    """Tokenizer settings, tokenizer files and max length all change embeddings, so each
    changes the fingerprint (a cache keyed by the old one is rebuilt, never reused)."""
    pytest.importorskip("sentence_transformers")
    from tokenizers import normalizers

    from quaterion_models.encoders.extras import (
        HuggingFaceEncoder,
        SentenceTransformerEncoder,
        minilm_path,
    )

    sentence = SentenceTransformerEncoder(minilm_path())
    before = encoder_fingerprint(sentence)
    assert encoder_fingerprint(sentence) == before  # stable while nothing changes
    sentence.model[0].do_lower_case = not sentence.model[0].do_lower_case
    assert encoder_fingerprint(sentence) != before

    hf = HuggingFaceEncoder(minilm_path())
    before = encoder_fingerprint(hf)
    collate = hf.get_collate_fn()
    lowered = collate(["Paris"])["input_ids"]
    # a call leaves truncation/padding on the tokenizer: same outputs, so the same fingerprint
    # (in another process too: a rerun reuses the cache the first run stored)
    assert (
        encoder_fingerprint(hf) == before == encoder_fingerprint(HuggingFaceEncoder(minilm_path()))
    )
    hf.tokenizer.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    assert not torch.equal(collate(["Paris"])["input_ids"], lowered)  # outputs do change
    changed = encoder_fingerprint(hf)
    assert changed != before
    hf.max_length = 16
    assert encoder_fingerprint(hf) not in (before, changed)


def test_image_encoder_normalisation_and_size_change_the_fingerprint():
    pytest.importorskip("efficientnet_lite_pytorch")
    from quaterion_models.encoders.extras import EfficientNetLite0Encoder

    encoder = EfficientNetLite0Encoder(image_size=32)
    before = encoder_fingerprint(encoder)
    encoder.image_size = 64
    resized = encoder_fingerprint(encoder)
    assert resized != before
    encoder.mean.fill_(0.5)  # a non-persistent buffer: in no state dict and no saved file
    assert encoder_fingerprint(encoder) not in (before, resized)
