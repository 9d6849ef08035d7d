"""AttachedMetric: delegation, log options, the exact missing-attribute message, copies."""

import copy

import pytest
import torch

from quaterion import TrainableModel
from quaterion.distances import Distance
from quaterion.eval.attached_metric import AttachedMetric
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.pair import RetrievalPrecision
from quaterion.loss.contrastive_loss import ContrastiveLoss
from quaterion.utils.enums import TrainStage
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EmptyHead


class IdentityEncoder(Encoder):
    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 3

    def forward(self, batch):
        return batch


class Model(TrainableModel):
    def __init__(self, metrics):
        self.metrics = metrics
        super().__init__()

    def configure_encoders(self):
        return IdentityEncoder()

    def configure_head(self, input_embedding_size):
        return EmptyHead(input_embedding_size)

    def configure_loss(self):
        return ContrastiveLoss()

    def configure_metrics(self):
        return self.metrics


@pytest.mark.parametrize(
    "metrics, count",
    [
        (None, 0),
        (AttachedMetric("rp", RetrievalPrecision(k=1)), 1),
        (
            [
                AttachedMetric("rp", RetrievalPrecision(k=1)),
                AttachedMetric("rp2", RetrievalPrecision(k=2)),
            ],
            2,
        ),
    ],
)
def test_a_model_attaches_any_number_of_metrics(metrics, count):
    assert len(Model(metrics).attached_metrics) == count


def test_stages_and_log_options():
    metric = AttachedMetric("rp", RetrievalPrecision(k=2), prog_bar=True, on_prog_bar=True)
    assert metric.stages == [TrainStage.TRAIN, TrainStage.VALIDATION]
    assert len(metric.stages) == 2
    assert metric.log_options == {
        "logger": True,
        "prog_bar": True,
        "on_step": None,
        "on_epoch": None,
        "on_prog_bar": True,
    }


def test_delegates_to_the_metric():
    metric = AttachedMetric("rrp", RetrievalRPrecision(Distance.MANHATTAN))
    embeddings = torch.Tensor([[1, 1], [8, 8], [4, 4], [6, 7]])
    groups = torch.LongTensor([1, 2, 1, 2])
    assert metric.compute(embeddings, groups).item() == pytest.approx(0.75)
    metric.update(embeddings, groups)
    assert metric.evaluate().item() == pytest.approx(0.75)
    metric.reset()
    assert metric.accumulator.embeddings.numel() == 0


def test_missing_attribute_message():
    metric = AttachedMetric("rp", RetrievalPrecision(k=2))
    assert metric.k == 2
    with pytest.raises(AttributeError) as error:
        metric.no_such_attribute  # noqa: B018
    assert str(error.value) == "`AttachedMetric` object (rp) has no attribute no_such_attribute"


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_copies_keep_metric_and_options(copier):
    metric = AttachedMetric("rp", RetrievalPrecision(k=3), on_epoch=True)
    clone = copier(metric)
    assert isinstance(clone, AttachedMetric)
    assert clone.k == 3 and clone.name == "rp"
    assert clone.log_options == metric.log_options
    if copier is copy.deepcopy:
        assert clone._metric is not metric._metric
