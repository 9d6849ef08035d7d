"""Export a whole `SimilarityModel` (encoders, pooling and head) to one ONNX file, and run it.

Works for models whose encoders' collate functions return tensors: a tensor per encoder (e.g.
images, pre-computed features) or a dict of tensors (e.g. `input_ids` + `attention_mask` from
`HuggingFaceEncoder`). Needs the extra `quaterion[onnx]` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from quaterion_models import SimilarityModel
from quaterion_models.encoders import SwitchEncoder
from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.heads import SwitchHead
from quaterion_models.utils.files import create_staging_file
from quaterion_models.utils.tensors import first_device, move_to_device

OUTPUT_NAME = "embeddings"


def _flatten(data: dict[str, Any]) -> list[tuple[str, str, str | None, Tensor]]:
    """Collated per-encoder inputs -> (input name, encoder key, dict field or None, tensor).

    Sorted by encoder key, then field. With one encoder the names are its dict fields
    (`input_ids`, ...) or `input`; with several they are prefixed by the encoder key
    (`text.input_ids`, `image`).
    """
    single = len(data) == 1
    flat = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, Tensor):
            flat.append(("input" if single else key, key, None, value))
        elif (
            isinstance(value, dict) and value and all(isinstance(v, Tensor) for v in value.values())
        ):
            flat.extend(
                (field if single else f"{key}.{field}", key, field, value[field])
                for field in sorted(value)
            )
        else:
            raise TypeError(
                f"Encoder {key!r} takes {type(value).__name__} inputs; ONNX export needs "
                "encoders whose collate function returns a tensor or a dict of tensors"
            )
    return flat


def onnx_inputs(data: dict[str, Any]) -> dict[str, Tensor]:
    """Collated per-encoder inputs (`collate_fn(records)["data"]`) -> `{input name: tensor}`.

    Args:
        data: the `"data"` part of a collated batch.
    """
    return {name: tensor for name, _, _, tensor in _flatten(data)}


class _FlatInputsModel(nn.Module):
    """The model called with positional tensors (the flattened inputs) instead of a batch dict."""

    def __init__(self, model: SimilarityModel, layout: list[tuple[str, str | None]]):
        super().__init__()
        self.model = model
        self.layout = layout  # per positional input: (encoder key, dict field or None)

    def forward(self, *tensors: Tensor) -> Tensor:
        data: dict[str, Any] = {}
        for (key, field), tensor in zip(self.layout, tensors, strict=True):
            if field is None:
                data[key] = tensor
            else:
                data.setdefault(key, {})[field] = tensor
        return self.model({"data": data, "meta": []})


def _check_exportable(model: SimilarityModel, example_records: Sequence[Any]) -> None:
    if isinstance(model.head, SwitchHead) or any(
        isinstance(encoder, SwitchEncoder) for encoder in model.encoders.values()
    ):
        raise ValueError(
            "SwitchEncoder / SwitchHead route records in Python by their meta and cannot be "
            "exported as one graph; export a model per option instead"
        )
    if not isinstance(example_records, Sequence) or len(example_records) < 2:
        raise ValueError(
            "example_records must be a list of at least 2 raw records (a batch of 1 would fix "
            "the batch size of the exported graph)"
        )


def export_onnx(
    model: SimilarityModel,
    path: str | os.PathLike,
    example_records: Sequence[Any],
    opset_version: int | None = None,
) -> Path:
    """Write `model` as one ONNX graph to `path` (atomically) and return the path.

    `example_records` (>= 2 raw records) are collated to trace the graph. The batch axis of
    every input is dynamic, and so is the sequence axis of 2-D integer inputs (token ids and
    masks). The single output, `embeddings`, is `[B, output_size]`.

    Args:
        model: the model to export.
        path: the `.onnx` file to write.
        example_records: at least two raw records, used to trace the graph.
        opset_version: ONNX opset (None: the exporter's default).
    """
    import_optional("onnx", "onnx", "export_onnx")
    import_optional("onnxscript", "onnx", "export_onnx")
    _check_exportable(model, example_records)
    data = model.get_collate_fn()(list(example_records))["data"]
    flat = _flatten(move_to_device(data, first_device(model)))
    inputs = {name: tensor for name, _, _, tensor in flat}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic_shapes = tuple(
        {0: batch, 1: sequence}
        if tensor.dim() == 2 and not tensor.dtype.is_floating_point
        else {0: batch}
        for tensor in inputs.values()
    )
    wrapper = _FlatInputsModel(model, [(key, field) for _, key, field, _ in flat]).eval()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging, mode = create_staging_file(target)  # ONNX would write it 0600: chmod to `mode`
    was_training = model.training
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                wrapper,
                tuple(inputs.values()),
                input_names=list(inputs),
                output_names=[OUTPUT_NAME],
                opset_version=opset_version,
                dynamic_shapes=(dynamic_shapes,),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        program.save(str(staging), external_data=False)
        os.chmod(staging, mode)
        os.replace(staging, target)
    finally:
        model.train(was_training)
        staging.unlink(missing_ok=True)
    return target


class OnnxSimilarityModel:
    """Runs an exported model with onnxruntime: raw records -> embeddings, like `encode`.

    Args:
        path: file written by `export_onnx`.
        collate_fn: the original model's `get_collate_fn()` (turns records into inputs).
    """

    def __init__(self, path: str | os.PathLike, collate_fn: Callable[[list[Any]], dict]):
        onnxruntime = import_optional("onnxruntime", "onnx", "OnnxSimilarityModel")
        if not Path(path).is_file():
            raise FileNotFoundError(f"No ONNX model at {path}; write one with export_onnx")
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.collate_fn = collate_fn

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Embeddings `[B, D]` of already collated, flattened inputs (see `onnx_inputs`).

        Args:
            inputs: input name -> numpy array, as `onnx_inputs` names them.
        """
        missing = sorted(set(self.input_names) - set(inputs))
        if missing:
            raise ValueError(f"Missing ONNX inputs {missing}; the graph takes {self.input_names}")
        return self.session.run([OUTPUT_NAME], {name: inputs[name] for name in self.input_names})[0]

    def encode(self, records: list[Any], batch_size: int = 32) -> np.ndarray:
        """Embeddings `[N, D]` of raw records, collated and run in batches of `batch_size`.

        Args:
            records: raw records.
            batch_size: records run at once.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        chunks = []
        for start in range(0, len(records), batch_size):
            data = self.collate_fn(records[start : start + batch_size])["data"]
            chunks.append(self.run({k: v.numpy() for k, v in onnx_inputs(data).items()}))
        if chunks:
            return np.concatenate(chunks)
        width = self.session.get_outputs()[0].shape[-1]
        return np.empty((0, width if isinstance(width, int) else 0), dtype=np.float32)
