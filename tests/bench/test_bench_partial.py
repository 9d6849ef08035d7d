"""bench/bench_partial.py: its split keeps training and held-out texts apart; bad options are
refused before anything runs (the run itself takes minutes: see its --quick flag)."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_partial.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_partial", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_is_by_object_and_balanced(bench):
    texts = {"a": [f"a{i}" for i in range(9)] + ["a0"], "b": [f"b{i}" for i in range(7)]}
    task = bench.split_task(texts, train=4, held_out=3, seed=1)
    train, held_out = task["train"], task["held_out"]
    assert len(train) == 8 and len(held_out) == 6 and task["categories"] == ["a", "b"]
    assert not {text for text, _ in train} & {text for text, _ in held_out}
    assert sorted(group for _, group in held_out) == [0, 0, 0, 1, 1, 1]
    assert bench.split_task(texts, 4, 3, seed=1) == task  # seeded
    with pytest.raises(ValueError, match="category 1 has only 7 distinct definitions"):
        bench.split_task(texts, train=5, held_out=3, seed=1)


def test_rows_cover_every_configuration(bench):
    names = [row["name"] for row in bench.row_specs(bench.parse_args(["--sampler-seeds", "2"]))]
    assert names[:6] == ["frozen", "head", "top1@0.0001", "top1@0.0003", "top2@0.0001",
                         "top2@0.0003"]  # fmt: skip
    assert [name for name in names if name.startswith("st-")] == [
        "st-BatchAllTripletLoss@5e-05",
        "st-BatchAllTripletLoss@0.0001",
        "st-BatchHardSoftMarginTripletLoss@5e-05",
    ]
    batches = ("shuffle", "mpc", "nbr", "nbr1")
    assert names[-8:] == [f"head+{b}/s{s}" for b in batches for s in (1, 2)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--held-out-per-category", "1"], "at least 2 training and 2 held-out"),
        (["--st-runs", "MSELoss@1e-5"], "--st-runs takes LOSS@LR"),
        (["--st-runs", "BatchAllTripletLoss@fast"], "--st-runs takes LOSS@LR"),
    ],
)
def test_bad_options_are_refused(bench, argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err
