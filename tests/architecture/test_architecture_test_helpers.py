"""Test modules share helpers through tests/support.py, never `from conftest import`: pytest
loads every conftest.py under the one module name `conftest`, so with two of them an import
from `conftest` gets whichever was loaded last and collection fails."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_module_imports_from_conftest():
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if any(
            line.startswith(("from conftest import", "import conftest"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == [], f"import these helpers from tests/support.py instead: {offenders}"
