"""The collate function of training loaders: samples -> model-ready ``(features, targets)``."""

from __future__ import annotations

from typing import Any, Callable

from quaterion_models.encoders import Encoder
from quaterion_models.types import CollateFnType, MetaExtractorFnType
from quaterion_models.utils.meta import merge_meta


class TrainCollator:
    """Picklable collate function set on loaders by ``TrainableModel.setup_dataloader``.

    ``pre_collate_fn`` (the loader's) turns ``(index, sample)`` items into object ids, objects and
    targets; each encoder then collates the objects its own way, and its meta extractor reads
    them. Returns ``({"data": {encoder: batch}, "meta": [dict per object]}, targets)``.
    Subclasses (the cache) change what an encoder collates through ``pre_encoder_collate``.

    Args:
        pre_collate_fn: the loader's `pre_collate_fn`: samples -> (object ids, objects, targets).
        encoder_collates: each encoder's collate function, by encoder name.
        meta_extractors: each encoder's meta extractor, by encoder name.
    """

    def __init__(
        self,
        pre_collate_fn: Callable,
        encoder_collates: dict[str, CollateFnType],
        meta_extractors: dict[str, MetaExtractorFnType],
    ):
        self.pre_collate_fn = pre_collate_fn
        self.encoder_collates = encoder_collates
        self.meta_extractors = meta_extractors

    @classmethod
    def for_encoders(
        cls, collate_fn: Callable, encoders: dict[str, Encoder], **kwargs: Any
    ) -> TrainCollator:
        """The collator of `encoders` over the pre-collate function behind `collate_fn`.

        Args:
            collate_fn: the loader's current collate function (a collator is unwrapped).
            encoders: the model's encoders, by name.
            **kwargs: further constructor arguments of the subclass.
        """
        return cls(
            pre_collate_fn_of(collate_fn),
            {name: encoder.get_collate_fn() for name, encoder in encoders.items()},
            {name: encoder.get_meta_extractor() for name, encoder in encoders.items()},
            **kwargs,
        )

    def pre_encoder_collate(self, features: list[Any], ids: list[int], encoder_name: str) -> Any:
        """What encoder ``encoder_name`` collates; default: the objects unchanged.

        Args:
            features: the objects of the batch.
            ids: their object ids.
            encoder_name: the encoder they are for.
        """
        return features

    def process_meta(self, meta: dict[str, list[dict]]) -> Any:
        """Per-encoder meta lists -> the model's ``meta`` (one merged dict per object).

        Args:
            meta: each encoder's meta dicts, by encoder name.
        """
        return merge_meta(meta)

    def collate_objects(self, ids: list[int], features: list[Any]) -> dict[str, Any]:
        """Objects (with their ids) -> ``{"data": {encoder: batch}, "meta": ...}``.

        Args:
            ids: object ids.
            features: the objects.
        """
        data = {
            name: collate(self.pre_encoder_collate(features, ids, name))
            for name, collate in self.encoder_collates.items()
        }
        meta = {name: extract(features) for name, extract in self.meta_extractors.items()}
        return {"data": data, "meta": self.process_meta(meta)}

    def __call__(self, batch: list[tuple[int, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        ids, features, targets = self.pre_collate_fn(batch)
        return self.collate_objects(ids, features), targets


def pre_collate_fn_of(collate_fn: Callable) -> Callable:
    """The loader-level pre-collate function behind ``collate_fn``: unwraps a TrainCollator (of
    any subclass), so re-setting a loader up never nests collators.

    Args:
        collate_fn: a loader's collate function.
    """
    return collate_fn.pre_collate_fn if isinstance(collate_fn, TrainCollator) else collate_fn
