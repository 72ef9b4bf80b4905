"""The words of BERT's pre-tokenizer, from the text alone: where HF's token classifiers see words.

`transformers.pipeline("token-classification", aggregation_strategy="first")` tags a word by
its first word piece, and a word is what BERT's normaliser and pre-tokenizer make of the
text: runs of letters and digits between whitespace, each punctuation character on its
own, each CJK ideograph on its own; control characters are dropped. A spaCy token is not
always such a word ("U.S." is four, "n't" starts inside "don"): a piece starts one of
these words where `word_starts` says so.
"""
import unicodedata

import numpy

# BERT's CJK Unified Ideograph blocks (the normaliser puts spaces around these characters).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_punctuation(char: str) -> bool:
    """As BERT: ASCII symbols and punctuation, and every Unicode P* character."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(low <= cp <= high for low, high in _CJK_RANGES)


def _is_dropped(char: str) -> bool:
    # BertNormalizer's clean_text: NUL, U+FFFD and control/format characters go;
    # tab, newline and carriage return count as whitespace.
    if char in "\t\n\r":
        return False
    return char in "\x00\ufffd" or unicodedata.category(char) in ("Cc", "Cf")


def word_starts(text: str) -> numpy.ndarray:
    """For every character of `text`, whether a pre-tokenizer word starts there.

    RETURNS (ndarray[len(text)], bool).
    """
    starts = numpy.zeros(len(text), dtype=bool)
    boundary = True  # the previous kept character ends a word (or there is none)
    for i, char in enumerate(text):
        if _is_dropped(char):
            continue
        if char.isspace():
            boundary = True
            continue
        alone = is_punctuation(char) or is_cjk(char)
        starts[i] = boundary or alone
        boundary = alone
    return starts

