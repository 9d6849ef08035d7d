"""Bad input across the framework: one table, one test.

Every row is a mistake a user can make. Each must be answered by an exception of the stated type
whose message names the problem and the way out (the listed patterns, case-insensitive), raised
before training starts (no `training_step` ran, unless the row is about the data a step sees) and
without writing anything (no checkpoint, cache file or servable appears).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from reliability_support import (
    MlpEncoder,
    SimpleModel,
    group_loader,
    group_samples,
    pair_loader,
    pair_samples,
    quiet_trainer,
)
from torch.utils.data import DataLoader, IterableDataset

from quaterion import Quaterion
from quaterion.cli.components import load_config
from quaterion.cli.config import ConfigError, DataConfig
from quaterion.cli.data_sources import load_task
from quaterion.cli.evaluate_command import evaluate_samples
from quaterion.cli.export_command import run_export
from quaterion.cli.fit_command import check_outputs
from quaterion.data import DataFileError
from quaterion.dataset import (
    GroupLabels,
    SimilarityGroupDataset,
    SimilarityGroupSample,
    SimilarityPairSample,
)
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import GroupRetrievalMetrics, RetrievalRPrecision
from quaterion.eval.pair import RetrievalPrecision
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion.eval.samplers.pair_sampler import PairSampler
from quaterion.loss import ContrastiveLoss, OnlineContrastiveLoss, SoftmaxLoss, TripletLoss
from quaterion.serving.indexing import check_index, index_objects
from quaterion.serving.provenance import check_store_servable
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.xbm import XbmConfig
from quaterion_models import SimilarityModel
from quaterion_models.heads import EmptyHead, LinearHead
from quaterion_models.utils.classes import UntrustedModuleError
from quaterion_models.utils.files import CorruptFileError


class Ctx:
    """What a row's action gets: a scratch directory, and `fit` that records its model."""

    def __init__(self, root: Path):
        self.root = root
        self.models: list[SimpleModel] = []

    def fit(self, model: SimpleModel, train: Any, val: Any = None, **kwargs: Any) -> None:
        """`Quaterion.fit` with checkpoints every epoch into `root/ckpt` (so a started epoch
        would leave a file)."""
        from pytorch_lightning.callbacks import ModelCheckpoint

        self.models.append(model)
        trainer = quiet_trainer(
            str(self.root / "trainer"),
            enable_checkpointing=True,
            callbacks=[ModelCheckpoint(dirpath=str(self.root / "ckpt"), every_n_epochs=1)],
        )
        Quaterion.fit(model, trainer, train, val, **kwargs)

    def file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def servable(self) -> Path:
        path = self.root / "servable"
        SimilarityModel(MlpEncoder(), LinearHead(32, output_size=8)).save(path)
        return path


Thunk = Callable[[], object]


@dataclass(frozen=True)
class Bad:
    """A row: `setup(ctx)` prepares inputs and returns the call that must raise."""

    name: str
    setup: Callable[[Ctx], Thunk]
    error: type[BaseException]
    patterns: tuple[str, ...]
    starts_training: bool = False  # the mistake shows only in the data of a training step


class _EmptyStream(IterableDataset):
    def __iter__(self):
        return iter(())


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _broken_servable(ctx: Ctx, damage: Callable[[Path], object]) -> Thunk:
    path = ctx.servable()
    damage(path)
    return lambda: SimilarityModel.load(path)


def _edit_servable_config(path: Path, **changes: Any) -> None:
    """Edit a servable's config.json as someone else would: `head={"module": m}` renames the
    head's module, `files=...` replaces manifest entries."""
    config = json.loads((path / "config.json").read_text())
    config["head"].update(changes.pop("head", {}))
    config["files"].update(changes.pop("files", {}))
    (path / "config.json").write_text(json.dumps(config))


def _link_head_weights_out(path: Path) -> None:
    weights = path / "head" / "weights.safetensors"
    outside = path.parent / "weights-elsewhere.safetensors"
    outside.write_bytes(weights.read_bytes())
    weights.unlink()
    weights.symlink_to(outside)


NEEDS_QDRANT_EDGE = pytest.mark.skipif(
    importlib.util.find_spec("qdrant_edge") is None, reason="needs qdrant-edge-py"
)


def _indexed_store(ctx: Ctx) -> tuple[str, str]:
    """(store, servable): a store of 3 objects that `ctx.servable()` indexed."""
    servable, store = str(ctx.servable()), str(ctx.root / "store")
    objects = [torch.full((16,), float(i)) for i in range(3)]
    vectors = SimilarityModel.load(servable).encode(objects, to_numpy=False)
    index_objects(store, servable, objects, [0, 1, 2], [{}] * 3, vectors)
    return store, servable


def _not_a_store(ctx: Ctx) -> str:
    """Make `root/mine`, a directory holding a note of the user's; return a servable."""
    (ctx.root / "mine").mkdir()
    (ctx.root / "mine" / "notes.txt").write_text("mine")
    return str(ctx.servable())


def _check_search(store: Path | str, servable: Path) -> None:
    """What `quaterion search` checks before it encodes a query."""
    check_store_servable(str(store), servable, 8)


def _fit_config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"data": {"kind": "csv", "path": "pairs.csv"}, "epochs": 1}
    config.update(changes)
    return config


def _fit_outputs(output: Path, cache: Path | None = None, resume: str | None = None) -> Thunk:
    """`quaterion fit`'s check of its output places (run before any data are loaded)."""
    return lambda: check_outputs(str(output), None if cache is None else str(cache), resume)


def _foreign_directory(ctx: Ctx) -> Path:
    ctx.file("notes.txt", "mine")
    return ctx.root


def _export(ctx: Ctx, onnx: Path) -> Thunk:
    args = argparse.Namespace(servable=str(ctx.root / "s"), onnx=str(onnx), overwrite=False)
    return lambda: run_export(args)


def _load_cli_config(ctx: Ctx, config: dict[str, Any] | str) -> Thunk:
    text = config if isinstance(config, str) else json.dumps(config)
    path = ctx.file("fit.yaml" if isinstance(config, str) else "fit.json", text)
    return lambda: load_config(path)


def _load_groups_file(ctx: Ctx, text: str, encoding: str = "utf-8") -> Thunk:
    path = ctx.root / "data.csv"
    path.write_bytes(text.encode(encoding))
    config = DataConfig(kind="csv", path=str(path), val_fraction=0.25)
    return lambda: load_task(config, "groups")


def _eval_groups(metric: Any, samples: list) -> Thunk:
    model = SimilarityModel(MlpEncoder(), EmptyHead(32))
    evaluator = Evaluator(metric, GroupSampler(log_progress=False))
    return lambda: Quaterion.evaluate(evaluator, samples, model)


def _singletons() -> list:
    return [SimilarityGroupSample(obj=torch.randn(16), group=i) for i in range(6)]


ROWS = [
    # ---- loader / loss / data agreement (Quaterion.validate_fit, the loaders) ----
    Bad(
        "pairs_loader_with_group_loss",
        lambda c: lambda: c.fit(SimpleModel(loss=TripletLoss), pair_loader()),
        TypeError,
        ("pairssimilaritydataloader needs a pairwiseloss", "tripletloss", "contrastiveloss"),
    ),
    Bad(
        "group_loader_with_pairwise_loss",
        lambda c: lambda: c.fit(SimpleModel(loss=ContrastiveLoss), group_loader()),
        TypeError,
        ("groupsimilaritydataloader needs a grouploss", "contrastiveloss", "pairssimilarity"),
    ),
    Bad(
        "val_loader_of_the_other_kind",
        lambda c: lambda: c.fit(SimpleModel(), group_loader(), pair_loader()),
        TypeError,
        ("pairssimilaritydataloader needs a pairwiseloss", "groupsimilaritydataloader"),
    ),
    Bad(
        "plain_torch_dataloader",
        lambda c: lambda: c.fit(SimpleModel(), DataLoader(group_samples(), batch_size=8)),
        TypeError,
        ("train_dataloader must be", "groupsimilaritydataloader", "got dataloader"),
    ),
    Bad(
        "configure_loss_returns_none",
        lambda c: lambda: c.fit(SimpleModel(loss=lambda: None), group_loader()),
        TypeError,
        ("configure_loss", "similarityloss", "nonetype", "tripletloss"),
    ),
    Bad(
        "pair_samples_in_group_loader_cached",
        lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig()), group_loader(pair_samples())),
        TypeError,
        ("expects similaritygroupsample", "similaritypairsample", "pairssimilaritydataloader"),
    ),
    Bad(
        "pair_samples_in_group_loader_uncached",
        lambda c: lambda: c.fit(SimpleModel(), group_loader(pair_samples())),
        TypeError,
        ("expects similaritygroupsample", "similaritypairsample", "pairssimilaritydataloader"),
    ),
    Bad(
        "raw_tuples_instead_of_samples",
        lambda c: lambda: c.fit(SimpleModel(), group_loader([(torch.zeros(16), 1)] * 8)),
        TypeError,
        ("expects similaritygroupsample", "got tuple", "similaritygroupdataset"),
    ),
    Bad(
        "empty_dataset",
        lambda c: lambda: group_loader([]),
        ValueError,
        ("empty dataset", "at least one sample"),
    ),
    Bad(
        "empty_iterable_dataset_cached",
        lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig()), group_loader(_EmptyStream())),
        ValueError,
        ("no samples", "train", "at least one sample"),
    ),
    Bad(
        "string_group_labels_from_a_dataset_that_is_not_a_list",
        lambda c: (
            lambda: c.fit(
                SimpleModel(cache=CacheConfig()),
                group_loader(SimilarityGroupDataset([(torch.zeros(16), "cat")] * 8)),
            )
        ),
        TypeError,
        ("integer group ids", "str", "pass the samples as a list", "grouplabels"),
    ),
    Bad(
        "float_group_labels_from_a_dataset_that_is_not_a_list",
        lambda c: (
            lambda: c.fit(
                SimpleModel(), group_loader(SimilarityGroupDataset([(torch.zeros(16), 1.5)] * 8))
            )
        ),
        TypeError,
        ("integer group ids", "float", "map each label to an int"),
    ),
    Bad(
        "unhashable_group_label_in_a_list",
        lambda c: lambda: group_loader([SimilarityGroupSample(torch.zeros(16), [1, 2])] * 8),
        TypeError,
        ("group label of sample 0", "hashable", "list"),
    ),
    Bad(
        "non_numeric_pair_score",
        lambda c: (
            lambda: c.fit(
                SimpleModel(loss=ContrastiveLoss),
                pair_loader([SimilarityPairSample(torch.zeros(16), torch.zeros(16), "yes")] * 4),
            )
        ),
        TypeError,
        ("score", "number", "str"),
    ),
    # ---- model assembly (TrainableModel.check_parts, from Quaterion.validate_fit) ----
    Bad(
        "head_input_size_differs_from_encoders",
        lambda c: (
            lambda: c.fit(
                SimpleModel(head=lambda size: LinearHead(5, output_size=4)), group_loader()
            )
        ),
        ValueError,
        ("configure_head", "input_embedding_size", "5", "32"),
    ),
    Bad(
        "configure_head_returns_none",
        lambda c: lambda: c.fit(SimpleModel(head=lambda size: None), group_loader()),
        TypeError,
        ("configure_head", "encoderhead", "nonetype"),
    ),
    Bad(
        "xbm_with_pairwise_loss",
        lambda c: lambda: c.fit(SimpleModel(loss=ContrastiveLoss, xbm=XbmConfig()), pair_loader()),
        TypeError,
        ("xbm", "grouploss", "contrastiveloss", "tripletloss"),
    ),
    Bad(
        "xbm_buffer_of_zero_rows",
        lambda c: lambda: c.fit(SimpleModel(xbm=XbmConfig(buffer_size=0)), group_loader()),
        ValueError,
        ("buffer_size", ">= 1", "0"),
    ),
    # ---- what a training step sees ----
    Bad(
        "nan_embeddings_uncached",
        lambda c: (
            lambda: c.fit(SimpleModel(encoder=lambda: MlpEncoder(poison="nan")), group_loader())
        ),
        ValueError,
        ("nan", "batch 0", "train"),
        starts_training=True,
    ),
    Bad(
        "inf_embeddings_cached",
        lambda c: (
            lambda: c.fit(
                SimpleModel(encoder=lambda: MlpEncoder(poison="inf"), cache=CacheConfig()),
                group_loader(),
            )
        ),
        ValueError,
        ("infinite", "batch 0", "encoder 'default'"),
    ),
    # ---- cache configuration (CacheMixin.setup_cache, CacheConfig) ----
    Bad(
        "key_extractor_returns_unhashable",
        lambda c: (
            lambda: c.fit(
                SimpleModel(cache=CacheConfig(key_extractors=lambda obj: obj.tolist())),
                group_loader(),
            )
        ),
        TypeError,
        ("key extractor", "unhashable", "list"),
    ),
    Bad(
        "key_extractor_collides",
        lambda c: (
            lambda: c.fit(
                SimpleModel(cache=CacheConfig(key_extractors=lambda obj: 0)), group_loader()
            )
        ),
        ValueError,
        ("key extractor", "same key", "different objects"),
    ),
    Bad(
        "cache_save_dir_is_a_file",
        lambda c: (
            lambda taken: (
                lambda: c.fit(SimpleModel(cache=CacheConfig(save_dir=str(taken))), group_loader())
            )
        )(c.file("taken", "x")),
        NotADirectoryError,
        ("cacheconfig.save_dir", "is a file", "directory"),
    ),
    Bad(
        "cache_save_dir_not_writable",
        lambda c: (
            lambda taken: (
                lambda: c.fit(
                    SimpleModel(cache=CacheConfig(save_dir=str(taken / "cache"))), group_loader()
                )
            )
        )(c.file("taken", "x")),
        NotADirectoryError,
        ("cacheconfig.save_dir", "cannot be created", "writable"),
    ),
    pytest.param(
        Bad(
            "gpu_cache_without_cuda",
            lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig(CacheType.GPU)), group_loader()),
            ValueError,
            ("cachetype.gpu", "cuda is not available", "cachetype.cpu"),
        ),
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
    ),
    Bad(
        "unknown_cache_type",
        lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig("gpux")), group_loader()),
        ValueError,
        ("unknown cache type", "gpux", "auto"),
    ),
    Bad(
        "cache_without_type_or_mapping",
        lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig(cache_type=None)), group_loader()),
        ValueError,
        ("cache_type or mapping", "cachetype.auto"),
    ),
    Bad(
        "cache_of_trainable_encoder",
        lambda c: (
            lambda: c.fit(
                SimpleModel(
                    encoder=lambda: MlpEncoder(trainable=True),
                    cache=CacheConfig(mapping={"default": CacheType.CPU}),
                ),
                group_loader(),
            )
        ),
        ValueError,
        ("trainable", "frozen", "remove it from cacheconfig.mapping"),
    ),
    Bad(
        "cache_fill_batch_size_zero",
        lambda c: lambda: c.fit(SimpleModel(cache=CacheConfig(batch_size=0)), group_loader()),
        ValueError,
        ("cacheconfig.batch_size", "at least 1", "0"),
    ),
    Bad(
        "loader_batch_size_zero",
        lambda c: lambda: group_loader(batch_size=0),
        ValueError,
        ("batch_size", "positive integer", "0"),
    ),
    Bad(
        "resume_from_missing_checkpoint",
        lambda c: lambda: c.fit(SimpleModel(), group_loader(), ckpt_path=str(c.root / "no.ckpt")),
        FileNotFoundError,
        ("checkpoint", "not found", "no.ckpt"),
    ),
    # ---- losses, distances, metrics, evaluation ----
    Bad(
        "unknown_triplet_mining",
        lambda c: lambda: TripletLoss(mining="hardest"),
        ValueError,
        ("unrecognized mining strategy", "hardest", "semi_hard"),
    ),
    Bad(
        "unknown_online_contrastive_mining",
        lambda c: lambda: OnlineContrastiveLoss(mining="semi"),
        ValueError,
        ("unrecognized mining strategy", "semi", "all, hard"),
    ),
    Bad(
        "unknown_distance_in_loss",
        lambda c: lambda: TripletLoss(distance_metric_name="cosinus"),
        ValueError,
        ("unrecognized distance name", "cosinus", "euclidean"),
    ),
    Bad(
        "unknown_distance_in_metric",
        lambda c: lambda: RetrievalRPrecision("l2"),
        ValueError,
        ("unrecognized distance name", "l2", "cosine"),
    ),
    Bad(
        "loss_groups_shorter_than_embeddings",
        lambda c: lambda: TripletLoss()(torch.randn(4, 3), groups=torch.tensor([0, 1, 0])),
        ValueError,
        ("groups", "one id per embedding", r"\(4,\)"),
    ),
    Bad(
        "metric_k_larger_than_candidates",
        lambda c: (
            lambda: RetrievalPrecision(k=10).compute(
                torch.randn(4, 3),
                pairs=torch.tensor([[0, 2], [1, 3]]),
                labels=torch.ones(2),
                subgroups=torch.zeros(4),
            )
        ),
        ValueError,
        ("k=10", "larger than the 3 candidates", "itself is excluded", "smaller k"),
    ),
    Bad(
        "evaluator_k_larger_than_candidates",
        lambda c: (
            lambda: Quaterion.evaluate(
                Evaluator(RetrievalPrecision(k=100), PairSampler(log_progress=False)),
                pair_samples(4),
                SimilarityModel(MlpEncoder(), EmptyHead(32)),
            )
        ),
        ValueError,
        ("k=100", "larger than", "smaller k"),
    ),
    Bad(
        "metric_k_zero",
        lambda c: lambda: RetrievalPrecision(k=0),
        ValueError,
        ("k must be greater than 0",),
    ),
    Bad(
        "evaluation_groups_of_one_retrieval_metrics",
        lambda c: _eval_groups(GroupRetrievalMetrics(k=1), _singletons()),
        ValueError,
        ("no query has a relevant candidate", "single member"),
    ),
    Bad(
        "evaluation_groups_of_one_r_precision",
        lambda c: _eval_groups(RetrievalRPrecision(), _singletons()),
        ValueError,
        ("relevant", "single member"),
    ),
    Bad(
        "evaluation_of_empty_dataset",
        lambda c: _eval_groups(RetrievalRPrecision(), []),
        ValueError,
        ("empty", "dataset", "at least"),
    ),
    Bad(
        "evaluation_of_pair_samples_with_group_sampler",
        lambda c: _eval_groups(RetrievalRPrecision(), pair_samples(4)),
        TypeError,
        ("expects similaritygroupsample", "pairssimilaritydataloader"),
    ),
    # ---- servable directories (SimilarityModel.load / save / encode) ----
    Bad(
        "servable_missing_weights",
        lambda c: _broken_servable(c, lambda p: (p / "head" / "weights.safetensors").unlink()),
        FileNotFoundError,
        ("missing file", "head/weights.safetensors"),
    ),
    Bad(
        "servable_corrupted_weights",
        lambda c: _broken_servable(c, lambda p: _corrupt(p / "head" / "weights.safetensors")),
        CorruptFileError,
        ("corrupted", "head/weights.safetensors", "re-save"),
    ),
    Bad(
        "servable_truncated_config",
        lambda c: _broken_servable(c, lambda p: (p / "config.json").write_text('{"head": ')),
        CorruptFileError,
        ("config.json", "not valid json", "re-save"),
    ),
    Bad(
        "servable_config_without_head",
        lambda c: _broken_servable(c, lambda p: (p / "config.json").write_text('{"encoders": []}')),
        CorruptFileError,
        ("lacks the 'head'", "not written by similaritymodel.save"),
    ),
    Bad(
        "servable_config_names_an_untrusted_module",
        lambda c: _broken_servable(c, lambda p: _edit_servable_config(p, head={"module": "this"})),
        UntrustedModuleError,
        ("module 'this'", "not trusted", r"trusted_modules=\['this'\]"),
    ),
    Bad(
        "servable_manifest_path_leads_out",
        lambda c: _broken_servable(
            c, lambda p: _edit_servable_config(p, files={"../x": {"size": 1, "sha256": "0"}})
        ),
        CorruptFileError,
        ("'../x'", "not a plain path inside its directory"),
    ),
    Bad(
        "servable_symlink_leads_out",
        lambda c: _broken_servable(c, _link_head_weights_out),
        CorruptFileError,
        ("head/weights.safetensors", "link leading outside", "re-save"),
    ),
    Bad(
        "servable_file_is_a_fifo",
        lambda c: _broken_servable(
            c,
            lambda p: (
                (p / "head" / "config.json").unlink(),
                os.mkfifo(p / "head" / "config.json"),
            ),
        ),
        CorruptFileError,
        ("head/config.json", "not a regular file"),
    ),
    Bad(
        "servable_file_not_in_manifest",
        lambda c: _broken_servable(c, lambda p: (p / "head" / "weights.bin").write_bytes(b"x")),
        CorruptFileError,
        ("head/weights.bin", "manifest does not list", "remove them, or re-save"),
    ),
    Bad(
        "servable_directory_absent",
        lambda c: lambda: SimilarityModel.load(c.root / "nowhere"),
        FileNotFoundError,
        ("no saved model", "does not exist"),
    ),
    pytest.param(
        Bad(
            "store_index_without_append_or_replace",
            lambda c: (lambda store, servable: lambda: check_index(store, servable, 8))(
                *_indexed_store(c)
            ),
            FileExistsError,
            ("already exists", "--append", "--replace"),
        ),
        marks=NEEDS_QDRANT_EDGE,
    ),
    pytest.param(
        Bad(
            "store_search_with_another_servable",
            lambda c: (lambda store, _: lambda: _check_search(store, c.servable()))(
                *_indexed_store(c)
            ),
            ValueError,
            ("another servable", "--replace"),
        ),
        marks=NEEDS_QDRANT_EDGE,
    ),
    pytest.param(
        Bad(
            "store_search_on_a_directory_that_is_not_a_store",
            lambda c: (lambda servable: lambda: _check_search(c.root / "mine", servable))(
                _not_a_store(c)
            ),
            FileNotFoundError,
            ("no vector store at", "quaterion index"),
        ),
        marks=NEEDS_QDRANT_EDGE,
    ),
    pytest.param(
        Bad(
            "store_index_into_a_foreign_directory",
            lambda c: (
                lambda servable: lambda: check_index(str(c.root / "mine"), servable, 8, "replace")
            )(_not_a_store(c)),
            FileExistsError,
            ("not a vector store", "new or empty directory"),
        ),
        marks=NEEDS_QDRANT_EDGE,
    ),
    Bad(
        "save_over_a_foreign_directory",
        lambda c: (
            c.file("notes.txt", "mine"),
            lambda: SimilarityModel(MlpEncoder(), EmptyHead(32)).save(c.root),
        )[1],
        FileExistsError,
        ("not a saved model", "new or empty directory"),
    ),
    Bad(
        "encode_records_of_the_wrong_type",
        lambda c: lambda: SimilarityModel(MlpEncoder(), EmptyHead(32)).encode(["a", "b"]),
        TypeError,
        ("encoder 'default'", "mlpencoder", "str"),
    ),
    Bad(
        "encode_batch_size_zero",
        lambda c: (
            lambda: SimilarityModel(MlpEncoder(), EmptyHead(32)).encode(
                [torch.zeros(16)], batch_size=0
            )
        ),
        ValueError,
        ("batch_size must be at least 1", "0"),
    ),
    # ---- `quaterion fit` configs (quaterion.cli.config) ----
    Bad(
        "cli_unknown_field",
        lambda c: _load_cli_config(c, _fit_config(epoch=3)),
        ConfigError,
        ("unknown config field 'epoch'", "valid fields", "epochs"),
    ),
    Bad(
        "cli_unknown_nested_field",
        lambda c: _load_cli_config(c, _fit_config(data={"kind": "csv", "path": "x", "rows": 5})),
        ConfigError,
        ("unknown config field 'data.rows'", "valid fields", "limit"),
    ),
    Bad(
        "cli_unknown_head",
        lambda c: _load_cli_config(c, _fit_config(head={"name": "MagicHead"})),
        ConfigError,
        ("head.name", "magichead", "valid values", "skipconnectionhead"),
    ),
    Bad(
        "cli_unknown_loss",
        lambda c: _load_cli_config(c, _fit_config(loss={"name": "HingeLoss"})),
        ConfigError,
        ("loss.name", "hingeloss", "valid values", "tripletloss"),
    ),
    Bad(
        "cli_unknown_loss_argument",
        lambda c: _load_cli_config(
            c, _fit_config(loss={"name": "TripletLoss", "kwargs": {"mining": "hard", "p": 2}})
        ),
        ConfigError,
        ("loss.kwargs", r"\['p'\]", "valid", "margin"),
    ),
    Bad(
        "cli_negative_batch_size",
        lambda c: _load_cli_config(c, _fit_config(batch_size=-4)),
        ConfigError,
        ("batch_size", "at least 1", "-4"),
    ),
    Bad(
        "cli_wrong_type",
        lambda c: _load_cli_config(c, _fit_config(epochs="five")),
        ConfigError,
        ("epochs", "must be int", "five"),
    ),
    Bad(
        "cli_invalid_yaml",
        lambda c: _load_cli_config(c, "data: [kind: csv\n"),
        ConfigError,
        ("not valid yaml", "fit.yaml"),
    ),
    Bad(
        "cli_nan_number",
        lambda c: _load_cli_config(c, "data: {kind: csv, path: p.csv}\nlr: .nan\n"),
        ConfigError,
        ("'lr'", "finite number", "nan"),
    ),
    Bad(
        "cli_infinite_loss_argument",
        lambda c: _load_cli_config(
            c, _fit_config(loss={"name": "TripletLoss", "kwargs": {"margin": float("inf")}})
        ),
        ConfigError,
        ("'loss.kwargs.margin'", "finite number", "inf"),
    ),
    Bad(
        "cli_negative_margin",
        lambda c: _load_cli_config(
            c, _fit_config(loss={"name": "ContrastiveLoss", "kwargs": {"margin": -1}})
        ),
        ConfigError,
        ("'loss.kwargs.margin'", "at least 0", "-1"),
    ),
    Bad(
        "cli_head_argument_of_the_wrong_type",
        lambda c: _load_cli_config(
            c, _fit_config(head={"name": "SkipConnectionHead", "kwargs": {"n_layers": "2"}})
        ),
        ConfigError,
        ("'head.kwargs.n_layers'", "must be int", "str '2'"),
    ),
    Bad(
        "cli_group_count_in_loss_arguments",
        lambda c: _load_cli_config(
            c, _fit_config(loss={"name": "SoftmaxLoss", "kwargs": {"num_groups": 10**12}})
        ),
        ConfigError,
        ("'loss.kwargs'", "num_groups", "works out", "remove it"),
    ),
    Bad(
        "cli_evaluate_k_beyond_the_candidates",
        lambda c: (
            lambda: evaluate_samples(
                SimilarityModel(MlpEncoder(), EmptyHead(32)), "groups", group_samples(8), [1, 50]
            )
        ),
        ValueError,
        ("-k 50", "7 candidates", "between 1 and 7"),
    ),
    # ---- users' data files (quaterion.data readers, `quaterion fit` data) ----
    Bad(
        "data_file_of_one_group",
        lambda c: _load_groups_file(
            c, "obj,group\n" + "".join(f"t{i},billing\n" for i in range(8))
        ),
        ValueError,
        ("1 group", "billing", "at least 2 groups", "add samples of other groups"),
    ),
    Bad(
        "data_file_of_singleton_groups",
        lambda c: _load_groups_file(c, "obj,group\n" + "".join(f"t{i},g{i}\n" for i in range(8))),
        ValueError,
        ("8 groups of one sample each", "at least 2 members", "more samples per group"),
    ),
    Bad(
        "data_file_in_latin1",
        lambda c: _load_groups_file(c, "obj,group\ncafé,a\ntea,b\n", encoding="latin-1"),
        DataFileError,
        ("data.csv, line 2", "not utf-8", "iconv -f latin1 -t utf-8"),
    ),
    Bad(
        "data_file_row_with_an_unquoted_delimiter",
        lambda c: _load_groups_file(c, "obj,group\na,x\nleaving, cancel all,cancel\n"),
        DataFileError,
        ("line 3", "3 fields", "header names 2", "quote"),
    ),
    Bad(
        "class_loss_of_zero_groups",
        lambda c: lambda: SoftmaxLoss(embedding_size=8, num_groups=0),
        ValueError,
        ("num_groups must be a positive integer", "got 0", "grouplabels"),
    ),
    Bad(
        "unhashable_group_label",
        lambda c: lambda: GroupLabels([1, [2, 3]]),
        TypeError,
        ("sample 1", "hashable", "list"),
    ),
    # ---- places a run writes, checked before any work (`quaterion fit` / `export`) ----
    Bad(
        "fit_servable_path_is_a_file",
        lambda c: _fit_outputs(c.file("servable", "x")),
        NotADirectoryError,
        ("servable directory", "is a file", "directory is needed", "choose another path"),
    ),
    Bad(
        "fit_servable_path_is_a_foreign_directory",
        lambda c: _fit_outputs(_foreign_directory(c)),
        FileExistsError,
        ("servable directory", "must not overwrite", "new or empty directory"),
    ),
    Bad(
        "fit_cache_dir_under_a_file",
        lambda c: _fit_outputs(c.root / "out", cache=c.file("taken", "x") / "cache"),
        NotADirectoryError,
        ("cache directory", "cannot be created", "taken is a file"),
    ),
    Bad(
        "fit_checkpoint_path_is_a_directory",
        lambda c: (
            (c.root / "out.ckpt").mkdir(),
            _fit_outputs(c.root / "out"),
        )[1],
        IsADirectoryError,
        ("checkpoint file", "out.ckpt", "is a directory", "file path"),
    ),
    Bad(
        "fit_resume_without_a_checkpoint",
        lambda c: _fit_outputs(c.root / "out", resume=str(c.root / "gone.ckpt")),
        FileNotFoundError,
        ("no checkpoint to resume from", "gone.ckpt", "run without --resume"),
    ),
    Bad(
        "export_onto_an_existing_file",
        lambda c: _export(c, c.file("model.onnx", "keep")),
        FileExistsError,
        ("onnx file", "already exists", "--overwrite"),
    ),
]


def _snapshot(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): path.stat().st_size if path.is_file() else -1
        for path in root.rglob("*")
    }


def _params() -> list[Any]:
    params = []
    for row in ROWS:
        bad = row.values[0] if hasattr(row, "values") else row
        marks = list(row.marks) if hasattr(row, "marks") else []
        params.append(pytest.param(bad, marks=marks, id=bad.name))
    return params


def test_table_has_at_least_25_kinds_of_bad_input():
    names = [param.id for param in _params()]
    assert len(names) == len(set(names)) >= 25


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("bad", _params())
def test_bad_input_is_refused_early_clearly_and_cleanly(bad: Bad, tmp_path: Path):
    ctx = Ctx(tmp_path)
    call = bad.setup(ctx)
    before = _snapshot(tmp_path)
    with pytest.raises(bad.error) as raised:
        call()
    message = str(raised.value).lower()
    missing = [pattern for pattern in bad.patterns if not re.search(pattern, message)]
    assert not missing, f"message {str(raised.value)!r} lacks {missing}"
    if not bad.starts_training:
        assert [model.steps for model in ctx.models] == [0] * len(ctx.models)
    assert _snapshot(tmp_path) == before, "something was written before the error"
