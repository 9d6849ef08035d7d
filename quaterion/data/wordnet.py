"""WordNet 3.0 synsets from the Debian package `wordnet-base`, and similarity tasks built on them.

The `data.{noun,verb,adj,adv}` files follow the documented wndb(5WN) format; each synset line
reads `offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt pointers [frames] | gloss`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from quaterion.dataset.similarity_samples import SimilarityGroupSample, SimilarityPairSample

WORDNET_DIR = Path("/usr/share/wordnet")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
# lexnames(5WN): lexicographer file names, indexed by the lex_filenum field.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
    "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication",
    "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive",
    "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_EXAMPLE = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Synset:
    """One WordNet synset: its words, gloss and lexicographer category.

    Args:
        offset: byte offset in its data file (unique per part of speech).
        pos: ss_type: n, v, a, s (satellite adjective) or r.
        lex_filenum: index into `LEXNAMES`, 0..44.
        lemmas: its words, underscores turned into spaces, adjective markers dropped.
        gloss: the full gloss: definition(s), then quoted examples.
        definition: the gloss without the examples.
        examples: the quoted usage examples.
    """

    offset: int  # byte offset in its data file (unique per part of speech)
    pos: str  # ss_type: n, v, a, s (satellite adjective) or r
    lex_filenum: int  # index into LEXNAMES, 0..44
    lemmas: tuple[str, ...]  # words, underscores turned into spaces, adjective markers dropped
    gloss: str  # full gloss: definition(s) then quoted examples
    definition: str  # gloss without the examples
    examples: tuple[str, ...]  # the quoted usage examples

    @property
    def lexname(self) -> str:
        """Lexicographer category name, e.g. 'noun.artifact'."""
        return LEXNAMES[self.lex_filenum]


def _split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Gloss -> (definition, examples).

    Examples are the quoted strings from the first `; "` on (quotes inside a definition,
    e.g. `in the phrase "make strides"`, stay in the definition).
    """
    start = 0 if gloss.startswith('"') else gloss.find('; "')
    if start < 0:
        return gloss, ()
    return gloss[:start].strip(), tuple(_EXAMPLE.findall(gloss[start:]))


def _lemma(word: str) -> str:
    """Word field -> lemma: underscores become spaces, adjective markers like `(p)` go."""
    if word.endswith(")"):
        word = _ADJECTIVE_MARKER.sub("", word)
    return word.replace("_", " ")


def parse_synset(line: str) -> Synset:
    """Parse one synset line of a WordNet `data.*` file (raises ValueError if malformed).

    Args:
        line: one line of a `data.noun` / `data.verb` / ... file.
    """
    fields, separator, gloss = line.partition(" | ")
    head = fields.split(maxsplit=4)  # offset, lex_filenum, ss_type, w_cnt, rest
    if not separator or len(head) < 5:
        raise ValueError("not a synset line (expected 'offset lex_filenum ss_type ... | gloss')")
    word_count = int(head[3], 16)
    words = head[4].split(maxsplit=2 * word_count)[: 2 * word_count : 2]
    if len(words) != word_count:
        raise ValueError(f"announces {word_count} words but holds {len(words)}")
    lex_filenum = int(head[1])
    if not 0 <= lex_filenum < len(LEXNAMES):
        raise ValueError(f"lex_filenum {lex_filenum} outside 0..{len(LEXNAMES) - 1}")
    gloss = gloss.strip()
    definition, examples = _split_gloss(gloss)
    return Synset(
        offset=int(head[0]),
        pos=head[2],
        lex_filenum=lex_filenum,
        lemmas=tuple(_lemma(word) for word in words),
        gloss=gloss,
        definition=definition,
        examples=examples,
    )


def load_wordnet(
    parts_of_speech: tuple[str, ...] = PARTS_OF_SPEECH,
    directory: str | os.PathLike = WORDNET_DIR,
) -> list[Synset]:
    """All synsets of the given parts of speech (117,659 for all four), in file order.

    Args:
        parts_of_speech: which data files to read: `"noun"`, `"verb"`, `"adj"`, `"adv"`.
        directory: the WordNet dictionary folder (default: where `wordnet-base` installs it).
    """
    unknown = [pos for pos in parts_of_speech if pos not in PARTS_OF_SPEECH]
    if unknown:
        raise ValueError(f"Unknown parts of speech {unknown}; choose from {PARTS_OF_SPEECH}")
    synsets = []
    for pos in parts_of_speech:
        path = Path(directory) / f"data.{pos}"
        if not path.is_file():
            raise FileNotFoundError(
                f"WordNet data file {path} is missing; install the Debian package "
                "`wordnet-base` (apt-get install wordnet-base) or pass `directory=`"
            )
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.startswith("  "):  # license header
                    continue
                try:
                    synsets.append(parse_synset(line))
                except ValueError as exc:
                    raise ValueError(f"{path}:{line_number}: {exc}") from exc
    return synsets


def definition_groups(
    synsets: list[Synset], with_examples: bool = False
) -> list[SimilarityGroupSample]:
    """Definitions grouped by lexical category (group = lex_filenum, see `LEXNAMES`).

    Args:
        synsets: synsets from `load_wordnet`.
        with_examples: use the whole gloss (definition and examples) as the object.

    Returns:
        one `SimilarityGroupSample` per synset.
    """
    return [
        SimilarityGroupSample(
            obj=synset.gloss if with_examples else synset.definition, group=synset.lex_filenum
        )
        for synset in synsets
        if synset.definition or with_examples
    ]


def synonym_groups(synsets: list[Synset], min_lemmas: int = 2) -> list[SimilarityGroupSample]:
    """Words grouped by synset (synonyms), for synsets with at least `min_lemmas` words.

    Groups are numbered 0, 1, ... in the order of the kept synsets.

    Args:
        synsets: synsets from `load_wordnet`.
        min_lemmas: smallest number of distinct words a synset needs to be kept.
    """
    samples = []
    kept = (synset for synset in synsets if len(set(synset.lemmas)) >= min_lemmas)
    for group, synset in enumerate(kept):
        samples.extend(SimilarityGroupSample(obj=lemma, group=group) for lemma in synset.lemmas)
    return samples


def word_definition_pairs(
    synsets: list[Synset], all_lemmas: bool = False
) -> list[SimilarityPairSample]:
    """(word, definition) positive pairs: the first word of each synset, or every word.

    Args:
        synsets: synsets from `load_wordnet`.
        all_lemmas: one pair per word of the synset, not only its first word.

    Returns:
        positive `SimilarityPairSample`s (score 1.0).
    """
    return [
        SimilarityPairSample(obj_a=lemma, obj_b=synset.definition, score=1.0)
        for synset in synsets
        if synset.definition
        for lemma in (synset.lemmas if all_lemmas else synset.lemmas[:1])
    ]


#: 12 broad noun lexical categories with many synsets each: a balanced, clearly separable task
BROAD_NOUN_CATEGORIES: tuple[str, ...] = (
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.cognition",
    "noun.communication",
    "noun.feeling",
    "noun.food",
    "noun.person",
    "noun.plant",
    "noun.state",
    "noun.substance",
)
