"""Convert data files for training: JSONL text classification and CoNLL NER to `.spacy`,
raw text to pretraining input. Everything is checked first; malformed input stops with
the file, the line and what is wrong, and no output is written (the output appears
only once it is complete)."""
import re
import shlex
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span

from .checkpoint.io import atomic_path
from .data.conll import DOCSTART, conll_sentences, read_conll
from .data.conll import conll_fields as _conll_fields
from .data.formats import CONLL_SUFFIXES, DOCBIN_SUFFIX, resolve_format
from .data.jsonl import collect_textcat_labels, read_textcat_jsonl
from .data.lines import iter_lines as _iter_lines
from .errors import DataError, blank_language
from .outputs import check_apart, check_file_output
from .pretraining.data import iter_documents
from .tags import is_valid_tag, tags_to_spans

SCHEMES = ("iob2", "any")
FORMATS = ("auto", "jsonl", "conll", "raw")
RAW_SUFFIX = ".txt"


def convert(input_path: Union[str, Path, Sequence[Union[str, Path]]], output_path: Union[str, Path], *,
            format: str = "auto", lang: str = "en",
            labels_from: Optional[Union[str, Path, Sequence[Union[str, Path]]]] = None, scheme: str = "iob2") -> Dict:
    """Convert one file. RETURNS a summary (examples, labels, output).

    format: "auto" (by extension), "jsonl" (text classification), "conll" (NER), "raw"
        (pretraining text: .txt, JSONL {"text"} or a CoNLL file's tokens, to .txt).
    The output is named .spacy (.txt for raw) and is none of the inputs.
    labels_from: a training file whose labels are the only ones allowed here (convert dev
        and test files against train: a label train never saw is an error).
    scheme: "iob2" (an I- tag must continue a B-/I- of its label) or "any" (IOB1, IOB2,
        BILUO and IOBES read as spaCy's converter would).
    """
    inputs = [Path(p) for p in ([input_path] if isinstance(input_path, (str, Path)) else input_path)]
    references = [] if labels_from is None else [
        Path(p) for p in ([labels_from] if isinstance(labels_from, (str, Path)) else labels_from)]
    output_path = Path(output_path)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    _check_paths(inputs, references, output_path, format)
    if format == "raw":
        if len(inputs) != 1:
            raise ValueError("raw text converts one file at a time")
        return _convert_raw(inputs[0], output_path)
    nlp = blank_language(lang)
    docs, labels = [], []
    for path in inputs:
        # Several inputs (a text classification file and an NER file) merge into one
        # .spacy file: each doc keeps its own annotation, the other is missing.
        if format == "auto" and path.suffix.lower() == RAW_SUFFIX:
            raise DataError(path, None, f"a {RAW_SUFFIX} file is raw text: convert it to pretraining input with "
                                        f"--format raw -o FILE{RAW_SUFFIX}; training data is JSONL (text "
                                        f"classification) or CoNLL (NER)")
        fmt = resolve_format(path, format)
        same_kind = [r for r in references if resolve_format(r, "auto") == fmt]
        allowed = _allowed_labels(same_kind[0], fmt) if same_kind else None
        if fmt == "jsonl":
            file_docs, file_labels = _textcat_docs(nlp, path, allowed)
        elif fmt == "conll":
            file_docs, file_labels = _ner_docs(nlp, path, allowed, scheme)
        else:
            raise ValueError(f"{path}: already a .spacy file")
        docs.extend(file_docs)
        labels.extend(label for label in file_labels if label not in labels)
    with atomic_path(output_path) as tmp:
        DocBin(docs=docs, store_user_data=True).to_disk(tmp)
    return {"input": [str(p) for p in inputs], "output": str(output_path), "examples": len(docs), "labels": labels}


def _check_paths(inputs: List[Path], references: List[Path], output: Path, format: str) -> None:
    """Every input exists, none is given twice, the output can be written and is none of them
    (a conversion would overwrite its own data: outputs.py) and is named for what is written:
    .txt for raw text, .spacy otherwise (spaCy's Corpus reads only those)."""
    for path in inputs + references:
        if not path.is_file():
            raise DataError(path, None, "no such file")
    resolved = [path.resolve() for path in inputs]
    for i, path in enumerate(inputs):
        if resolved[i] in resolved[:i]:
            raise DataError(path, None, "is given twice: each input file once")
    check_file_output(output, "--output")
    check_apart(output, inputs + references, "--output")
    suffix = RAW_SUFFIX if format == "raw" else DOCBIN_SUFFIX
    if not output.name.endswith(suffix):
        what = "raw text (--format raw)" if format == "raw" else "spaCy's binary format, which spacy train reads"
        raise DataError(output, None, f"the output is {what}: name it *{suffix}")


def _allowed_labels(path: Union[str, Path], fmt: str) -> List[str]:
    path = Path(path)
    if fmt == "jsonl":
        return collect_textcat_labels(path)
    return sorted({label for _, tags in read_conll(path) for _, _, label in tags_to_spans(tags)})


def _textcat_docs(nlp, path: Path, allowed: Optional[Sequence[str]]):
    labels = list(allowed) if allowed is not None else collect_textcat_labels(path)
    docs = []
    for text, cats in read_textcat_jsonl(path, labels=labels):
        doc = nlp.make_doc(text)
        doc.cats = cats
        docs.append(doc)
    return docs, labels


def _ner_docs(nlp, path: Path, allowed: Optional[Sequence[str]], scheme: str):
    check_tags(path, scheme)
    docs, labels = [], set()
    for words, tags in read_conll(path):
        doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        spans = tags_to_spans(tags)
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]
        labels.update(label for _, _, label in spans)
        docs.append(doc)
    if allowed is not None:
        unknown = sorted(labels - set(allowed))
        if unknown:
            where = _first_line_with_label(path, unknown[0])
            raise DataError(path, where, f"entity label(s) {unknown} do not occur in the training data "
                                         f"({', '.join(allowed)})")
    return docs, sorted(labels)


def check_tags(path: Path, scheme: str = "iob2") -> None:
    """Every token line's last column is an NER tag; with scheme "iob2", an IOB2 one,
    and an I- tag continues a B- or I- tag of the same label. Line by line, so the
    error names the first line that is wrong."""
    previous = "O"
    for number, line in _iter_lines(path):
        fields = _conll_fields(line)
        if not fields or fields[0] == DOCSTART:
            previous = "O"
            continue
        tag = fields[-1]
        if len(fields) < 2:
            continue  # read_conll reports it, with its line
        if not is_valid_tag(tag):
            raise DataError(path, number, _not_a_tag(path, line, fields, scheme))
        if scheme != "iob2":
            continue
        if tag[:2] not in ("B-", "I-") and tag != "O":
            raise DataError(path, number, f"tag {tag!r} is not IOB2 (O, B-X, I-X) but BILUO or IOBES; "
                                          f"convert with scheme 'any' (--scheme any)")
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            raise DataError(path, number, f"bad IOB sequence: {tag!r} after {previous!r} "
                                          f"(an I- tag must continue a B- or I- of its label); if the file "
                                          f"is IOB1, where an I- tag may start an entity, convert with "
                                          f"scheme 'any' (--scheme any)")
        previous = tag


def _not_a_tag(path: Path, line: str, fields: List[str], scheme: str) -> str:
    """What is wrong with a token line whose last column is not a tag, and, where another
    column holds the tags on every line of the file, the command that keeps only those."""
    what = ("is not IOB2 (O, B-X, I-X), nor an IOB1, BILUO or IOBES tag" if scheme == "iob2"
            else "is not an NER tag (O, or B-, I-, L-, U-, E-, S- and a label)")
    message = (f"tag {fields[-1]!r} {what}: it is the last of the line's {len(fields)} columns "
               f"{tuple(fields)!r}. Each line must be the token, then its tag in the last column: "
               f"token<TAB>tag (columns between are ignored)")
    fix = _column_fix(path, line)
    if fix:
        column, command = fix
        message += f". Column {column} holds the tags on every line; keep the token and that column with: {command}"
    return message


def _column_fix(path: Path, line: str) -> Optional[Tuple[int, str]]:
    """(column, shell command) that writes a two-column copy of `path` whose last column
    is a tag on every token line, or None when no single column is. The command's effect
    is simulated on the whole file first: only one that works is suggested."""
    tabbed = "\t" in line
    columns = [c.strip(" ") for c in line.split("\t")] if tabbed else _awk_fields(line)
    candidates = [i + 1 for i in range(1, len(columns) - 1) if is_valid_tag(columns[i])]
    if not candidates:
        return None
    column = candidates[-1]
    source, out = shlex.quote(str(path)), shlex.quote(str(path.with_name(f"{path.stem}_fixed{path.suffix}")))
    if tabbed:
        command = f"cut -f1,{column} {source} > {out}"
    else:
        command = f"awk 'NF {{print $1 \"\\t\" ${column}; next}} {{print \"\"}}' {source} > {out}"

    def run(text: str) -> str:
        if tabbed:  # cut: a line without a tab stays as it is
            parts = text.split("\t")
            return text if len(parts) == 1 else "\t".join(p for i, p in enumerate(parts) if i in (0, column - 1))
        fields = _awk_fields(text)  # awk: NF == 0 prints an empty line, $N past NF is ""
        return fields[0] + "\t" + (fields[column - 1] if len(fields) >= column else "") if fields else ""

    for _, text in _iter_lines(path):
        fields = _conll_fields(run(text))
        if fields and fields[0] != DOCSTART and (len(fields) != 2 or not is_valid_tag(fields[-1])):
            return None
    return column, command


def _awk_fields(line: str) -> List[str]:
    # awk's default field splitting: runs of spaces and tabs, none at either end.
    return [f for f in re.split(r"[ \t]+", line) if f]


def _first_line_with_label(path: Path, label: str) -> Optional[int]:
    for number, line in _iter_lines(path):
        fields = _conll_fields(line)
        if len(fields) >= 2 and fields[-1][2:] == label:
            return number
    return None


def _convert_raw(path: Path, output: Path) -> Dict:
    """Raw text (.txt or JSONL) or the tokens of a CoNLL file -> .txt: a paragraph a line,
    a blank line between documents."""
    suffix = path.suffix.lower()
    if suffix == DOCBIN_SUFFIX:
        raise DataError(path, None, f"a {DOCBIN_SUFFIX} file holds no raw text to convert: give the text "
                                    f"(.txt, JSONL) or the CoNLL file it was made from")
    source = (document for _, document in iter_documents(path)) if suffix not in CONLL_SUFFIXES \
        else _conll_documents(path)
    documents = 0
    with atomic_path(output) as tmp:
        with tmp.open("w", encoding="utf8") as file_:
            for paragraphs in source:
                file_.write("\n".join(paragraphs) + "\n\n")
                documents += 1
        if not documents:  # raised inside: atomic_path writes nothing
            raise DataError(path, None, "no text in the file (it is empty or blank)")
    return {"input": str(path), "output": str(output), "documents": documents}


def _conll_documents(path: Path) -> Iterator[List[str]]:
    """The documents of a CoNLL file as raw text, its tags left out: a sentence's tokens
    joined by spaces a line, a new document at each -DOCSTART- line (one document where the
    file has none), as pretrain's suggested awk command (pretraining.data.CONLL_TO_RAW) makes them."""
    document: List[str] = []
    for sentence in conll_sentences(path):
        if sentence is not None:
            document.append(" ".join(sentence[0]))
        elif document:  # -DOCSTART-: the document so far ends
            yield document
            document = []
    if document:
        yield document
