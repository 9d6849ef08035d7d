"""What a `quaterion` run promises around training: the same seed gives the same weights, every
output place is checked before any work, and a user's mistake is one line with exit status 1 or
2 (the traceback only with --debug)."""

from __future__ import annotations

import csv
import errno
import os
import signal
from pathlib import Path

import pytest
import torch
from cli_support import write_fit_config, write_groups_csv

import quaterion.cli as cli
from quaterion.cli import Terminated, main
from quaterion.cli.config import ConfigError
from quaterion.train.callbacks import FitInterrupted
from quaterion_models import SimilarityModel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_bert) -> tuple[Path, Path]:
    return tiny_bert, write_groups_csv(tmp_path_factory.mktemp("inputs") / "groups.csv")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- determinism ----


def test_the_same_config_and_seed_give_bit_identical_head_weights(capsys, inputs, tmp_path):
    heads = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        config = write_fit_config(tmp_path / name / "fit.json", *inputs, seed=3)
        assert run(capsys, "fit", config)[0] == 0
        heads.append(SimilarityModel.load(tmp_path / name / "servable").head.state_dict())
    assert heads[0].keys() == heads[1].keys()
    for key in heads[0]:
        assert torch.equal(heads[0][key], heads[1][key]), key
    # and the seed matters: another seed starts from other weights
    other = write_fit_config(
        tmp_path / "other.json", *inputs, seed=4, epochs=1, output_dir=str(tmp_path / "o")
    )
    assert run(capsys, "fit", other)[0] == 0
    head = SimilarityModel.load(tmp_path / "o").head.state_dict()
    assert any(not torch.equal(head[key], heads[0][key]) for key in head)


# ---- output places checked before any work ----


def _fit_refused(capsys, config: Path, *options: str) -> str:
    """Run `fit`; assert exit 1, one line on stderr, no data loaded; return the line."""
    code, out, err = run(capsys, "fit", config, *options)
    assert code == 1, err
    assert "Data:" not in out, "the data were loaded before the check"
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_fit_refuses_a_file_where_the_servable_directory_goes(capsys, inputs, tmp_path):
    (tmp_path / "servable").write_text("mine")
    err = _fit_refused(capsys, write_fit_config(tmp_path / "fit.json", *inputs))
    assert "servable directory" in err and "is a file" in err and "choose another path" in err
    assert (tmp_path / "servable").read_text() == "mine"


def test_fit_refuses_a_non_empty_directory_that_is_not_a_servable(capsys, inputs, tmp_path):
    (tmp_path / "servable").mkdir()
    (tmp_path / "servable" / "notes.txt").write_text("mine")
    err = _fit_refused(capsys, write_fit_config(tmp_path / "fit.json", *inputs))
    assert "non-empty directory that this run must not overwrite" in err


def test_fit_refuses_a_cache_dir_that_is_a_file(capsys, inputs, tmp_path):
    (tmp_path / "cache").write_text("x")
    config = write_fit_config(tmp_path / "fit.json", *inputs, cache_dir=str(tmp_path / "cache"))
    err = _fit_refused(capsys, config)
    assert "cache directory (cache_dir)" in err and "is a file" in err


def test_fit_refuses_an_output_under_a_file(capsys, inputs, tmp_path):
    (tmp_path / "runs").write_text("x")
    err = _fit_refused(
        capsys,
        write_fit_config(tmp_path / "fit.json", *inputs),
        "--output",
        tmp_path / "runs" / "servable",
    )
    assert "cannot be created" in err and f"{tmp_path / 'runs'} is a file" in err


def test_fit_refuses_an_unwritable_output_place(capsys, inputs, tmp_path, monkeypatch):
    # as root every directory is writable, so the refusal of the file system is simulated
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode),
    )
    err = _fit_refused(capsys, write_fit_config(tmp_path / "fit.json", *inputs))
    assert "is not writable" in err and "choose a writable location" in err


def test_fit_refuses_a_directory_where_the_checkpoint_goes(capsys, inputs, tmp_path):
    (tmp_path / "servable.ckpt").mkdir()
    err = _fit_refused(capsys, write_fit_config(tmp_path / "fit.json", *inputs))
    assert "checkpoint file" in err and "is a directory" in err


def test_resume_without_a_checkpoint_says_how_one_is_made(capsys, inputs, tmp_path):
    err = _fit_refused(capsys, write_fit_config(tmp_path / "fit.json", *inputs), "--resume")
    assert "no checkpoint to resume from" in err and "run without --resume" in err


def test_export_refuses_an_existing_onnx_file_before_loading_anything(capsys, tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("keep me")
    code, _, err = run(capsys, "export", tmp_path / "no-servable", "--onnx", target)
    assert code == 1 and "already exists" in err and "--overwrite" in err
    assert target.read_text() == "keep me"
    code, _, err = run(capsys, "export", tmp_path / "no-servable", "--onnx", tmp_path)
    assert code == 1 and "is a directory" in err


def test_index_refuses_a_file_where_the_store_goes(capsys, tmp_path):
    (tmp_path / "store").write_text("x")
    code, _, err = run(
        capsys,
        "index",
        tmp_path / "no-servable",
        tmp_path / "no-data.csv",
        "--store",
        tmp_path / "store",
    )
    assert code == 1 and "vector store directory (--store)" in err and "is a file" in err


# ---- one line per mistake, 1 or 2; --debug shows the traceback ----


def test_a_missing_servable_is_one_line_with_status_1_and_debug_raises(capsys, tmp_path):
    data = write_groups_csv(tmp_path / "groups.csv")
    code, _, err = run(capsys, "evaluate", tmp_path / "nowhere", data)
    assert code == 1
    missing = tmp_path / "nowhere"
    expected = f"No saved model at {missing}: the directory does not exist"
    assert err.strip() == f"quaterion evaluate: error: {expected}"
    for argv in (
        ["--debug", "evaluate", tmp_path / "nowhere", data],
        ["evaluate", tmp_path / "nowhere", data, "--debug"],
    ):
        with pytest.raises(FileNotFoundError):
            main([str(arg) for arg in argv])


def test_a_config_mistake_is_status_2(capsys, tmp_path):
    config = tmp_path / "fit.json"
    config.write_text('{"data": {"kind": "csv", "path": "x.csv"}, "epoch": 3}')
    code, _, err = run(capsys, "fit", config)
    assert code == 2 and err.startswith("quaterion fit: unknown config field 'epoch'")


@pytest.mark.parametrize(
    ("exception", "code", "words"),
    [
        (FileExistsError(errno.EEXIST, "File exists", "out"), 1, ["file exists", "out"]),
        (
            PermissionError(errno.EACCES, "Permission denied", "out"),
            1,
            ["permission denied", "choose a location you may write to"],
        ),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "out"), 1, ["is a directory"]),
        (OSError(errno.ENOSPC, "No space left on device"), 1, ["no space left", "free some space"]),
        (csv.Error("field larger than field limit (131072)"), 1, ["field larger than field limit"]),
        (ValueError("bad value"), 1, ["error: bad value"]),
        (ConfigError("config field 'lr' must be positive"), 2, ["config field 'lr'"]),
        (KeyboardInterrupt(), 130, ["interrupted by sigint", "nothing more was written"]),
        (Terminated(), 143, ["interrupted by sigterm"]),
        (FitInterrupted(signal.SIGTERM), 143, ["interrupted by sigterm"]),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_user_errors_become_one_line_and_a_status(capsys, monkeypatch, exception, code, words):
    def fail(args):
        raise exception

    monkeypatch.setattr("quaterion.cli.evaluate_command.run_evaluate", fail)
    status, _, err = run(capsys, "evaluate", "servable", "data.csv")
    assert status == code
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err.lower()


def test_a_bug_keeps_its_traceback(monkeypatch):
    def fail(args):
        raise AttributeError("a bug, not a user's mistake")

    monkeypatch.setattr("quaterion.cli.evaluate_command.run_evaluate", fail)
    with pytest.raises(AttributeError):
        main(["evaluate", "servable", "data.csv"])


def test_sigterm_outside_training_exits_143_and_the_handler_is_restored(capsys, monkeypatch):
    before = signal.getsignal(signal.SIGTERM)

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr("quaterion.cli.evaluate_command.run_evaluate", terminated)
    assert run(capsys, "evaluate", "servable", "data.csv")[0] == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_exit_statuses_are_documented_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert cli.EXIT_CODES_HELP.split(";")[0] in out and "--debug" in out
