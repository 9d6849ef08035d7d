"""onnxruntime vs torch: encode throughput of all-MiniLM-L6-v2 + a linear head on WordNet glosses.

Both paths use the same collate function (tokenizer) and batch size; the ONNX graph is the
whole model (transformer, mean pooling, normalisation and head) exported by
`quaterion.export.export_onnx`. Prints one JSON line.

    python bench/bench_onnx.py [--sentences 512] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from quaterion.data import load_wordnet, subsample
from quaterion.export import OnnxSimilarityModel, export_onnx
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import HuggingFaceEncoder, minilm_path
from quaterion_models.heads import LinearHead


def throughput(encode, records: list[str], batch_size: int) -> tuple[float, object]:
    """Records per second of `encode` after a one-batch burn-in, and its output."""
    encode(records[:batch_size])
    started = time.perf_counter()
    output = encode(records)
    return len(records) / (time.perf_counter() - started), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("QUATERION_PROGRESS", "0")

    synsets = subsample(load_wordnet(("noun",)), args.sentences, seed=0)
    sentences = [synset.definition for synset in synsets]
    torch.manual_seed(0)
    encoder = HuggingFaceEncoder(minilm_path(), normalize=True)
    model = SimilarityModel(encoder, LinearHead(encoder.embedding_size, output_size=128)).eval()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = export_onnx(model, Path(tmp) / "model.onnx", sentences[:4])
        export_seconds = time.perf_counter() - started
        runner = OnnxSimilarityModel(path, model.get_collate_fn())
        torch_rate, torch_out = throughput(
            lambda r: model.encode(r, batch_size=args.batch_size, to_numpy=False),
            sentences,
            args.batch_size,
        )
        onnx_rate, onnx_out = throughput(
            lambda r: runner.encode(r, batch_size=args.batch_size), sentences, args.batch_size
        )
    max_diff = float((torch.from_numpy(onnx_out) - torch_out).abs().max())
    print(
        json.dumps(
            {
                "bench": "onnx_vs_torch_encode",
                "model": "all-MiniLM-L6-v2 + LinearHead(384->128)",
                "data": "WordNet noun definitions",
                "sentences": len(sentences),
                "batch_size": args.batch_size,
                "torch_threads": torch.get_num_threads(),
                "torch_sentences_per_s": round(torch_rate, 1),
                "onnxruntime_sentences_per_s": round(onnx_rate, 1),
                "speedup_onnx_over_torch": round(onnx_rate / torch_rate, 3),
                "max_abs_diff": max_diff,
                "export_s": round(export_seconds, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
