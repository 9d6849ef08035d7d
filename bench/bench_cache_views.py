"""Benchmark of cached augmentations (`CacheConfig(views=K)`): one run, one JSON line on stdout.

Workload: a small labelled set, where a head trained on one fixed view per image overfits and
augmentation matters: 500 Fashion-MNIST training images (train split; Debian package
`dataset-fashion-mnist`) and 1,000 held-out images (test split), frozen EfficientNet-Lite0
(ImageNet weights) at 32x32, a StackedProjectionHead 1280 -> 512 -> 128, TripletLoss (hard
mining), batch 64, Adam, 40 epochs. The training images are augmented by
`quaterion.data.AugmentedGroups`: a random crop after 2 pixels of zero padding and a horizontal
flip with probability 1/2, drawn on every read. Same seed, same epochs, same data stream for
every variant:
1. `uncached`: no cache; the encoder runs on freshly augmented images at every step;
2. `views_1`: the cache reads each image once (one fixed augmented view per image);
3. `views_K`: `CacheConfig(views=K)`: the fill reads each image K times and keeps the K views,
   each epoch draws one of them per image (skipped, with the reason, when the installed
   `CacheConfig` has no `views`);
4. references: the cache over the plain (not augmented) images, and the frozen encoder with
   no head.
Each variant reports the held-out R-precision (plain images; `Evaluator` +
`RetrievalRPrecision` + `GroupSampler`, the engine's evaluation), the fit time split into fill
(set-up before the first epoch) and epochs, in wall and process-CPU seconds, its ratio to the
uncached fit, and the peak resident memory during the fit (VmHWM, reset before each). On a
shared machine the CPU seconds are the steadier figure.

    python bench/bench_cache_views.py [--train 500] [--held-out 1000] [--epochs 40] [--views 4]
        [--image-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_cache's helpers

from bench_cache import Clock, PeakMemory, epoch_timer, quiet_trainer  # noqa: E402

BATCH, FILL_BATCH, LR, SEED = 64, 128, 1e-3, 0
PADDING, FLIP_PROBABILITY = 2, 0.5


def model_class(image_size: int) -> type:
    """The TrainableModel of every variant; `cache` is the CacheConfig (None: uncached)."""
    from quaterion import TrainableModel
    from quaterion.loss import TripletLoss
    from quaterion_models.encoders.extras import EfficientNetLite0Encoder
    from quaterion_models.heads import StackedProjectionHead

    class ImageModel(TrainableModel):
        def __init__(self, cache: Any):
            self.cache = cache
            super().__init__()

        def configure_encoders(self):
            return EfficientNetLite0Encoder(image_size=image_size)

        def configure_caches(self):
            return self.cache

        def configure_head(self, input_embedding_size: int):
            return StackedProjectionHead(input_embedding_size, output_sizes=[512, 128])

        def configure_loss(self):
            return TripletLoss(mining="hard", margin=0.5)

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.head.parameters(), lr=LR)

    return ImageModel


def has_views() -> bool:
    """Whether the installed CacheConfig takes `views` (cached augmentations)."""
    from quaterion.train.cache import CacheConfig

    return "views" in {field.name for field in dataclasses.fields(CacheConfig)}


def cache_config(views: int | None) -> Any:
    """None: no cache; else a CPU cache keeping `views` views per object (1: a plain cache)."""
    from quaterion.train.cache import CacheConfig, CacheType

    if views is None:
        return None
    extra = {"views": views} if views != 1 else {}
    return CacheConfig(CacheType.CPU, batch_size=FILL_BATCH, **extra)


def r_precision(model: Any, held_out: list) -> float:
    from quaterion import Quaterion
    from quaterion.eval.evaluator import Evaluator
    from quaterion.eval.group import RetrievalRPrecision
    from quaterion.eval.samplers.group_sampler import GroupSampler

    evaluator = Evaluator(RetrievalRPrecision(), GroupSampler(encode_batch_size=FILL_BATCH))
    return float(Quaterion.evaluate(evaluator, held_out, model)["RetrievalRPrecision"])


def fit_variant(
    image_size: int, train: list, held_out: list, epochs: int, views: int | None, augment: bool
) -> dict[str, Any]:
    """Fit one variant from the same seed; its R-precision, times and peak memory."""
    import pytorch_lightning as pl

    from quaterion import Quaterion
    from quaterion.data import AugmentedGroups
    from quaterion.dataset import GroupSimilarityDataLoader

    gc.collect()
    peak = PeakMemory()
    peak.reset()
    pl.seed_everything(SEED, verbose=False)
    model = model_class(image_size)(cache_config(views))
    dataset = (
        AugmentedGroups(train, PADDING, FLIP_PROBABILITY, torch.Generator().manual_seed(SEED))
        if augment
        else train
    )
    loader = GroupSimilarityDataLoader(dataset, batch_size=BATCH, shuffle=True)
    timer = epoch_timer()
    with Clock() as fit:
        Quaterion.fit(model, quiet_trainer(epochs, [timer]), loader)
    peak_mb = peak.peak_mb()
    epochs_wall = sum(clock.wall for clock in timer.epochs)
    epochs_cpu = sum(clock.cpu for clock in timer.epochs)
    with Clock() as evaluation:
        score = r_precision(model.model, held_out)
    return {
        "r_precision": round(score, 4),
        "fit_wall_s": round(fit.wall, 2),
        "fit_cpu_s": round(fit.cpu, 2),
        "fill_wall_s": round(fit.wall - epochs_wall, 2),  # set-up before the first epoch
        "epochs_wall_s": round(epochs_wall, 2),
        "epochs_cpu_s": round(epochs_cpu, 2),
        "epoch_wall_s": [round(clock.wall, 2) for clock in timer.epochs],
        "eval_wall_s": round(evaluation.wall, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }


def frozen_baseline(image_size: int, held_out: list) -> float:
    """R-precision of the frozen encoder alone (EmptyHead)."""
    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import EfficientNetLite0Encoder
    from quaterion_models.heads import EmptyHead

    encoder = EfficientNetLite0Encoder(image_size=image_size)
    return round(
        r_precision(SimilarityModel(encoder, EmptyHead(encoder.embedding_size)), held_out), 4
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=500, help="training images (train split)")
    parser.add_argument("--held-out", type=int, default=1000, help="held-out images (test split)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every fit")
    parser.add_argument("--views", type=int, default=4, help="K of the many-views variant")
    parser.add_argument("--image-size", type=int, default=32, help="side the encoder sees")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    if args.views < 2:
        parser.error(f"--views must be at least 2 (views_1 always runs), got {args.views}")
    os.environ["QUATERION_PROGRESS"] = "0"
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from quaterion.data import fashion_mnist_groups

    train = fashion_mnist_groups("train", limit=args.train)
    held_out = fashion_mnist_groups("test", limit=args.held_out)
    load_start = os.getloadavg()
    started = time.perf_counter()
    run = (args.image_size, train, held_out, args.epochs)
    variants: dict[str, Any] = {"uncached": fit_variant(*run, views=None, augment=True)}
    variants["views_1"] = fit_variant(*run, views=1, augment=True)
    many = f"views_{args.views}"
    if has_views():
        variants[many] = fit_variant(*run, views=args.views, augment=True)
    else:
        variants[many] = {
            "skipped": "this CacheConfig has no `views` field (cached augmentations are not "
            "implemented in this checkout); nothing measured"
        }
    variants["plain_cached"] = fit_variant(*run, views=1, augment=False)
    uncached = variants["uncached"]
    for name, figures in variants.items():
        if name != "uncached" and "fit_wall_s" in figures:
            figures["fit_wall_over_uncached"] = round(
                figures["fit_wall_s"] / uncached["fit_wall_s"], 3
            )
            figures["fit_cpu_over_uncached"] = round(
                figures["fit_cpu_s"] / uncached["fit_cpu_s"], 3
            )
    result = {
        "bench": "cache_views",
        "workload": {
            "data": "Fashion-MNIST",
            "train_images": len(train),
            "held_out_images": len(held_out),
            "encoder": f"EfficientNet-Lite0 (ImageNet), frozen, {args.image_size} pixels",
            "head": "StackedProjectionHead 1280-512-128",
            "loss": "TripletLoss(mining=hard, margin=0.5)",
            "augmentation": f"pad {PADDING} + random crop, horizontal flip p={FLIP_PROBABILITY}",
            "batch_size": BATCH,
            "fill_batch_size": FILL_BATCH,
            "epochs": args.epochs,
            "seed": SEED,
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
        },
        "metric": "held-out R-precision on plain images (Evaluator + RetrievalRPrecision)",
        "variants": variants,
        "frozen_encoder_r_precision": frozen_baseline(args.image_size, held_out),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
