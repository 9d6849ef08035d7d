"""WordNet 3.0 parser and tasks, checked against the raw files of `wordnet-base`."""

from pathlib import Path

import pytest

from quaterion.data import (
    LEXNAMES,
    definition_groups,
    load_wordnet,
    parse_synset,
    synonym_groups,
    word_definition_pairs,
)
from quaterion.data.wordnet import WORDNET_DIR

pytestmark = pytest.mark.skipif(
    not (WORDNET_DIR / "data.noun").is_file(), reason="Debian package wordnet-base missing"
)
DOG = (
    "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 "
    "~ 01322604 n 0000 | a member of the genus Canis; occurs in many breeds; "
    '"the dog barked all night"  \n'
)


@pytest.fixture(scope="module")
def synsets():
    return load_wordnet()


def count_synset_lines(path: Path) -> int:
    """Independent count: data lines start with an 8-digit offset, header lines with spaces."""
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line[:8].isdigit())


def test_loads_all_117659_synsets_in_45_categories(synsets):
    assert len(synsets) == 117_659
    per_pos = {pos: count_synset_lines(WORDNET_DIR / f"data.{pos}") for pos in ("noun", "verb")}
    assert sum(s.pos == "n" for s in synsets) == per_pos["noun"]
    assert sum(s.pos == "v" for s in synsets) == per_pos["verb"]
    assert len({s.lex_filenum for s in synsets}) == len(LEXNAMES) == 45


def test_lexnames_agree_with_parts_of_speech(synsets):
    prefix = {"n": "noun.", "v": "verb.", "a": "adj.", "s": "adj.", "r": "adv."}
    assert all(s.lexname.startswith(prefix[s.pos]) for s in synsets)
    dog = next(s for s in synsets if s.pos == "n" and "domestic dog" in s.lemmas)
    assert dog.lexname == "noun.animal"


def test_parse_synset_by_hand():
    synset = parse_synset(DOG)
    assert synset.offset == 2084071 and synset.pos == "n" and synset.lex_filenum == 5
    assert synset.lemmas == ("dog", "domestic dog", "Canis familiaris")
    assert synset.definition == "a member of the genus Canis; occurs in many breeds"
    assert synset.examples == ("the dog barked all night",)
    assert synset.gloss.endswith('"the dog barked all night"')
    marked = parse_synset('00014358 00 s 02 abounding 0 galore(ip) 0 000 | plenty; "x galore"')
    assert marked.lemmas == ("abounding", "galore")
    inner = parse_synset('01 00 s 01 stride 0 000 | progress (in the phrase "make strides")')
    assert inner.definition == 'progress (in the phrase "make strides")' and inner.examples == ()


def test_tasks_on_adverbs():
    adverbs = load_wordnet(("adv",))
    groups = definition_groups(adverbs)
    assert len(groups) == len(adverbs)
    assert {g.group for g in groups} == {LEXNAMES.index("adv.all")}
    assert groups[0].obj == adverbs[0].definition
    with_examples = definition_groups(adverbs, with_examples=True)
    assert [g.obj for g in with_examples] == [s.gloss for s in adverbs]

    synonyms = synonym_groups(adverbs)
    members: dict[int, list[str]] = {}
    for sample in synonyms:
        members.setdefault(sample.group, []).append(sample.obj)
    multi = [s for s in adverbs if len(set(s.lemmas)) >= 2]
    assert len(members) == len(multi)
    assert [members[i] for i in range(len(multi))] == [list(s.lemmas) for s in multi]

    pairs = word_definition_pairs(adverbs)
    assert [(p.obj_a, p.obj_b, p.score) for p in pairs[:3]] == [
        (s.lemmas[0], s.definition, 1.0) for s in adverbs[:3]
    ]
    assert len(word_definition_pairs(adverbs, all_lemmas=True)) == sum(
        len(s.lemmas) for s in adverbs
    )


def test_errors_name_the_package_and_the_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_wordnet(("noun",), directory=tmp_path)
    (tmp_path / "data.adv").write_text("  license header\n00001740 02 r 01 able 0 000 | ok\nbad\n")
    with pytest.raises(ValueError, match=r"data\.adv:3"):
        load_wordnet(("adv",), directory=tmp_path)
    with pytest.raises(ValueError, match="choose from"):
        load_wordnet(("nouns",))
