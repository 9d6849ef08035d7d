"""Checks of the places a run will write, made before any encoding or training starts.

A run that finds a file in the way only when it saves its result has wasted the whole run;
these checks find it first. Each error names what the path is for, what is wrong and the fix.
Nothing is created here: a missing directory is fine when its nearest existing ancestor is a
writable directory (the writer creates it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PathLike = str | os.PathLike


def _check_creatable(target: Path, what: str) -> None:
    """Raise unless `target` can be created (or replaced) in its folder: the nearest existing
    ancestor of that folder must be a writable directory."""
    ancestor = target.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(
            f"{what} {target} cannot be created: {ancestor} is a file, not a directory; "
            "choose another path"
        )
    _check_writable(ancestor, what, target)


def _check_writable(directory: Path, what: str, target: Path) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{what} {target} cannot be written: directory {directory} is not writable; "
            "choose a writable location"
        )


def check_output_dir(
    path: PathLike,
    what: str,
    replaceable: Callable[[Path], bool] | None = None,
    replaced_whole: bool = False,
) -> Path:
    """Check that directory `path` can be written by a run; return it as a Path.

    Args:
        path: the directory the run writes.
        what: what it is for, as errors should name it ("servable directory").
        replaceable: for an existing non-empty directory, whether the run may reuse or replace
            it (e.g. "holds a previous servable"); None: any existing directory is fine.
        replaced_whole: the writer replaces the directory by renaming a sibling onto it, so
            its parent must be writable too (a servable); otherwise the directory itself.

    Raises NotADirectoryError (a file is in the way), FileExistsError (a non-empty directory
    that `replaceable` refuses) or PermissionError (not writable).
    """
    target = Path(path)
    if not target.exists():
        _check_creatable(target, what)
        return target
    if not target.is_dir():
        raise NotADirectoryError(
            f"{what} {target} is a file, but a directory is needed; remove it or choose "
            "another path"
        )
    if replaceable is not None and any(target.iterdir()) and not replaceable(target):
        raise FileExistsError(
            f"{what} {target} is a non-empty directory that this run must not overwrite; "
            "choose a new or empty directory"
        )
    if replaced_whole:
        _check_creatable(target, what)
    else:
        _check_writable(target, what, target)
    return target


def check_output_file(
    path: PathLike, what: str, overwrite: bool = True, overwrite_hint: str = "allow overwriting it"
) -> Path:
    """Check that file `path` can be written (atomically, next to itself); return it.

    Raises IsADirectoryError (a directory is in the way), FileExistsError (it exists and
    `overwrite` is False), NotADirectoryError or PermissionError (its folder cannot be
    created or written).

    Args:
        path: the file.
        what: what it is, named in errors.
        overwrite: whether an existing file may be replaced.
        overwrite_hint: how to allow replacing it, named in the error.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(
            f"{what} {target} is a directory, but a file is needed; give a file path"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{what} {target} already exists; choose another path or {overwrite_hint}"
        )
    _check_creatable(target, what)
    return target
