"""Samples, datasets and data loaders for similarity learning."""

from quaterion.dataset.group_labels import GroupLabels
from quaterion.dataset.m_per_class_sampler import MPerClassBatchSampler
from quaterion.dataset.neighbour_groups_sampler import NeighbourGroupsBatchSampler
from quaterion.dataset.similarity_data_loader import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityDataLoader,
)
from quaterion.dataset.similarity_dataset import SimilarityGroupDataset
from quaterion.dataset.similarity_samples import SimilarityGroupSample, SimilarityPairSample

__all__ = [
    "GroupLabels",
    "GroupSimilarityDataLoader",
    "MPerClassBatchSampler",
    "NeighbourGroupsBatchSampler",
    "PairsSimilarityDataLoader",
    "SimilarityDataLoader",
    "SimilarityGroupDataset",
    "SimilarityGroupSample",
    "SimilarityPairSample",
]
