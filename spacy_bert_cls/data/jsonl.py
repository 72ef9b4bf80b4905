"""Text classification JSONL: one `{"text": ..., "label": ...}` (exclusive classes) or
`{"text": ..., "labels": [...]}` (multi-label) object a line, checked record by record,
and the label set the records are scored against."""
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import DataError
from ..safe_tokenizer import SURROGATES
from .lines import PathLike, iter_lines

MAX_LABELS_SHOWN = 10


def read_textcat_jsonl(
    path: PathLike, labels: Optional[Sequence[Union[str, int]]] = None
) -> Iterator[Tuple[str, Dict[str, float]]]:
    """Stream the records of a JSONL text classification file.

    Each line holds an object with a "text" string and either a "label"
    (exclusive classes) or a "labels" list (multi-label, may be empty); other
    keys are ignored and blank lines are skipped. Labels may be strings or
    integers (integers become strings). One file uses one of the two keys.

    path (Union[str, Path]): The JSONL file.
    labels (Optional[Sequence[Union[str, int]]]): The label set. A record
        with another label is an error. None (or empty) to read the file once
        first to collect the labels in it.
    YIELDS (Tuple[str, Dict[str, float]]): The text, and cats that give every
        label of the set a value: 1.0 for the record's labels, 0.0 for the
        rest (spaCy's textcat reads a label left out as missing, not 0.0).
    """
    path = Path(path)
    label_set = normalize_labels(labels) if labels else collect_textcat_labels(path)
    known = set(label_set)
    for number, text, gold in _iter_textcat_records(path):
        cats = dict.fromkeys(label_set, 0.0)
        for label in gold:
            if label not in known:
                raise DataError(path, number, _unknown_label_message(label, label_set))
            cats[label] = 1.0
        yield text, cats


def collect_textcat_labels(path: PathLike) -> List[str]:
    """Read a JSONL text classification file once, checking every record, and
    return the labels it uses.

    path (Union[str, Path]): The JSONL file.
    RETURNS (List[str]): The labels, sorted.
    """
    seen = set()
    for _, _, gold in _iter_textcat_records(Path(path)):
        seen.update(gold)
    return sorted(seen)


def _iter_textcat_records(path: Path) -> Iterator[Tuple[int, str, List[str]]]:
    """Yield (line number, text, gold labels) for each record, checked."""
    label_key: Optional[str] = None
    first_number = 0
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        record = _parse_json_object(path, number, line)
        text = _record_text(path, number, record)
        key = _record_label_key(path, number, record)
        if label_key is None:
            label_key, first_number = key, number
        elif key != label_key:
            raise DataError(
                path, number,
                f"has {key!r} but line {first_number} has {label_key!r}: use \"label\" "
                f"(one class per text) or \"labels\" (a list) in the whole file, not both",
            )
        yield number, text, _record_labels(path, number, record, key)
    if label_key is None:
        raise DataError(path, None, "no examples: the file is empty or has only blank lines")


def _parse_json_object(path: Path, number: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(path, number, f"invalid JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(record, dict):
        raise DataError(
            path, number,
            f"expected a JSON object like {{\"text\": ..., \"label\": ...}}, "
            f"got a {_json_type(record)}",
        )
    return record


def _record_text(path: Path, number: int, record: dict) -> str:
    if "text" not in record:
        raise DataError(path, number, 'missing "text" key')
    text = record["text"]
    if not isinstance(text, str):
        raise DataError(path, number, f'"text" must be a string, got a {_json_type(text)}')
    if not text.strip():
        raise DataError(path, number, '"text" is empty')
    surrogate = SURROGATES.search(text)
    if surrogate:
        raise DataError(
            path, number,
            f'"text" has a lone surrogate (U+{ord(surrogate.group()):04X} at character '
            f'{surrogate.start()}), not valid Unicode: a \\u{ord(surrogate.group()):04x} escape without '
            f"its pair, often half an emoji cut off; repair or remove it",
        )
    return text


def _record_label_key(path: Path, number: int, record: dict) -> str:
    has_label, has_labels = "label" in record, "labels" in record
    if has_label and has_labels:
        raise DataError(path, number, 'has both "label" and "labels"; keep one')
    if not (has_label or has_labels):
        raise DataError(
            path, number,
            'missing label: add "label" (one class per text) or "labels" (a list, multi-label)',
        )
    return "label" if has_label else "labels"


def _record_labels(path: Path, number: int, record: dict, key: str) -> List[str]:
    value = record[key]
    if key == "label":
        return [_label_to_str(path, number, value, '"label"')]
    if not isinstance(value, list):
        raise DataError(path, number, f'"labels" must be a list, got a {_json_type(value)}')
    return [_label_to_str(path, number, label, 'each of "labels"') for label in value]


def _label_to_str(path: Path, number: int, value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(
            path, number, f"{what} must be a string or an integer, got a {_json_type(value)}"
        )
    label = str(value)
    if not label.strip():
        raise DataError(path, number, f"{what} is an empty string")
    return label


def normalize_labels(labels: Sequence[Union[str, int]]) -> List[str]:
    """Labels as strings, without repeats, in the given order."""
    return list(dict.fromkeys(str(label) for label in labels))


def _unknown_label_message(label: str, label_set: List[str]) -> str:
    shown = ", ".join(repr(known) for known in label_set[:MAX_LABELS_SHOWN])
    if len(label_set) > MAX_LABELS_SHOWN:
        shown += f", ... ({len(label_set)} in all)"
    return f"label {label!r} is not in the given labels ({shown})"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

