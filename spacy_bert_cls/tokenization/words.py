"""The words of BERT's pre-tokenizer, from the text alone: where HF's token classifiers see words.

`transformers.pipeline("token-classification", aggregation_strategy="first")` tags a word by
its first word piece, and a word is what BERT's normaliser and pre-tokenizer make of the
text: runs of letters and digits between whitespace, each punctuation character on its
own, each CJK ideograph on its own; control characters are dropped. A spaCy token is not
always such a word ("U.S." is four, "n't" starts inside "don"): a piece starts one of
these words where `word_starts` says so.

The words are those of the `tokenizers` library itself (BertNormalizer with clean_text
and handle_chinese_chars, then BertPreTokenizer), with offsets into the original text.
Lone surrogates, which UTF-8 (and so `tokenizers`) cannot hold, become U+FFFD first, as
PieceTokenizer.encode_batch makes them: the normaliser then drops them, as it does for
the pieces, so the words are those of the text the pieces were cut from. These are
exactly the words of a cased checkpoint's tokenizer (its Encoding.word_ids). One that
strips accents (uncased BERT) also drops a combining mark that begins a word (after a
space, a punctuation mark or an ideograph), so its word begins one character later there;
the text alone cannot tell which tokenizer it is.
"""
from typing import List, Tuple

import numpy
from tokenizers import PreTokenizedString, normalizers, pre_tokenizers

from ..safe_tokenizer import replace_surrogates

# No lower-casing or accent stripping: neither moves a word boundary, and the words are
# the same whichever the checkpoint's tokenizer does.
_NORMALIZER = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                         lowercase=False)
_PRE_TOKENIZER = pre_tokenizers.BertPreTokenizer()


def words(text: str) -> List[Tuple[int, int]]:
    """The (start, end) character offsets into `text` of each word of BERT's pre-tokenizer."""
    pretokenized = PreTokenizedString(replace_surrogates(text))
    pretokenized.normalize(_NORMALIZER.normalize)
    _PRE_TOKENIZER.pre_tokenize(pretokenized)
    return [span for _, span, _ in pretokenized.get_splits(offset_referential="original", offset_type="char")]


def word_starts(text: str) -> numpy.ndarray:
    """For every character of `text`, whether a pre-tokenizer word starts there.

    RETURNS (ndarray[len(text)], bool).
    """
    starts = numpy.zeros(len(text), dtype=bool)
    starts[[start for start, _ in words(text)]] = True
    return starts
