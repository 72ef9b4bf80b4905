"""The texts of a data file, whatever format of the package's it is in, annotations ignored:
what int8 calibration and distillation read (they need text, not labels).

Raw text: .txt a text a line, .jsonl / .json a {"text"} a line, other keys ignored
(pretraining.data's readers, with their checks). The texts of a .spacy, CoNLL or other
annotated file, or of a folder of them, come through the corpus reader (data.readers).
"""
from itertools import islice
from pathlib import Path
from typing import Iterator, List, Optional

from spacy.language import Language

from ..errors import DataError
from ..pretraining.data import iter_documents, iter_paragraphs
from .readers import create_corpus_reader_v1

# Files whose texts come through the corpus reader (their annotations are ignored).
ANNOTATED = (".spacy", ".conll", ".iob", ".tsv", ".bio", ".annotated")


def iter_texts(path: Path, nlp: Language) -> Iterator[str]:
    """The non-blank texts of `path` (see the module docstring), in file order; a DataError
    for a missing or unreadable file. `nlp`: whose vocab the corpus reader's docs use."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "no such file")
    suffix = path.suffix.lower()
    if suffix in ANNOTATED or path.is_dir():
        texts: Iterator[str] = (eg.reference.text for eg in create_corpus_reader_v1(path)(nlp))
    elif suffix in (".jsonl", ".json"):
        texts = ("\n".join(paragraphs) for _, paragraphs in iter_documents(path))
    else:
        texts = iter_paragraphs(path)
    return (text for text in texts if text.strip())


def read_texts(path: Path, nlp: Language, limit: Optional[int] = None) -> List[str]:
    """The first `limit` (None: all) texts of iter_texts; a DataError when there are none."""
    texts = list(islice(iter_texts(path, nlp), limit))
    if not texts:
        raise DataError(path, None, "no text in the file (it is empty or blank)")
    return texts
