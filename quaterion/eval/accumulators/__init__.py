"""Accumulators: collect embeddings and targets batch by batch for a whole-dataset metric."""

from quaterion.eval.accumulators.accumulator import Accumulator
from quaterion.eval.accumulators.group_accumulator import GroupAccumulator
from quaterion.eval.accumulators.pair_accumulator import PairAccumulator

__all__ = ["Accumulator", "GroupAccumulator", "PairAccumulator"]
