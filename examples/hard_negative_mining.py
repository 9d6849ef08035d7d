"""Hard-negative mining: which triplets should a triplet loss learn from?

A batch of B grouped objects holds about B^3 triplets (anchor, positive, negative). Most are
already easy, so averaging over all of them (`mining="all"`) dilutes the signal; `"hard"` takes
each anchor's farthest positive and closest negative, `"semi_hard"` the closest negative that
is still farther than the positive (gentler on noisy labels). The three are trained on one
shared cache (MiniLM runs once for all of them) and ranked on the same held-out definitions.
Cross-batch memory, which supplies more negatives than one batch holds, is the next example:
examples/cross_batch_memory.py.

    python examples/hard_negative_mining.py            # 2000 definitions
    python examples/hard_negative_mining.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse
import tempfile

import pytorch_lightning as pl
from example_data import lexical_definitions
from text_groups import TextGroupsModel, fit, frozen_embeddings, scores, with_head


def main(small: bool = False, cache_dir: str | None = None) -> dict[str, dict[str, float]]:
    train, held_out = lexical_definitions(160 if small else 2000)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        # --8<-- [start:compare]
        frozen = None
        for mining in ("all", "semi_hard", "hard"):
            pl.seed_everything(0, verbose=False)
            model = TextGroupsModel(cache_dir or scratch, mining=mining)  # one shared cache
            fit(model, train, held_out, epochs=3 if small else 10, batch_size=32)
            if frozen is None:
                frozen = frozen_embeddings(model, [sample.obj for sample in held_out])
                results["frozen MiniLM"] = scores(frozen, held_out)
            results[f"mining={mining}"] = scores(with_head(model, frozen), held_out)
        # --8<-- [end:compare]
    print(f"held-out retrieval by mining strategy ({len(held_out)} definitions):")
    for name, values in results.items():
        print(f"  {name:<18}{values}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    parser.add_argument("--cache-dir", default=None, help="persist the cache here (default: temp)")
    args = parser.parse_args()
    main(args.small, args.cache_dir)
