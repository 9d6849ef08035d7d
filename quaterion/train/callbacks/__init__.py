"""Lightning callbacks: the two Quaterion.fit adds to every trainer, StopOnSignal, and the
retrieval metrics and the neighbouring-groups batches a user may add."""

from quaterion.train.callbacks.cleanup_callback import CleanupCallback
from quaterion.train.callbacks.metrics_callback import MetricsCallback
from quaterion.train.callbacks.neighbour_groups_callback import NeighbourGroupsCallback
from quaterion.train.callbacks.retrieval_callback import RetrievalMetricsCallback
from quaterion.train.callbacks.stop_on_signal import FitInterrupted, StopOnSignal

__all__ = [
    "CleanupCallback",
    "FitInterrupted",
    "MetricsCallback",
    "NeighbourGroupsCallback",
    "RetrievalMetricsCallback",
    "StopOnSignal",
]
