"""A user's own labelled CSV through `quaterion fit / evaluate / index / search`: string group
labels (intent names) are mapped to ids and shown by name; data that cannot teach similarity, or
that is not UTF-8, is refused before any encoder runs."""

import importlib.util
import json

import pytest
from cli_support import run_cli, write_fit_config

from quaterion.cli import main
from quaterion.cli.config import DataConfig
from quaterion.cli.data_sources import load_task
from quaterion.data import CLASS_NAMES
from quaterion.data.fashion_mnist import FASHION_MNIST_DIR
from quaterion.data.wordnet import WORDNET_DIR

INTENTS = {
    "billing": ["why was I charged twice", "my invoice is wrong", "refund my last payment",
                "update my credit card", "the payment failed", "download my receipts"],
    "cancel": ["cancel my subscription", "close my account", "stop my renewal",
               "end my plan", "unsubscribe me", "terminate my contract"],
    "shipping": ["where is my package", "my order has not arrived", "track my parcel",
                 "delivery is late", "do you ship to Canada", "my parcel arrived damaged"],
    "password": ["I forgot my password", "reset my password", "the reset link fails",
                 "I can't log in", "my account is locked", "set a new password"],
}  # fmt: skip


def write_csv(path, rows, header="obj,group", encoding="utf-8"):
    path.write_bytes(
        (header + "\n" + "\n".join(f'"{t}",{g}' for t, g in rows) + "\n").encode(encoding)
    )
    return path


def write_config(root, data_path, tiny_bert, loss="TripletLoss", loss_kwargs=None, columns=None):
    """A fit config in `root` (cache and servable there too) over the intents file."""
    data = {"val_fraction": 0.25, **({"columns": columns} if columns else {})}
    return write_fit_config(
        root / "fit.json",
        tiny_bert,
        data_path,
        data,
        head={"name": "LinearHead", "kwargs": {"output_size": 16}},
        loss={"name": loss, "kwargs": loss_kwargs or {"mining": "all"}},
        batch_size=8,
        cache_dir=str(root / "cache"),
    )


@pytest.fixture(scope="module")
def intents_csv(tmp_path_factory):
    rows = [(text, name) for name, texts in INTENTS.items() for text in texts]
    return write_csv(tmp_path_factory.mktemp("data") / "intents.csv", rows)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_bert, intents_csv):
    """(config, servable, fit output) of one `quaterion fit` on string intent labels."""
    root = tmp_path_factory.mktemp("fit")
    config = write_config(root, intents_csv, tiny_bert)
    code = main(["fit", str(config)])
    assert code == 0
    return config, root / "servable"


def test_fit_trains_on_string_labels_and_names_the_groups(capsys, tiny_bert, intents_csv, tmp_path):
    config = write_config(tmp_path, intents_csv, tiny_bert)
    code, out, err = run_cli(capsys, "fit", config)
    assert code == 0, err
    assert "Groups: billing (6), cancel (6), password (6), shipping (6)" in out
    assert (tmp_path / "servable" / "config.json").is_file()


def test_evaluate_names_the_groups_and_scores_them(capsys, fitted, intents_csv):
    config, servable = fitted
    code, out, err = run_cli(capsys, "evaluate", servable, intents_csv, "-k", "1", "5")
    assert code == 0, err
    assert "groups: billing (6), cancel (6), password (6), shipping (6)" in out
    assert "precision@5" in out
    code, out, err = run_cli(capsys, "evaluate", servable, config)  # held-out split, by name too
    assert code == 0, err
    assert "groups: " in out and "billing" in out


def test_evaluate_refuses_k_beyond_the_candidates(capsys, fitted, intents_csv):
    _, servable = fitted
    code, out, err = run_cli(capsys, "evaluate", servable, intents_csv, "-k", "1", "100")
    assert code != 0 and out == ""
    assert "-k 100" in err and "23 candidates" in err


def test_index_payloads_and_search_results_carry_group_names(capsys, fitted, intents_csv, tmp_path):
    pytest.importorskip("qdrant_edge")
    from quaterion.serving import QdrantEdgeStore

    _, servable = fitted
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "index", servable, intents_csv, "--store", store)
    assert code == 0, err
    code, out, err = run_cli(capsys, "search", store, servable, "I forgot my password", "-k", "2")
    assert code == 0, err
    assert "[password] I forgot my password" in out.splitlines()[0]
    code, out, err = run_cli(capsys, "search", store, servable, "password", "-k", "25")
    assert code != 0 and "-k 25 is larger than the 24 points" in err
    with QdrantEdgeStore(str(store), dim=16, distance="cosine") as opened:
        payloads = opened.search(opened_query(servable), k=24).payloads[0]
    assert {payload["label"] for payload in payloads} == set(INTENTS)


def opened_query(servable):
    from quaterion_models import SimilarityModel

    return SimilarityModel.load(servable).encode(["where is my package"], to_numpy=False)


def test_class_losses_get_one_class_per_label_whatever_the_ids(tmp_path):
    rows = [(f"text {i} {label}", label) for i in range(4) for label in (-5, 10**12)]
    path = write_csv(tmp_path / "ids.csv", rows)
    task = load_task(DataConfig(kind="csv", path=str(path), val_fraction=0.25), "groups")
    assert task.num_groups == 2 and task.labels.names == (-5, 10**12)
    assert {s.group for s in task.labels.to_ids(task.train)} == {0, 1}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(f"text {i}", "billing") for i in range(8)], "1 group ('billing'); similarity needs"),
        ([(f"text {i}", f"intent {i}") for i in range(8)], "8 groups of one sample each"),
    ],
    ids=["one_category", "singletons"],
)
def test_data_without_similar_and_dissimilar_objects_is_refused_before_encoding(
    capsys, tiny_bert, tmp_path, rows, message
):
    config = write_config(tmp_path, write_csv(tmp_path / "data.csv", rows), tiny_bert)
    code, out, err = run_cli(capsys, "fit", config)
    assert code != 0 and message in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "servable").exists()


def test_evaluation_data_of_one_group_is_refused(capsys, fitted, tmp_path):
    _, servable = fitted
    data = write_csv(tmp_path / "one.csv", [("a", "x"), ("b", "x"), ("c", "x")])
    code, out, err = run_cli(capsys, "evaluate", servable, data, "-k", "1")
    assert code != 0 and "the evaluation data has 1 group ('x')" in err


def test_a_latin1_file_is_refused_with_line_and_iconv_command(capsys, tiny_bert, tmp_path):
    rows = [(t, name) for name, texts in INTENTS.items() for t in texts] + [("crème", "cancel")]
    data = write_csv(tmp_path / "latin.csv", rows, encoding="latin-1")
    code, out, err = run_cli(capsys, "fit", write_config(tmp_path, data, tiny_bert))
    assert code != 0
    assert f"{data}, line 26: not UTF-8" in err and "iconv -f latin1 -t utf-8" in err
    assert not (tmp_path / "cache").exists()


def test_a_bom_and_a_200kB_field_train_like_any_other_file(capsys, tiny_bert, tmp_path):
    rows = [(t, name) for name, texts in INTENTS.items() for t in texts]
    rows[0] = ("long " * 40_000, "billing")
    data = write_csv(tmp_path / "bom.csv", rows, encoding="utf-8-sig")
    code, out, err = run_cli(capsys, "fit", write_config(tmp_path, data, tiny_bert))
    assert code == 0, err
    assert "Groups: billing (6), cancel (6), password (6), shipping (6)" in out


def test_softmax_loss_trains_on_string_labels(capsys, tiny_bert, intents_csv, tmp_path):
    config = write_config(tmp_path, intents_csv, tiny_bert, "SoftmaxLoss", {"temperature": 0.1})
    code, out, err = run_cli(capsys, "fit", config)
    assert code == 0, err
    assert json.loads((tmp_path / "servable" / "config.json").read_text())


def test_a_file_with_its_own_column_names_trains_through_data_columns(capsys, tiny_bert, tmp_path):
    rows = [(text, name) for name, texts in INTENTS.items() for text in texts]
    data = write_csv(tmp_path / "intents.csv", rows, header="text,category")
    code, out, err = run_cli(capsys, "fit", write_config(tmp_path, data, tiny_bert))
    assert code != 0 and "data.columns" in err  # the error says how to name them
    columns = {"obj": "text", "group": "category"}
    code, out, err = run_cli(
        capsys, "fit", write_config(tmp_path, data, tiny_bert, columns=columns)
    )
    assert code == 0, err
    assert "Groups: billing (6), cancel (6), password (6), shipping (6)" in out


def test_evaluate_and_index_read_a_files_own_columns(capsys, fitted, tmp_path):
    _, servable = fitted
    rows = [(text, name) for name, texts in INTENTS.items() for text in texts]
    data = write_csv(tmp_path / "intents.csv", rows, header="text,category")
    code, out, err = run_cli(capsys, "evaluate", servable, data, "-k", "1")
    assert code != 0 and "--columns obj=text group=category" in err
    columns = ["--columns", "obj=text", "group=category"]
    code, out, err = run_cli(capsys, "evaluate", servable, data, "-k", "1", *columns)
    assert code == 0, err
    assert "groups: billing (6), cancel (6), password (6), shipping (6)" in out
    code, out, err = run_cli(capsys, "evaluate", servable, data, "--columns", "obj:text")
    assert code != 0 and "FIELD=COLUMN" in err
    code, out, err = run_cli(capsys, "evaluate", servable, data, "--columns", "label=category")
    assert code != 0 and "--columns names fields ['label']" in err
    if importlib.util.find_spec("qdrant_edge") is not None:
        code, out, err = run_cli(
            capsys, "index", servable, data, "--store", tmp_path / "s", *columns
        )
        assert code == 0, err
        assert "Indexed 24 objects" in out


@pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="wordnet-base missing")
def test_wordnet_categories_keep_their_names():
    config = DataConfig(kind="wordnet-lexical", categories=["noun.food", "noun.animal"], limit=40)
    assert load_task(config, "groups").labels.names == ("noun.animal", "noun.food")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist missing")
def test_fashion_mnist_classes_keep_their_names():
    labels = load_task(DataConfig(kind="fashion-mnist", limit=200), "groups").labels
    assert labels.names == tuple(sorted(CLASS_NAMES))
