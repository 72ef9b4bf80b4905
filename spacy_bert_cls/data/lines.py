"""Reading a data file: that it exists, and its lines, streamed, bounded and checked UTF-8."""
from pathlib import Path
from typing import Iterator, Tuple, Union

from ..errors import DataError

PathLike = Union[str, Path]

# A line longer than this is not a record anyone meant: refused before it is read whole.
MAX_LINE_BYTES = 10_000_000


def check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(path, None, "no such file or folder (file not found)")


def iter_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, line without its line break) of a UTF-8
    file, streaming. A leading byte order mark is dropped.
    """
    check_exists(path)
    if path.is_dir():
        raise DataError(path, None, "is a folder; give a data file")
    with path.open("rb") as file_:
        number = 0
        while True:
            raw = file_.readline(max_line_bytes + 2)  # at most the limit, "\r\n" and one more
            if not raw:
                break
            number += 1
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise DataError(
                    path, number,
                    f"line longer than {max_line_bytes:,} bytes: a data file has one record "
                    f"(or one token) a line; is this the right file?",
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    path, number,
                    f"not valid UTF-8: byte {raw[err.start]:#04x} at byte {err.start + 1} "
                    f"of the line ({err.reason}); save the file as UTF-8",
                ) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield number, line.rstrip("\r\n")

