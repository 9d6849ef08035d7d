"""Random crops and horizontal flips of image tensors, drawn anew on every read.

Written on tensors with torch alone (no torchvision). A dataset whose reads differ is what an
augmented fit needs: uncached, every epoch sees new views; with `CacheConfig(views=K)` the
cache fill reads each object K times and keeps the K views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from quaterion.dataset.similarity_samples import SimilarityGroupSample


def random_crop_flip(
    image: Tensor,
    padding: int = 4,
    flip_probability: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """`image [C, H, W]` zero-padded by `padding` on each side, cropped back to `H x W` at a
    random offset, and mirrored left-right with probability `flip_probability`.

    Args:
        image: a `[C, H, W]` tensor.
        padding: pixels of zeros added on each side before the crop (0: no shift).
        flip_probability: chance of a horizontal flip, in [0, 1].
        generator: source of the random draws (None: torch's global generator).

    Returns:
        a new `[C, H, W]` tensor of the image's dtype.
    """
    if image.dim() != 3:
        raise ValueError(f"random_crop_flip takes one image [C, H, W]; got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
    flip = torch.rand((), generator=generator).item() < flip_probability
    padded = F.pad(image, (padding, padding, padding, padding)) if padding else image
    view = padded[:, top : top + height, left : left + width]
    return view.flip(-1) if flip else view.clone()


class AugmentedGroups(Dataset):
    """Group samples of image tensors `[C, H, W]`, randomly cropped and flipped on every read.

    Reads draw from `generator` or, without one, from torch's global generator, so the views
    are reproducible under `torch.manual_seed` / `pl.seed_everything` (DataLoader workers get
    their own seeds from it; a given `generator` is copied into each worker, so use it with
    `num_workers=0`). The group of a sample never changes.

    Args:
        samples: `SimilarityGroupSample`s whose `obj` is a `[C, H, W]` image tensor.
        padding: pixels of zeros added on each side before the random crop back to full size.
        flip_probability: chance of a horizontal flip, in [0, 1].
        generator: source of the random draws (None: torch's global generator).
    """

    def __init__(
        self,
        samples: Sequence[SimilarityGroupSample],
        padding: int = 4,
        flip_probability: float = 0.5,
        generator: torch.Generator | None = None,
    ):
        if padding < 0:
            raise ValueError(f"padding must be 0 or more pixels, got {padding}")
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability}")
        for index, sample in enumerate(samples):
            if not isinstance(sample.obj, Tensor) or sample.obj.dim() != 3:
                shape = tuple(sample.obj.shape) if isinstance(sample.obj, Tensor) else None
                raise ValueError(
                    f"AugmentedGroups needs image tensors [C, H, W]; sample {index} has "
                    f"{type(sample.obj).__name__} of shape {shape} (e.g. use "
                    "quaterion.data.fashion_mnist_groups)"
                )
        self.samples = samples
        self.padding = padding
        self.flip_probability = flip_probability
        self.generator = generator

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> SimilarityGroupSample:
        sample = self.samples[index]
        image = random_crop_flip(sample.obj, self.padding, self.flip_probability, self.generator)
        return SimilarityGroupSample(obj=image, group=sample.group)
