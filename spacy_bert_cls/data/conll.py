"""CoNLL / IOB NER files: one `token ... tag` line a token, a blank line after each
sentence, and the training examples made of their sentences."""
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..errors import DataError
from ..tags import is_valid_tag, tags_to_spans
from .lines import PathLike, iter_lines

DOCSTART = "-DOCSTART-"


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
    count = 0
    for sentence in conll_sentences(path):
        if sentence is not None:
            count += 1
            yield sentence
    if count == 0:
        raise DataError(Path(path), None, "no examples: the file has no token lines")


def conll_sentences(path: PathLike) -> Iterator[Optional[Tuple[List[str], List[str]]]]:
    """The sentences of a CoNLL file as read_conll reads them, and None where a `-DOCSTART-`
    line is (where a document begins), for readers that keep the documents apart."""
    path = Path(path)
    words: List[str] = []
    tags: List[str] = []
    for number, line in iter_lines(path):
        fields = conll_fields(line)
        if fields and fields[0] != DOCSTART:
            word, tag = _conll_token(path, number, fields)
            words.append(word)
            tags.append(tag)
            continue
        if words:
            yield words, tags
            words, tags = [], []
        if fields:  # -DOCSTART-
            yield None
    if words:
        yield words, tags


def conll_fields(line: str) -> List[str]:
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

