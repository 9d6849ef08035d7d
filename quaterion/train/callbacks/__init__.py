"""Lightning callbacks: the two Quaterion.fit adds to every trainer, StopOnSignal, and the
retrieval metrics a user may add."""

from quaterion.train.callbacks.cleanup_callback import CleanupCallback
from quaterion.train.callbacks.metrics_callback import MetricsCallback
from quaterion.train.callbacks.retrieval_callback import RetrievalMetricsCallback
from quaterion.train.callbacks.stop_on_signal import FitInterrupted, StopOnSignal

__all__ = [
    "CleanupCallback",
    "FitInterrupted",
    "MetricsCallback",
    "RetrievalMetricsCallback",
    "StopOnSignal",
]
