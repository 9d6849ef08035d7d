"""Real data for similarity learning: WordNet, Fashion-MNIST and users' own CSV / JSONL files,
and random crops and flips of images (`AugmentedGroups`).

WordNet and Fashion-MNIST are read from the Debian packages `wordnet-base` and
`dataset-fashion-mnist`; nothing is downloaded or copied into the repository.
"""

from quaterion.data.augment import AugmentedGroups, random_crop_flip
from quaterion.data.fashion_mnist import (
    CLASS_NAMES,
    fashion_mnist_groups,
    load_fashion_mnist,
    read_idx,
)
from quaterion.data.sampling import subsample, train_held_out_split
from quaterion.data.user_files import DataFileError, read_group_samples, read_pair_samples
from quaterion.data.wordnet import (
    LEXNAMES,
    Synset,
    definition_groups,
    load_wordnet,
    parse_synset,
    synonym_groups,
    word_definition_pairs,
)

__all__ = [
    "AugmentedGroups",
    "CLASS_NAMES",
    "DataFileError",
    "LEXNAMES",
    "Synset",
    "definition_groups",
    "fashion_mnist_groups",
    "load_fashion_mnist",
    "load_wordnet",
    "parse_synset",
    "random_crop_flip",
    "read_group_samples",
    "read_idx",
    "read_pair_samples",
    "subsample",
    "synonym_groups",
    "train_held_out_split",
    "word_definition_pairs",
]
