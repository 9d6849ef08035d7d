"""QuaterionProgressBar: theme, off switch, steady speed column, and a real run."""

from types import SimpleNamespace

import pytorch_lightning as pl
import torch

from quaterion.utils.progress_bar import FixedLengthProcessionSpeed, QuaterionProgressBar


def test_theme_and_columns():
    bar = QuaterionProgressBar()
    assert bar.theme.progress_bar == "#4881AD"
    assert bar.theme.progress_bar_finished == bar.theme.progress_bar_pulse == "#67C87A"
    assert (bar.theme.time, bar.theme.processing_speed) == ("grey54", "grey70")
    columns = bar.configure_columns(trainer=None)
    assert columns[0].get_table_column().min_width == 9
    assert isinstance(columns[-1], FixedLengthProcessionSpeed)


def test_speed_column_never_shrinks():
    column = FixedLengthProcessionSpeed(style="grey70")
    wide = column.render(SimpleNamespace(speed=1234.5678))
    narrow = column.render(SimpleNamespace(speed=1.0))
    idle = column.render(SimpleNamespace(speed=None))
    assert wide.plain == "1234.57it/s"
    assert narrow.plain == "   1.00it/s" and idle.plain == "   0.00it/s"


def test_environment_switch_turns_the_bar_off(monkeypatch):
    monkeypatch.delenv("QUATERION_PROGRESS", raising=False)
    assert QuaterionProgressBar().is_enabled
    monkeypatch.setenv("QUATERION_PROGRESS", "0")
    assert QuaterionProgressBar().is_disabled


class Regression(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_bar_draws_a_training_run(tmp_path, monkeypatch):
    monkeypatch.delenv("QUATERION_PROGRESS", raising=False)
    bar = QuaterionProgressBar()
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        accelerator="cpu",
    )
    trainer.fit(Regression(), torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4))
    task = bar.progress.tasks[bar.train_progress_bar_id]
    assert task.completed == task.total == 2
