"""examples/cache_usage.py at its CI size: the saved cache is written once, then reused."""

from examples_loader import load_example


def test_cache_example_persists_the_cache_and_a_later_fit_reuses_it(tmp_path):
    example = load_example("cache_usage")
    cache_dir = tmp_path / "cache"
    timings = example.main(small=True, cache_dir=str(cache_dir))
    assert timings["first_fit_s"] > 0 and timings["second_fit_s"] > 0
    stored = {path: path.stat().st_mtime_ns for path in cache_dir.rglob("*.safetensors")}
    assert stored, "save_dir must hold the cached embeddings"

    train, held_out = example.lexical_definitions(160)
    example.timed_fit(str(cache_dir), train, held_out, epochs=1)
    assert {path: path.stat().st_mtime_ns for path in cache_dir.rglob("*.safetensors")} == stored
