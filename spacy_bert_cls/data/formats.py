"""Which reader a data path is read with: by its extension, or as the config forces."""
from pathlib import Path

from ..errors import DataError
from .lines import check_exists

DOCBIN_SUFFIX = ".spacy"
JSONL_SUFFIXES = (".jsonl",)
CONLL_SUFFIXES = (".conll", ".iob", ".tsv", ".bio", ".annotated")
FORMATS = ("auto", "spacy", "jsonl", "conll")


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
    check_exists(path)
    if path.is_dir():
        if format not in ("auto", "spacy"):
            raise DataError(
                path, None,
                f"is a folder, which only the 'spacy' format reads (a folder of "
                f"{DOCBIN_SUFFIX} files); give the {format} file itself",
            )
        if not any(path.rglob(f"*{DOCBIN_SUFFIX}")):  # spaCy's Corpus would only warn (W090), then read nothing
            raise DataError(path, None, f"is a folder without {DOCBIN_SUFFIX} files: give the data file itself "
                                        f"(.txt, .jsonl, CoNLL, {DOCBIN_SUFFIX}) or a folder of {DOCBIN_SUFFIX} files")
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

