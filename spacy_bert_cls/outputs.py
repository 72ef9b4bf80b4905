"""Where a command may write: never over what it reads, never a file where a folder goes.

Commands check their output paths here before they read or compute anything, so that a
mistyped path costs nothing and leaves nothing behind: one line that says what is wrong
(ValueError, which the commands print as such), and the user's files as they were.
"""
from pathlib import Path
from typing import Iterable, Union

PathLike = Union[str, Path]


def check_apart(output: PathLike, inputs: Iterable[PathLike], option: str = "the output") -> None:
    """A ValueError when `output` is one of `inputs`, a folder that holds one, or a file that
    already exists inside an input folder: writing it would replace what the command reads
    (`--force` does not change that). A new file inside an input folder is allowed."""
    out = Path(output).resolve()
    for path in inputs:
        source = Path(path).resolve()
        inside = source in out.parents and out.exists()
        if out == source or out in source.parents or inside:
            what = "is" if out == source else "holds" if out in source.parents else "is a file of"
            raise ValueError(f"{option} {output} {what} {path}, which this command reads: writing it would "
                             f"replace it; choose another path")


def check_file_output(path: PathLike, option: str = "the output") -> None:
    """A ValueError when no file can be written at `path`: it is a folder, or a part of
    the path before it is a file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder: give the path of a file to write")
    _check_parents(path, option)


def check_folder_output(path: PathLike, option: str = "the output") -> None:
    """A ValueError when no folder can be written at `path`: it is a file, or a part of
    the path before it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file: give the path of a folder to write")
    _check_parents(path, option)


def _check_parents(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option} {path}: {parent} is a file, not a folder")
            return
