"""XBM in training: the memory term, when it starts, and a fit that uses it."""

import warnings
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from quaterion import Quaterion
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.loss import TripletLoss
from quaterion.train.xbm import XbmConfig, XbmDevice
from quaterion.train.xbm.xbm_loss import XbmLoss


def test_xbm_term_starts_at_start_iteration_and_uses_memory_before_the_batch():
    loss = TripletLoss(mining="hard")
    xbm = XbmLoss(XbmConfig(weight=0.5, buffer_size=8, start_iteration=2), loss, embedding_size=3)
    g = torch.Generator().manual_seed(0)
    first, second = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    groups = torch.tensor([0, 0, 1, 1])

    assert xbm(first, groups, global_step=1) == 0.0
    assert len(xbm.buffer) == 0  # nothing remembered before start_iteration
    assert float(xbm(first, groups, global_step=2)) == 0.0  # empty memory
    assert len(xbm.buffer) == 4
    term = xbm(second, groups, global_step=3)
    expected = 0.5 * loss.xbm_loss(second, groups, first, groups)  # memory = the first batch
    torch.testing.assert_close(term, expected)
    memory, memory_groups = xbm.buffer.get()
    torch.testing.assert_close(memory, torch.cat([first, second]))
    assert memory_groups.tolist() == [0, 0, 1, 1] * 2


class BufferSizes(Callback):
    def __init__(self):
        self.sizes = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.sizes.append(len(pl_module._xbm.buffer))


def test_fit_with_xbm_fills_memory_from_start_iteration_and_learns(
    clusters, to_group_samples, head_model, p_at_1, fast_trainer
):
    pl.seed_everything(0, verbose=False)
    vectors, labels = clusters()
    held_out, held_out_labels = clusters(data_seed=99)
    samples = to_group_samples(vectors, labels)
    loader = GroupSimilarityDataLoader(samples, batch_size=16, shuffle=True)
    xbm = XbmConfig(weight=0.5, buffer_size=40, start_iteration=3, device=XbmDevice.AUTO)
    model = head_model(vectors.shape[1], partial(TripletLoss, mining="hard"), xbm=xbm)
    sizes = BufferSizes()
    Quaterion.fit(model, fast_trainer(max_epochs=6, callbacks=[sizes]), loader)

    assert sizes.sizes[:5] == [0, 0, 0, 16, 32]  # steps 0-2 skip XBM, then the memory fills
    assert set(sizes.sizes[5:]) == {40}
    precision = p_at_1(model.model.encode(list(held_out), to_numpy=False), held_out_labels)
    assert precision > 0.9


@pytest.mark.parametrize(("start", "warns"), [(6, True), (5, False)])
def test_a_fit_that_never_reaches_start_iteration_says_the_memory_took_no_part(
    start, warns, clusters, to_group_samples, head_model, fast_trainer
):
    vectors, labels = clusters(per_class=12)
    loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=16)
    xbm = XbmConfig(buffer_size=40, start_iteration=start)
    model = head_model(vectors.shape[1], TripletLoss, xbm=xbm)
    trainer = fast_trainer(max_epochs=2)  # 3 batches per epoch: global steps 0..5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Quaterion.fit(model, trainer, loader)
    messages = [
        str(warning.message) for warning in caught if "start_iteration" in str(warning.message)
    ]
    assert trainer.global_step == 6 and len(model._xbm.buffer) == (0 if warns else 16)
    if warns:
        assert messages == [
            "XbmConfig.start_iteration=6 was never reached: the fit ended after 6 training steps, "
            "so the cross-batch memory never took part in the loss; set start_iteration below "
            "the number of steps, or train longer"
        ]
    else:
        assert messages == []
