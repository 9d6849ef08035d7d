"""SIGINT / SIGTERM during a fit, sent to a real process: it stops after the current step, saves a
checkpoint of the last finished epoch and that epoch's servable, exits 130 / 143, and a resumed
fit ends where an uninterrupted one does.

Each stopped process holds at a fixed step (epoch 2, before batch 1) until the signal arrives
(`HoldUntilSignal`), so the tests wait for a marker file instead of guessing a delay.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import resume_fit_script
import torch
from cli_support import write_fit_config, write_groups_csv
from reliability_support import start_script, wait_for

from quaterion.cli import main
from quaterion_models import SimilarityModel

HERE = Path(__file__).resolve().parent
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The result of the same seeded fit run straight through, in this process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script does
    try:
        return resume_fit_script.run(tmp_path_factory.mktemp("straight"))
    finally:
        torch.set_num_threads(threads)


def _stop(workdir: Path, signal_number: int, *args: str) -> str:
    """Start `args`' fit, signal it at its hold point, return its output (asserting the code)."""
    process = start_script(*args)
    wait_for(workdir / "holding", process)
    process.send_signal(signal_number)
    output = process.communicate(timeout=120)[0].decode(errors="replace")
    assert process.returncode == EXIT_CODES[signal_number], output[-3000:]
    return output


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_quaterion_fit_with_stop_on_signal_saves_exits_and_resumes_to_the_same_end(
    tmp_path: Path, signal_number: int, uninterrupted: dict
):
    script = HERE / "resume_fit_script.py"
    output = _stop(tmp_path, signal_number, script, str(tmp_path), "--stop-at", "2")
    name = signal.Signals(signal_number).name
    assert f"fit stopped by {name} after 2 finished epoch(s)" in output
    assert str(tmp_path / "stopped.ckpt") in output and str(tmp_path / "servable") in output
    assert not (tmp_path / "result.json").exists()

    # the checkpoint is the state after epoch 1 (0-based), as Lightning's own end-of-epoch
    # checkpoint of that epoch holds it; the servable carries that epoch's head
    saved = torch.load(tmp_path / "stopped.ckpt", weights_only=False)
    reference = torch.load(tmp_path / "ckpt" / "epoch=1.ckpt", weights_only=False)
    assert (saved["epoch"], saved["global_step"]) == (reference["epoch"], 2 * 4)
    for key, value in reference["state_dict"].items():
        assert torch.equal(saved["state_dict"][key], value), key
    head = SimilarityModel.load(tmp_path / "servable").head.state_dict()
    for key, value in head.items():
        assert torch.equal(value, reference["state_dict"][f"_model.head.{key}"]), key

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script does
    try:
        resumed = resume_fit_script.run(tmp_path, resume=str(tmp_path / "stopped.ckpt"))
    finally:
        torch.set_num_threads(threads)
    assert resumed["epochs"] == uninterrupted["epochs"] == resume_fit_script.EPOCHS
    assert resumed["steps"] == (resume_fit_script.EPOCHS - 2) * 4  # epochs 2..5 only
    assert abs(resumed["loss"] - uninterrupted["loss"]) < 0.01
    assert abs(resumed["precision_at_1"] - uninterrupted["precision_at_1"]) < 0.01
    for key, weights in uninterrupted["head"].items():
        difference = torch.tensor(resumed["head"][key]) - torch.tensor(weights)
        assert difference.abs().max() < 1e-5, key


# ---- the `quaterion fit` command ----

CLI_EPOCHS = 5


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, tiny_bert) -> tuple[Path, Path]:
    """(tiny BERT directory, groups CSV) shared by the command-line runs."""
    return tiny_bert, write_groups_csv(tmp_path_factory.mktemp("cli-inputs") / "groups.csv")


@pytest.fixture(scope="module")
def cli_uninterrupted(tmp_path_factory, cli_inputs) -> tuple[Path, dict]:
    """(servable, held-out metrics) of the command run straight through."""
    root = tmp_path_factory.mktemp("cli-straight")
    config = write_fit_config(root / "fit.json", *cli_inputs, epochs=CLI_EPOCHS)
    assert main(["fit", str(config)]) == 0
    return root / "servable", _metrics(root / "servable", config)


def _metrics(servable: Path, config: Path) -> dict[str, float]:
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion.cli.evaluate_command import evaluate_samples

    kind, samples = load_evaluation_samples(str(config))
    return evaluate_samples(SimilarityModel.load(servable), kind, samples, [1, 2])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_cli_fit_stopped_by_a_signal_says_how_to_resume_and_resumes_to_the_same_end(
    tmp_path: Path, signal_number: int, cli_inputs: tuple[Path, Path], cli_uninterrupted: tuple
):
    config = write_fit_config(tmp_path / "fit.json", *cli_inputs, epochs=CLI_EPOCHS)
    script = HERE / "cli_fit_script.py"
    marker = tmp_path / "holding"
    output = _stop(tmp_path, signal_number, script, str(marker), "2", "--", "fit", str(config))
    checkpoint, servable = tmp_path / "servable.ckpt", tmp_path / "servable"
    assert f"Stopped by {signal.Signals(signal_number).name} after the current step" in output
    assert f"Checkpoint (the last finished epoch): {checkpoint}" in output
    assert f"Servable of epoch 2: {servable}" in output
    assert f"Resume with: quaterion fit {config} --resume" in output
    assert checkpoint.is_file() and (servable / "config.json").is_file()

    assert main(["fit", str(config), "--resume"]) == 0
    assert not checkpoint.exists(), "a finished run removes the checkpoint it resumed from"
    straight, straight_metrics = cli_uninterrupted
    resumed = SimilarityModel.load(servable).head.state_dict()
    for key, value in SimilarityModel.load(straight).head.state_dict().items():
        assert torch.equal(resumed[key], value), key  # same shuffles, same steps: bit-identical
    resumed_metrics = _metrics(servable, config)
    for name, value in straight_metrics.items():
        assert abs(resumed_metrics[name] - value) < 0.01, name
