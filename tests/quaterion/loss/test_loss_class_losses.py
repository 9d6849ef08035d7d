"""Class-based losses (Softmax, ArcFace, CosFace, Center): loop oracles, pml, errors, config."""

import json
import math

import pytest
import torch
from pytorch_metric_learning import losses

from quaterion.loss import ArcFaceLoss, CenterLoss, CosFaceLoss, SoftmaxLoss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
G3 = torch.tensor([1, 2, 0, 0, 2, 1])
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def unit(vector):
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def cross_entropy(logits, target):
    top = max(logits)
    return -logits[target] + top + math.log(sum(math.exp(x - top) for x in logits))


def margin_oracle(loss, embeddings, groups, target_logit):
    columns = [unit(column) for column in loss.kernel.detach().T.tolist()]
    total = 0.0
    for row, group in zip(embeddings.tolist(), groups.tolist(), strict=True):
        cosines = [sum(a * b for a, b in zip(unit(row), c, strict=True)) for c in columns]
        cosines[group] = target_logit(cosines[group])
        total += cross_entropy([loss.scale * c for c in cosines], group)
    return total / len(groups)


def make(cls, dtype, **kwargs):
    torch.manual_seed(0)
    loss = cls(embedding_size=3, num_groups=3, **kwargs).to(dtype)
    with torch.no_grad():  # a kernel with a visible direction per class
        for parameter in loss.parameters():
            parameter.normal_()
    return loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_arcface_matches_loop_oracle(dtype):
    loss = make(ArcFaceLoss, dtype, scale=8.0, margin=0.3)
    embeddings = torch.tensor(E6, dtype=dtype)
    value = loss(embeddings=embeddings, groups=G3)
    expected = margin_oracle(loss, embeddings, G3, lambda c: math.cos(math.acos(c) + 0.3))
    assert value.dtype == dtype
    assert value.item() == pytest.approx(expected, rel=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cosface_is_lmcl(dtype):
    loss = make(CosFaceLoss, dtype, margin=0.35, scale=8.0)
    embeddings = torch.tensor(E6, dtype=dtype)
    value = loss(embeddings=embeddings, groups=G3)
    expected = margin_oracle(loss, embeddings, G3, lambda c: c - 0.35)
    assert value.item() == pytest.approx(expected, rel=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_matches_loop_oracle(dtype):
    loss = make(SoftmaxLoss, dtype, temperature=0.5)
    embeddings = torch.tensor(E6, dtype=dtype)
    columns = loss.kernel.detach().T.tolist()
    expected = sum(
        cross_entropy(
            [sum(a * b for a, b in zip(row, c, strict=True)) / 0.5 for c in columns], group
        )
        for row, group in zip(embeddings.tolist(), G3.tolist(), strict=True)
    ) / len(G3)
    assert loss(embeddings, G3).item() == pytest.approx(expected, rel=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_center_matches_loop_oracle(dtype):
    loss = make(CenterLoss, dtype, lambda_c=0.7)
    embeddings = torch.tensor(E6, dtype=dtype)
    centers = loss.centers.detach().tolist()
    squares = [
        (a - b) ** 2
        for row, group in zip(embeddings.tolist(), G3.tolist(), strict=True)
        for a, b in zip(unit(row), centers[group], strict=True)
    ]
    expected = 0.7 * sum(squares) / len(squares)
    assert loss(embeddings, G3).item() == pytest.approx(expected, rel=TOLERANCE[dtype])


def random_batch(num_groups):
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(20, 16, generator=gen, dtype=torch.float64)
    return embeddings, torch.randint(0, num_groups, (20,), generator=gen)


def test_arcface_matches_pytorch_metric_learning():
    embeddings, groups = random_batch(5)
    ours = ArcFaceLoss(16, 5, scale=64.0, margin=0.5).double()
    pml = losses.ArcFaceLoss(5, 16, margin=math.degrees(0.5), scale=64).double()
    pml.W.data.copy_(ours.kernel.data)
    # pml switches to a linear penalty beyond theta > pi - m; random 16-d vectors stay below
    cosine = torch.nn.functional.normalize(embeddings, dim=1) @ torch.nn.functional.normalize(
        ours.kernel, dim=0
    )
    assert (torch.acos(cosine.gather(1, groups[:, None])) < math.pi - 0.5).all()
    assert ours(embeddings, groups).item() == pytest.approx(
        pml(embeddings, groups).item(), rel=1e-9
    )


def test_cosface_matches_pytorch_metric_learning():
    embeddings, groups = random_batch(5)
    ours = CosFaceLoss(16, 5, margin=0.35, scale=64.0).double()
    pml = losses.CosFaceLoss(5, 16, margin=0.35, scale=64).double()
    pml.W.data.copy_(ours.kernel.data)
    assert ours(embeddings, groups).item() == pytest.approx(
        pml(embeddings, groups).item(), rel=1e-9
    )


def test_arcface_gradient_is_finite_when_an_embedding_equals_its_class_direction():
    loss = ArcFaceLoss(3, 3)
    embeddings = loss.kernel.detach().T.clone().requires_grad_()  # cos(theta_target) == 1
    loss(embeddings, torch.arange(3)).backward()
    assert torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize(
    "loss",
    [SoftmaxLoss(3, 3), ArcFaceLoss(3, 3), CosFaceLoss(3, 3), CenterLoss(3, 3)],
    ids=lambda loss: type(loss).__name__,
)
def test_out_of_range_or_float_group_ids_raise_value_error(loss):
    embeddings = torch.tensor(E6)
    assert loss(embeddings, G3).dim() == 0
    with pytest.raises(
        ValueError, match=r"must lie in \[0, 2\] \(num_groups=3\), got ids in \[1, 3\]"
    ):
        loss(embeddings, G3 + 1)
    with pytest.raises(ValueError, match=r"got ids in \[-1, 1\]"):
        loss(embeddings, G3 - 1)
    with pytest.raises(ValueError, match="integer tensor of class ids"):
        loss(embeddings, G3.float())


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SoftmaxLoss, {"embedding_size": 4, "num_groups": 7, "temperature": 0.1}),
        (ArcFaceLoss, {"embedding_size": 4, "num_groups": 7, "scale": 30.0, "margin": 0.2}),
        (CosFaceLoss, {"embedding_size": 4, "num_groups": 7, "margin": 0.2, "scale": 30.0}),
        (CenterLoss, {"embedding_size": 4, "num_groups": 7, "lambda_c": 0.1}),
    ],
)
def test_config_dict_holds_the_constructor_arguments(cls, kwargs):
    config = json.loads(json.dumps(cls(**kwargs).get_config_dict()))
    assert config == kwargs
    assert cls(**config).get_config_dict() == kwargs


def test_learnable_parameters_have_the_documented_shapes():
    assert SoftmaxLoss(4, 7).kernel.shape == (4, 7)
    assert ArcFaceLoss(4, 7).kernel.shape == (4, 7)
    assert CosFaceLoss(4, 7).kernel.shape == (4, 7)
    assert CenterLoss(4, 7).centers.shape == (7, 4)
    assert ArcFaceLoss(4, 7).kernel.std().item() == pytest.approx(0.01, rel=0.5)


@pytest.mark.parametrize("cls", [SoftmaxLoss, ArcFaceLoss, CosFaceLoss, CenterLoss])
@pytest.mark.parametrize("num_groups", [0, -3, 2.5, True])
def test_a_group_count_that_is_not_a_positive_integer_is_refused(cls, num_groups):
    with pytest.raises(ValueError, match=r"num_groups must be a positive integer.*GroupLabels"):
        cls(embedding_size=3, num_groups=num_groups)
    with pytest.raises(ValueError, match="embedding_size must be a positive integer"):
        cls(embedding_size=0, num_groups=2)
