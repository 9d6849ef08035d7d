"""`quaterion fit` in its own process, held at a fixed step until a stop signal arrives; run by
test_reliability_signals.py.

    python cli_fit_script.py MARKER EPOCH -- fit CONFIG [options]

Before batch 1 of epoch EPOCH it creates MARKER and waits (`HoldUntilSignal`) for the signal the
test sends; the exit status is the command's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from reliability_support import HoldUntilSignal

import quaterion.cli.training as training
from quaterion.cli import main
from quaterion.train.callbacks import StopOnSignal


def held(marker: Path, epoch: int) -> Any:
    """`training.fit` with a HoldUntilSignal before the command's StopOnSignal."""
    fit = training.fit

    def fit_holding(*args: Any, callbacks: Any = (), **kwargs: Any) -> Any:
        (stop,) = [callback for callback in callbacks if isinstance(callback, StopOnSignal)]
        return fit(*args, callbacks=[HoldUntilSignal(epoch, marker, stop), *callbacks], **kwargs)

    return fit_holding


if __name__ == "__main__":
    marker, epoch, separator, *argv = sys.argv[1:]
    assert separator == "--", __doc__
    training.fit = held(Path(marker), int(epoch))
    sys.exit(main(argv))
