"""Fingerprints: stable for equal inputs, different as soon as weights, samples or key
extractors differ."""

from dataclasses import dataclass

import numpy as np
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
