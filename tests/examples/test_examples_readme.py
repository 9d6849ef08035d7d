"""The README's quick start runs as written (the first two Python blocks, in order)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_starts_with_the_two_commands():
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    commands = [line for line in lines[1:8] if not line.startswith("```")]
    assert commands[:2] == [
        "bash scripts/setup.sh && .venv/bin/quaterion demo",
        "bash scripts/test.sh",
    ]


def test_readme_quick_start_trains_saves_and_serves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, serve = python_blocks()[:2]
    namespace: dict = {}
    exec(compile(train, "README quick start", "exec"), namespace)
    assert (tmp_path / "servable" / "config.json").is_file()
    exec(compile(serve, "README serving", "exec"), namespace)
    assert namespace["embeddings"].shape == (2, 384)
