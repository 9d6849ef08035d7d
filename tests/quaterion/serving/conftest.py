"""A small real servable (frozen MiniLM + a seeded linear head) and a store it indexed with
`quaterion index` (servable's vectors plus the frozen baseline), shared by the serving tests."""

import pytest
import torch

GROUPS = {
    "animal": [
        "a small cat sleeping on the sofa",
        "a large dog barking at the postman",
        "a young horse running in the field",
        "a wild wolf howling at night",
        "a tame rabbit eating a carrot",
        "a parrot repeating words",
        "a goldfish swimming in a bowl",
        "a cow grazing in a meadow",
    ],
    "tool": [
        "a sharp knife for cutting bread",
        "a heavy hammer for driving nails",
        "a long saw for cutting wood",
        "a metal wrench for tightening bolts",
        "a small drill for making holes",
        "a screwdriver with a yellow handle",
        "a pair of pliers for gripping wire",
        "a tape measure for lengths",
    ],
    "food": [
        "a sweet cake with chocolate icing",
        "a bowl of hot vegetable soup",
        "fresh bread from the bakery",
        "a ripe apple from the orchard",
        "a plate of spaghetti with tomato sauce",
        "a cup of strawberry yoghurt",
        "grilled fish with lemon",
        "a slice of cheese pizza",
    ],
}


@pytest.fixture(scope="session")
def groups():
    """Group name -> texts of the indexed data (written to the CSV as ids 0, 1, 2)."""
    return GROUPS


def same_group(stored, name):
    """True when a payload's group (an id or a name) is the group called `name`."""
    return str(stored) in (name, str(list(GROUPS).index(name)))


@pytest.fixture(scope="session")
def servable(tmp_path_factory):
    """Directory of a servable: frozen MiniLM and a seeded 384 -> 32 linear head."""
    pytest.importorskip("sentence_transformers")
    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import LinearHead

    torch.manual_seed(0)
    model = SimilarityModel(SentenceTransformerEncoder(minilm_path()), LinearHead(384, 32))
    path = tmp_path_factory.mktemp("serving") / "servable"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def groups_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving-data") / "groups.csv"
    # integer group ids: a reader that keeps string names may write either into payloads
    rows = [f'"{text}",{index}' for index, texts in enumerate(GROUPS.values()) for text in texts]
    path.write_text("obj,group\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def store(tmp_path_factory, servable, groups_csv):
    """Directory of the Edge store `quaterion index` wrote for `groups_csv` (with baseline)."""
    pytest.importorskip("qdrant_edge")
    from quaterion.cli import main

    path = tmp_path_factory.mktemp("serving-store") / "store"
    assert main(["index", str(servable), str(groups_csv), "--store", str(path)]) == 0
    return path
