"""The demo's figure: training curves and a 2-D projection of embeddings before and after.

matplotlib is imported inside `save_demo_figure` (optional extra `quaterion[cli]`), with the
non-interactive Agg backend, so this works without a display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from quaterion.utils.pca import pca_2d

__all__ = ["pca_2d", "save_demo_figure"]


def save_demo_figure(
    path: str | os.PathLike,
    train_loss: Sequence[float],
    validation_loss: Sequence[float],
    before: Tensor,
    after: Tensor,
    groups: Sequence[int],
    group_names: Sequence[str],
) -> Path:
    """Write a PNG with the loss curves and PCA plots of `before` / `after` embeddings.

    `groups[i]` indexes `group_names` and colours point i. Written to a temporary name first,
    then renamed, so a crash never leaves a truncated image.

    Args:
        path: the PNG to write.
        train_loss: training loss per epoch.
        validation_loss: validation loss per epoch.
        before: `[N, D]` held-out embeddings of the frozen encoder.
        after: `[N, D]` the same after training.
        groups: group index of each row.
        group_names: names of the groups.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure, (curves, left, right) = plt.subplots(1, 3, figsize=(18, 5.5))
    epochs = range(1, len(train_loss) + 1)
    curves.plot(epochs, train_loss, marker="o", label="train")
    if validation_loss:
        curves.plot(
            range(1, len(validation_loss) + 1), validation_loss, marker="o", label="validation"
        )
    curves.set(title="Training curves", xlabel="epoch", ylabel="loss")
    curves.legend()
    colours = plt.get_cmap("tab20")
    group_tensor = torch.as_tensor(list(groups))
    for axis, embeddings, title in (
        (left, before, "Held-out, frozen MiniLM (PCA)"),
        (right, after, "Held-out, with trained head (PCA)"),
    ):
        points = pca_2d(torch.nn.functional.normalize(embeddings.float(), dim=1))
        for index, name in enumerate(group_names):
            mask = group_tensor == index
            axis.scatter(
                points[mask, 0],
                points[mask, 1],
                s=6,
                alpha=0.7,
                color=colours((2 * index) % 20 + (2 * index) // 20 % 2),
                label=name,
            )
        axis.set(title=title, xticks=[], yticks=[])
    right.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize=8)
    figure.tight_layout()
    temporary = target.with_name(f".{target.name}.tmp")
    figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    os.replace(temporary, target)
    return target
