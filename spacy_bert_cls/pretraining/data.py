"""Raw text for pretraining, streamed: .txt (a paragraph a line, blank lines between
documents) and JSONL ({"text": ...} a document a line). Nothing is loaded whole.
warn_if_tagged takes a first look at a file for tagged (CoNLL) data given as raw text."""
import json
import logging
import shlex
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from ..errors import DataError
from ..safe_tokenizer import SURROGATES
from ..tags import is_valid_tag

DEFAULT_MAX_LINE_CHARS = 1_000_000
# Non-blank lines read by warn_if_tagged.
SNIFF_LINES = 200
# CoNLL -> raw text: each sentence's first column joined into a line, a blank line (a new
# document) at each -DOCSTART-. {file}: the CoNLL file, {out}: the .txt to write.
CONLL_TO_RAW = ("awk '/^-DOCSTART-/{{if(n)print \"\"; n=0; print \"\"; next}} NF{{printf \"%s \", $1; n=1; next}} "
                "n{{print \"\"; n=0}} END{{if(n)print \"\"}}' {file} > {out}")

logger = logging.getLogger(__name__)


def iter_documents(path: Union[str, Path], max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> Iterator[Tuple[int, List[str]]]:
    """Yield (line number of its first line, paragraphs) for each document of a raw text file.

    Raises DataError (file and line) for text that is not UTF-8, bad JSON, a JSONL line
    without a string "text", a line over `max_line_chars`, or a file with no text at all.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, "is a folder: give one raw text file (.txt, a paragraph a line and a blank line "
                                    "between documents, or .jsonl)")
    if not path.is_file():
        raise DataError(path, None, "no such file")
    jsonl = path.suffix.lower() in (".jsonl", ".json")
    found = False
    paragraphs: List[str] = []
    first_line = 0
    for number, line in _lines(path, max_line_chars):
        if len(line) > max_line_chars:
            raise DataError(path, number, f"line of {len(line):,} characters, over the limit of "
                                          f"{max_line_chars:,} (split it into paragraphs, or raise max_line_chars)")
        if jsonl:
            if not line.strip():
                continue
            text = _jsonl_text(path, number, line)
            lines = [p.strip() for p in text.splitlines() if p.strip()]
            if lines:
                found = True
                yield number, lines
            continue
        if line.strip():
            if not paragraphs:
                first_line = number
            paragraphs.append(line.strip())
        elif paragraphs:
            found = True
            yield first_line, paragraphs
            paragraphs = []
    if paragraphs:
        found = True
        yield first_line, paragraphs
    if not found:
        raise DataError(path, None, "no text in the file (it is empty or blank)")


def _lines(path: Path, max_line_chars: int) -> Iterator[Tuple[int, str]]:
    # readline with a bound: a file of one giant line is refused without being read whole
    # (a UTF-8 character is at most 4 bytes).
    limit = 4 * max_line_chars + 2
    with path.open("rb") as file_:
        number = 0
        while True:
            raw = file_.readline(limit)
            if not raw:
                return
            number += 1
            if len(raw) == limit and not raw.endswith(b"\n"):
                raise DataError(path, number, f"line of over {limit:,} bytes, over the limit of {max_line_chars:,} "
                                              f"characters (split it into paragraphs, or raise max_line_chars)")
            try:
                yield number, raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(path, number, f"not UTF-8 text ({err.reason} at byte {err.start} of the line)") from None


def _jsonl_text(path: Path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(path, number, f"invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DataError(path, number, 'expected an object with a string "text"')
    surrogate = SURROGATES.search(record["text"])
    if surrogate:
        raise DataError(path, number, f'"text" has a lone surrogate (U+{ord(surrogate.group()):04X}), not valid '
                                      f"Unicode: a \\u escape without its pair; repair or remove it")
    return record["text"]


def validate_raw_file(path: Union[str, Path], max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> int:
    """Read a raw text file through once, streaming, so that a bad line stops a run before
    it writes anything (DataError with the file and line). RETURNS its number of documents."""
    count = 0
    for _ in iter_documents(path, max_line_chars):
        count += 1
    return count


def iter_paragraphs(path: Union[str, Path], max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> Iterator[str]:
    for _, paragraphs in iter_documents(path, max_line_chars):
        yield from paragraphs


def _ends_in_tag(line: str) -> bool:
    fields = line.split()
    return 2 <= len(fields) <= 4 and is_valid_tag(fields[-1])


def warn_if_tagged(path: Union[str, Path], max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> Optional[str]:
    """Look at the first SNIFF_LINES non-blank lines of a .txt raw text file: when most end
    in a tag column (CoNLL: 2-4 columns, the last O, B-X, I-X ...) or most have a tab, log
    a warning with the figure and what to do. RETURNS the warning, or None. (JSONL is not
    looked at: its lines are JSON.)"""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        return None
    lines: List[str] = []
    for _, line in _lines(path, max_line_chars):
        if line.strip():
            lines.append(line)
            if len(lines) == SNIFF_LINES:
                break
    if not lines:
        return None
    tagged = sum(_ends_in_tag(line) for line in lines)
    tabbed = sum("\t" in line for line in lines)
    if 2 * tagged > len(lines):
        message = (f"{path} looks like tagged data, not raw text: {tagged} of the first {len(lines)} lines end "
                   f"in a tag column (CoNLL); pretraining would learn the tags as words. Pass the raw text "
                   f"(a paragraph a line, a blank line between documents), or make it from the CoNLL file: "
                   f"{CONLL_TO_RAW.format(file=shlex.quote(str(path)), out='raw.txt')} (or, for a file named .conll, .iob, "
                   f".tsv or .bio: spacy-bert-cls convert FILE --format raw -o raw.txt)")
    elif 2 * tabbed > len(lines):
        message = (f"{path} looks like tab-separated columns, not raw text: {tabbed} of the first {len(lines)} "
                   f"lines have a tab; pretraining would learn every column as words. Keep only the text "
                   f"column (a paragraph a line, a blank line between documents)")
    else:
        return None
    logger.warning("%s", message)
    return message
