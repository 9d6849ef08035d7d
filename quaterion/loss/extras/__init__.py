"""Losses that wrap optional third-party libraries."""

from quaterion.loss.extras.pytorch_metric_learning_wrapper import PytorchMetricLearningWrapper

__all__ = ["PytorchMetricLearningWrapper"]
