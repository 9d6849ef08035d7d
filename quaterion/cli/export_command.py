"""`quaterion export SERVABLE --onnx OUT`: the servable as one ONNX graph, checked after export."""

from __future__ import annotations

import argparse

EXAMPLE_TEXTS = ["a short example sentence", "another, somewhat longer sentence to trace with"]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion export`."""
    parser.add_argument("servable", help="directory written by `quaterion fit` / save_servable")
    parser.add_argument("--onnx", required=True, help="output .onnx file")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the .onnx file if it already exists"
    )
    parser.add_argument(
        "--image-shape",
        default=None,
        help="C,H,W of one input image, for image servables (default: text inputs)",
    )


def run_export(args: argparse.Namespace) -> int:
    """Trace with example records, write the graph, and compare onnxruntime with torch."""
    import numpy as np
    import torch

    from quaterion.export.onnx import OnnxSimilarityModel, export_onnx
    from quaterion.utils.output_paths import check_output_file
    from quaterion_models import SimilarityModel

    check_output_file(args.onnx, "ONNX file", args.overwrite, overwrite_hint="pass --overwrite")
    model = SimilarityModel.load(args.servable)
    if args.image_shape:
        try:
            shape = [int(side) for side in args.image_shape.split(",")]
        except ValueError:
            raise ValueError(
                f"--image-shape must look like 1,28,28, got {args.image_shape!r}"
            ) from None
        generator = torch.Generator().manual_seed(0)
        examples = [torch.rand(shape, generator=generator) for _ in range(2)]
    else:
        examples = list(EXAMPLE_TEXTS)
    path = export_onnx(model, args.onnx, examples)
    exported = OnnxSimilarityModel(path, model.get_collate_fn())
    difference = np.abs(exported.encode(examples) - model.encode(examples)).max()
    print(f"Exported {args.servable} to {path}; max |onnxruntime - torch| = {difference:.2e}")
    return 0
