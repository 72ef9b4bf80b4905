"""`spacy-bert-cls.Corpus.v1`: the reader of one data file (`.spacy`, `.jsonl` or CoNLL),
registered through the `spacy_readers` entry point in setup.py (see the package docstring)."""
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Union

from spacy.errors import Errors as SpacyErrors
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from spacy.vocab import Vocab

from ..errors import DataError
from .conll import conll_to_example, read_conll
from .formats import DOCBIN_SUFFIX, resolve_format
from .jsonl import collect_textcat_labels, normalize_labels, read_textcat_jsonl
from .lines import PathLike, check_exists


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
        self.labels: Optional[List[str]] = normalize_labels(labels) if labels else None
        self._collected_labels: Optional[List[str]] = None

    def __call__(self, nlp: Language) -> Iterator[Example]:
        """Yield the examples of the file.

        nlp (Language): The pipeline: its vocab and, for JSONL, its tokenizer.
        YIELDS (Example): The examples, in file order.
        """
        check_exists(self.path)
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

