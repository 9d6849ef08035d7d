"""Metrics of group-labelled data."""

from quaterion.eval.group.group_metric import GroupMetric
from quaterion.eval.group.group_retrieval_metrics import GroupRetrievalMetrics
from quaterion.eval.group.retrieval_r_precision import RetrievalRPrecision, retrieval_r_precision

__all__ = ["GroupMetric", "GroupRetrievalMetrics", "RetrievalRPrecision", "retrieval_r_precision"]
