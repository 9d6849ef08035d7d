"""Data shared by the text examples: WordNet nouns, read once per process."""

from __future__ import annotations

from functools import cache

from quaterion.data import (
    LEXNAMES,
    Synset,
    definition_groups,
    load_wordnet,
    subsample,
    train_held_out_split,
)
from quaterion.dataset import SimilarityGroupSample

CATEGORIES = ("noun.animal", "noun.artifact", "noun.feeling", "noun.food", "noun.person")


@cache
def noun_synsets() -> tuple[Synset, ...]:
    """All WordNet noun synsets (parsed once: several examples may run in one process)."""
    return tuple(load_wordnet(("noun",)))


def lexical_definitions(
    size: int, categories: tuple[str, ...] = CATEGORIES, seed: int = 0
) -> tuple[list[SimilarityGroupSample], list[SimilarityGroupSample]]:
    """(train, held-out) definitions of `categories`, `size` in all; group = category index."""
    index = {LEXNAMES.index(name): position for position, name in enumerate(categories)}
    samples = [
        SimilarityGroupSample(obj=sample.obj, group=index[sample.group])
        for sample in definition_groups(list(noun_synsets()))
        if sample.group in index
    ]
    return train_held_out_split(subsample(samples, size, seed), held_out_fraction=0.25, seed=seed)
