"""BERT's pre-tokenizer words (tokenization/words.py) are those of the `tokenizers` library:
a piece starts a word exactly where the tokenizer's own word_ids say so."""
import numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from spacy_bert_cls.safe_tokenizer import replace_surrogates
from spacy_bert_cls.testing import tiny_vocab
from spacy_bert_cls.tokenization.words import word_starts, words

TRICKY = [
    "U.S. don't  naïve\t3.5km 你好 a\u200bb e-mail #tag",
    "Café naïve résumé Ångström e\u0301 \u0301x ab\u0300\u0301cd",
    "東京は日本の首都です。ソウル 서울 𠀀𪜀 豈",
    "Hello,world!!! (foo) [bar] «quote» “smart” — – … ¿Qué? ¡Sí! $100 5% a+b=c <t> `z` @me",
    "tab\there\nnew\rline\x00nul\x07bell\x1b[0m\u00ad soft\ufeffbom\u200d zwj\ufffd repl \x85nel \ue000pua",
    "lone \ud83d surrogate \udc00 pair? x\ud800y \ud800",
    "emoji 😀😃 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 keycap 1️⃣",
    "   spaces   \u00a0nbsp\u2003em\u3000ideo \u2028ls\u2029ps  ",
    "", " ", "\x00", "\ud800", "a", "Ǆ ﬁ ½ ² ①",
]


def cased_tokenizer() -> Tokenizer:
    # As the pipeline's PieceTokenizer for a cased checkpoint (wordpiece._wordpiece_from_vocab).
    vocab = {piece: i for i, piece in enumerate(tiny_vocab())}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


TOKENIZER = cased_tokenizer()


def assert_same_words_as_the_pieces(text: str) -> None:
    encoding = TOKENIZER.encode(replace_surrogates(text), add_special_tokens=False)
    starts = numpy.asarray(encoding.offsets, dtype=int).reshape(-1, 2)[:, 0]
    ids = encoding.word_ids
    expected = [i == 0 or ids[i] != ids[i - 1] for i in range(len(ids))]
    assert word_starts(text)[starts].tolist() == expected, repr(text)


def test_word_starts_are_the_tokenizers_on_tricky_text():
    for text in TRICKY:
        assert_same_words_as_the_pieces(text)
        assert word_starts(text).shape == (len(text),)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_word_starts_are_the_tokenizers_on_any_text(text):
    assert_same_words_as_the_pieces(text)


def test_words_are_offsets_into_the_text():
    text = "Don't, 你好\u200bX \ud800y"
    assert [text[a:b] for a, b in words(text)] == ["Don", "'", "t", ",", "你", "好", "X", "y"]
    # A lone surrogate is dropped, as U+FFFD is for the pieces: no word starts there.
    assert not word_starts("\ud800")[0] and word_starts(" \ud800y").tolist() == [False, False, True]
