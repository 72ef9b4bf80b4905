"""A corpus reader that trains straight from raw data files.

`spacy-bert-cls.Corpus.v1` (registered through the `spacy_readers` entry point in
setup.py, not with a decorator) reads three kinds of files, so that

    python -m spacy train CONFIG --paths.train FILE --paths.dev FILE

needs no `spacy convert` step first:

- `.spacy` (DocBin) files or folders of them, through spaCy's own `Corpus`;
- `.jsonl` text classification, one `{"text": ..., "label": ...}` (exclusive
  classes) or `{"text": ..., "labels": [...]}` (multi-label) object a line;
- CoNLL / IOB NER files, one `token ... tag` line a token and a blank line
  after each sentence (IOB1, IOB2, BILUO and IOBES tags).

Every malformed line raises `spacy_bert_cls.errors.DataError`, which names the
file and the 1-based line: nothing is skipped silently.

A config block that uses it:

    [corpora.train]
    @readers = "spacy-bert-cls.Corpus.v1"
    path = ${paths.train}
    format = "auto"
    limit = 0
    max_length = 0
    labels = null
"""
import json
import random
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.errors import Errors as SpacyErrors
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Corpus, Example
from spacy.vocab import Vocab

from .errors import DataError
from .safe_tokenizer import SURROGATES
from .tags import is_valid_tag, tags_to_biluo, tags_to_spans  # noqa: F401 (tags_to_biluo: re-exported)

DOCBIN_SUFFIX = ".spacy"
JSONL_SUFFIXES = (".jsonl",)
CONLL_SUFFIXES = (".conll", ".iob", ".tsv", ".bio", ".annotated")
FORMATS = ("auto", "spacy", "jsonl", "conll")
DOCSTART = "-DOCSTART-"
MAX_LABELS_SHOWN = 10

PathLike = Union[str, Path]


def create_corpus_reader_v1(
    path: Optional[Path],
    format: str = "auto",
    limit: int = 0,
    max_length: int = 0,
    labels: Optional[List[str]] = None,
) -> Callable[[Language], Iterable[Example]]:
    """Create a reader of training or evaluation examples from a data file,
    registered as `spacy-bert-cls.Corpus.v1` (through the `spacy_readers`
    entry point).

    path (Optional[Path]): The data file, or a folder of `.spacy` files.
    format (str): "auto" (pick by extension: `.spacy`; `.jsonl`; `.conll`,
        `.iob`, `.tsv`, `.bio` or `.annotated`), or "spacy", "jsonl" or
        "conll" to force one.
    limit (int): The most examples to yield per call. 0 for no limit.
    max_length (int): Only for `.spacy` input, passed on to spaCy's `Corpus`:
        docs of `max_length` tokens or more are split into sentences where
        they have sentence boundaries, and skipped where they have none.
        0 for no limit. JSONL and CoNLL examples are never dropped for their
        length; the model truncates what is too long for it.
    labels (Optional[List[str]]): JSONL only: the text classification label
        set. Every record then gets a value for each of these labels, and a
        record with another label is an error. None (or empty) to use the
        labels seen in the file.
    RETURNS (Callable[[Language], Iterable[Example]]): A picklable reader,
        called with `nlp` once per epoch; it streams the file each time.
    """
    if path is None:
        raise ValueError(SpacyErrors.E913)
    return BertClsCorpus(path, format=format, limit=limit, max_length=max_length, labels=labels)


class BertClsCorpus:
    """Stream `Example` objects from a `.spacy`, `.jsonl` or CoNLL file.

    Like spaCy's `Corpus`, the object is called with `nlp` once per epoch and
    yields examples as it reads. For JSONL without a given label set, the
    first call reads the file once more to collect the labels, and the object
    keeps them for later calls.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        format: str = "auto",
        limit: int = 0,
        max_length: int = 0,
        labels: Optional[Sequence[Union[str, int]]] = None,
    ) -> None:
        """Check the path and format and keep the settings.

        path (Union[str, Path]): The data file, or a folder of `.spacy` files.
        format (str): "auto", "spacy", "jsonl" or "conll".
        limit (int): The most examples to yield per call. 0 for no limit.
        max_length (int): Passed on to spaCy's `Corpus` for `.spacy` input;
            unused for the other formats.
        labels (Optional[Sequence[Union[str, int]]]): The JSONL label set, or
            None (or empty) to collect it from the file.
        """
        self.path = Path(path)
        self.format = resolve_format(self.path, format)
        self.limit = limit
        self.max_length = max_length
        self.labels: Optional[List[str]] = _normalize_labels(labels) if labels else None
        self._collected_labels: Optional[List[str]] = None

    def __call__(self, nlp: Language) -> Iterator[Example]:
        """Yield the examples of the file.

        nlp (Language): The pipeline: its vocab and, for JSONL, its tokenizer.
        YIELDS (Example): The examples, in file order.
        """
        _check_exists(self.path)
        if self.format == "spacy":
            yield from self._docbin_examples(nlp)
        elif self.format == "jsonl":
            yield from self._textcat_examples(nlp)
        else:
            yield from self._conll_examples(nlp)

    def textcat_labels(self) -> List[str]:
        """The JSONL label set: the given one, or the labels in the file
        (collected on the first use and kept).

        RETURNS (List[str]): The labels.
        """
        if self.labels is not None:
            return self.labels
        if self._collected_labels is None:
            self._collected_labels = collect_textcat_labels(self.path)
        return self._collected_labels

    def _docbin_examples(self, nlp: Language) -> Iterator[Example]:
        corpus = _DocBinCorpus(self.path, limit=self.limit, max_length=self.max_length)
        count = 0
        for example in corpus(nlp):
            count += 1
            yield example
        if count == 0:
            raise DataError(self.path, None, _no_docbin_examples_message(self.max_length))

    def _textcat_examples(self, nlp: Language) -> Iterator[Example]:
        records = read_textcat_jsonl(self.path, labels=self.textcat_labels())
        for text, cats in _take(records, self.limit):
            yield Example.from_dict(nlp.make_doc(text), {"cats": cats})

    def _conll_examples(self, nlp: Language) -> Iterator[Example]:
        for words, tags in _take(read_conll(self.path), self.limit):
            yield conll_to_example(nlp, words, tags)


class _DocBinCorpus(Corpus):
    """spaCy's `Corpus`, with a `DataError` naming the file that is not a
    DocBin, and `limit` counted over all files of a folder."""

    def read_docbin(self, vocab: Vocab, locs: Iterable[PathLike]) -> Iterator[Doc]:
        count = 0
        for loc in locs:
            loc = Path(loc)
            if not loc.name.endswith(DOCBIN_SUFFIX):
                continue
            for doc in _load_docbin(loc).get_docs(vocab):
                if len(doc) == 0:
                    continue
                yield doc
                count += 1
                if self.limit >= 1 and count >= self.limit:
                    return


def resolve_format(path: Path, format: str = "auto") -> str:
    """Pick the reader for a path, by its extension where format is "auto".

    path (Path): The data file, or a folder of `.spacy` files.
    format (str): "auto", "spacy", "jsonl" or "conll".
    RETURNS (str): "spacy", "jsonl" or "conll".
    """
    if format not in FORMATS:
        raise ValueError(
            f"Unknown corpus format {format!r}: use one of {', '.join(map(repr, FORMATS))}."
        )
    _check_exists(path)
    if path.is_dir():
        if format not in ("auto", "spacy"):
            raise DataError(
                path, None,
                f"is a folder, which only the 'spacy' format reads (a folder of "
                f"{DOCBIN_SUFFIX} files); give the {format} file itself",
            )
        return "spacy"
    if format == "spacy" and not path.name.endswith(DOCBIN_SUFFIX):
        raise DataError(
            path, None,
            f"format 'spacy' reads only files named *{DOCBIN_SUFFIX} (spaCy's Corpus "
            f"skips the others); rename the file",
        )
    if format != "auto":
        return format
    return _format_from_suffix(path)


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == DOCBIN_SUFFIX:
        return "spacy"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CONLL_SUFFIXES:
        return "conll"
    supported = ", ".join((DOCBIN_SUFFIX,) + JSONL_SUFFIXES + CONLL_SUFFIXES)
    raise DataError(
        path, None,
        f"cannot tell the format from the extension {suffix or '(none)'!r}: the "
        f"supported extensions are {supported} (or a folder of {DOCBIN_SUFFIX} "
        f"files); set the reader's `format` to 'spacy', 'jsonl' or 'conll' to force one",
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(path, None, "no such file or folder (file not found)")


def _load_docbin(path: Path) -> DocBin:
    try:
        return DocBin().from_disk(path)
    except ValueError as err:
        raise DataError(path, None, f"not a valid {DOCBIN_SUFFIX} (DocBin) file: {err}") from err


def _no_docbin_examples_message(max_length: int) -> str:
    message = f"no examples: no non-empty docs in the {DOCBIN_SUFFIX} data"
    if max_length:
        message += f", or none shorter than max_length = {max_length} tokens"
    return message


def _take(items: Iterable, limit: int) -> Iterator:
    """Yield the first `limit` items (all of them where limit is 0)."""
    for count, item in enumerate(items, start=1):
        yield item
        if limit >= 1 and count >= limit:
            return


# A line longer than this is not a record anyone meant: refused before it is read whole.
MAX_LINE_BYTES = 10_000_000


def _iter_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, line without its line break) of a UTF-8
    file, streaming. A leading byte order mark is dropped.
    """
    _check_exists(path)
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


# JSONL text classification


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
    label_set = _normalize_labels(labels) if labels else collect_textcat_labels(path)
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
    for number, line in _iter_lines(path):
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


def _normalize_labels(labels: Sequence[Union[str, int]]) -> List[str]:
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


# CoNLL / IOB NER


def read_conll(path: PathLike) -> Iterator[Tuple[List[str], List[str]]]:
    """Stream the sentences of a CoNLL / IOB NER file.

    One token a line: columns separated by tabs (or, in a line without tabs,
    spaces); the first column is the token and the last is its tag. A blank
    (or whitespace-only) line ends a sentence; `-DOCSTART-` lines are skipped
    and end a sentence too. Tags are O or B-, I-, L-, U-, E-, S- and a label,
    so IOB1, IOB2, BILUO and IOBES files all read.

    path (Union[str, Path]): The CoNLL file.
    YIELDS (Tuple[List[str], List[str]]): The words and tags of a sentence,
        the tags as they are in the file.
    """
    path = Path(path)
    words: List[str] = []
    tags: List[str] = []
    count = 0
    for number, line in _iter_lines(path):
        fields = _conll_fields(line)
        if fields and fields[0] != DOCSTART:
            word, tag = _conll_token(path, number, fields)
            words.append(word)
            tags.append(tag)
        elif words:
            yield words, tags
            count += 1
            words, tags = [], []
    if words:
        yield words, tags
        count += 1
    if count == 0:
        raise DataError(path, None, "no examples: the file has no token lines")


def _conll_fields(line: str) -> List[str]:
    """The non-empty columns of a line: none for a blank line."""
    if not line.strip():
        return []
    columns = line.split("\t") if "\t" in line else line.split(" ")
    return [column for column in (c.strip(" ") for c in columns) if column]


def _conll_token(path: Path, number: int, fields: List[str]) -> Tuple[str, str]:
    if len(fields) < 2:
        raise DataError(
            path, number,
            f"only one column ({fields[0]!r}): expected the token, then its tag in the "
            f"last column, separated by a tab or spaces",
        )
    tag = fields[-1]
    if not is_valid_tag(tag):
        raise DataError(
            path, number,
            f"invalid NER tag {tag!r}: expected O, or B-, I-, L-, U-, E- or S- "
            f"followed by a label (IOB, BILUO or IOBES)",
        )
    return fields[0], tag


def conll_to_example(nlp: Language, words: List[str], tags: List[str]) -> Example:
    """Make a training example of a CoNLL sentence.

    Both docs are made of the words, with a space between them, so the
    predicted tokenization matches the reference exactly.

    nlp (Language): The pipeline whose vocab the docs use.
    words (List[str]): The tokens.
    tags (List[str]): Their IOB1, IOB2, BILUO or IOBES tags.
    RETURNS (Example): The example, whose reference doc has the entities set
        (and every other token marked as outside an entity).
    """
    if len(words) != len(tags):
        raise ValueError(f"Got {len(words)} words but {len(tags)} tags.")
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    predicted = Doc(nlp.vocab, words=words, spaces=spaces)
    reference = Doc(nlp.vocab, words=words, spaces=spaces)
    reference.ents = [
        Span(reference, start, end, label=label) for start, end, label in tags_to_spans(tags)
    ]
    return Example(predicted, reference)


class MergedCorpus:
    """Examples of several files interleaved (one from each in turn), for a pipeline
    whose components learn from different data: a text classification file and an
    NER file train `bert` + `bert_textcat` + `bert_ner` together. An example keeps
    only its own file's annotation; the other's is missing, not negative.

    balance: every kind of example (text classification, NER, both) gives as many
    examples per epoch as the most common kind: a rarer kind is repeated (whole
    passes, then a random sample of it), whether the kinds come in separate files
    or merged in one. Without it, a head whose data is the smaller share trains on
    that share of every batch and gets that share of the shared encoder's updates.
    """

    def __init__(self, paths: Sequence[PathLike], limit: int = 0, balance: bool = False) -> None:
        if not paths:
            raise ValueError("MergedCorpus needs at least one path")
        self.readers = [BertClsCorpus(path) for path in paths]
        self.limit = limit
        self.balance = balance

    def __call__(self, nlp: Language) -> Iterator[Example]:
        examples = self._interleaved(nlp)
        if self.balance:
            examples = _balanced(examples)
        for count, example in enumerate(examples, 1):
            yield example
            if self.limit and count >= self.limit:
                return

    def _interleaved(self, nlp: Language) -> Iterator[Example]:
        streams = [iter(reader(nlp)) for reader in self.readers]
        while streams:
            for stream in list(streams):
                example = next(stream, None)
                if example is None:
                    streams.remove(stream)
                    continue
                yield example


def _example_kind(example: Example) -> Tuple[bool, bool]:
    """Which heads an example trains: (text classification, NER)."""
    reference = example.reference
    return bool(reference.cats), reference.has_annotation("ENT_IOB")


def _balanced(examples: Iterable[Example]) -> Iterator[Example]:
    """The examples of every kind, the rarer kinds repeated up to the most common
    kind's count (whole passes, then a random sample; `random` is the one spaCy
    seeds), interleaved one of each kind in turn. A repeat is a copy: one Doc twice
    in a batch would confuse the listeners."""
    groups: Dict[Tuple[bool, bool], List[Example]] = {}
    for example in examples:
        groups.setdefault(_example_kind(example), []).append(example)
    if not groups:
        return
    target = max(len(group) for group in groups.values())
    filled = []
    for kind, group in groups.items():
        if not any(kind):  # trains no head: once is enough
            filled.append(group + [None] * (target - len(group)))
            continue
        passes, rest = divmod(target, len(group))
        repeats = [eg.copy() for _ in range(passes - 1) for eg in group]
        # The sample is of training data, seeded by spaCy: nothing secret (bandit B311).
        repeats += [eg.copy() for eg in random.sample(group, rest)]  # nosec B311
        filled.append(group + repeats)
    for i in range(target):
        for group in filled:
            if group[i] is not None:
                yield group[i]


def create_merged_corpus_reader_v1(
    paths: Dict[str, Optional[Path]], limit: int = 0, balance: bool = False
) -> MergedCorpus:
    """spacy-bert-cls.MergedCorpus.v1: several data files (any format of Corpus.v1), interleaved.

    paths (Dict[str, Optional[Path]]): the files by a name of your choice, in a
        section: [corpora.train.paths] textcat = ${paths.train_textcat} ... (a list of
        interpolated strings would not do: the config system joins them). A null
        entry is left out.
    limit (int): the most examples per epoch in all; 0 for no limit.
    balance (bool): as many examples of each kind (text classification, NER) per
        epoch, the rarer kind repeated, whether the kinds are in one file or two; for
        training (leave the dev corpus as it is).
    """
    return MergedCorpus([path for path in paths.values() if path is not None], limit=limit, balance=balance)
