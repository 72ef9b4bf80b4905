"""Piece ids equal the checkpoint's own HF tokenizer's; pieces align to tokens by overlap."""
import json
import shutil

import numpy
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_bert_cls.errors import CheckpointError
from spacy_bert_cls.tokenization import align_pieces, load_piece_tokenizer

from ..conftest import real_sentences

HARD_CASES = [
    "I don't think it's well-known: see https://example.com/a-b?c=1&d=2 or e-mail me@x.org!",
    "Crème brûlée at the café was naïve 😀👍🏽 — ok? Ångström, São Paulo, Zürich.",
    "can't won't y'all rock'n'roll self-driving 3-1 $12.50 #hashtag @user",
    "中文字符 and 日本語 mixed with English",
    "tabs\tand\nnewlines  and   spaces",
    "a\u200bzero\u200dwidth\u00adsoft hyphen \x00 control",
]


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))


def _texts(datasets_dir):
    return real_sentences(datasets_dir, 600) + HARD_CASES


def test_ids_equal_hf_with_tokenizer_json(minilm_dir, hf_tokenizer, datasets_dir):
    ours = load_piece_tokenizer(minilm_dir)
    texts = _texts(datasets_dir)
    expected = hf_tokenizer(texts, add_special_tokens=False)["input_ids"]
    for text, (ids, _), want in zip(texts, ours.encode_batch(texts), expected):
        assert ids.tolist() == want, text


def test_ids_equal_hf_with_vocab_txt_only(minilm_dir, datasets_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    ours = load_piece_tokenizer(tmp_path)
    hf = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))  # converted from vocab.txt
    texts = _texts(datasets_dir)
    expected = hf(texts, add_special_tokens=False)["input_ids"]
    for text, (ids, _), want in zip(texts, ours.encode_batch(texts), expected):
        assert ids.tolist() == want, text


def test_cased_vocab_without_config_keeps_case(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Paris", "paris"]))
    ids, _ = load_piece_tokenizer(tmp_path).encode_batch(["Paris paris"])[0]
    assert ids.tolist() == [5, 6]
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    ids, _ = load_piece_tokenizer(tmp_path).encode_batch(["Paris paris"])[0]
    assert ids.tolist() == [6, 6]


def _overlapping(token_start, token_end, offsets):
    return [i for i, (s, e) in enumerate(offsets) if s < token_end and max(e, s + 1) > token_start]


def _check_alignment(tokenizer, nlp, texts):
    for text, (ids, offsets) in zip(texts, tokenizer.encode_batch(texts)):
        doc = nlp.make_doc(text)
        starts = numpy.array([t.idx for t in doc], dtype="int64")
        ends = numpy.array([t.idx + len(t.text) for t in doc], dtype="int64")
        indices, lengths = align_pieces(starts, ends, offsets)
        assert lengths.shape == (len(doc),)
        pos = 0
        for token, n in zip(doc, lengths):
            got = indices[pos:pos + n].tolist()
            pos += n
            assert got == _overlapping(token.idx, token.idx + len(token.text), offsets.tolist()), (text, token.text)
            if not token.text.strip(" \t\n\r"):
                assert got == []  # whitespace gets no pieces
        # Every piece serves at least one token: nothing of the text is lost.
        assert set(indices.tolist()) == set(range(len(ids)))


def test_pieces_of_each_token_are_exactly_the_overlapping_ones(minilm_dir, datasets_dir):
    _check_alignment(load_piece_tokenizer(minilm_dir), spacy.blank("en"), _texts(datasets_dir))


@pytest.fixture(scope="module")
def tiny_tokenizer_and_nlp(tiny_checkpoint):
    return load_piece_tokenizer(tiny_checkpoint), spacy.blank("en")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_alignment_on_arbitrary_text(tiny_tokenizer_and_nlp, text):
    _check_alignment(*tiny_tokenizer_and_nlp, [text])


def test_lone_surrogates_do_not_break_encoding(tiny_checkpoint):
    tokenizer = load_piece_tokenizer(tiny_checkpoint)
    ids, offsets = tokenizer.encode_batch(["a\ud800b"])[0]
    assert offsets.max() <= 3


def test_tokenizer_pickles(tiny_checkpoint):
    import pickle

    tokenizer = load_piece_tokenizer(tiny_checkpoint)
    again = pickle.loads(pickle.dumps(tokenizer))
    assert again == tokenizer
    assert again.encode_batch(["the film"])[0][0].tolist() == tokenizer.encode_batch(["the film"])[0][0].tolist()


@pytest.mark.parametrize(
    "files,message",
    [
        ({}, "no tokenizer.json or vocab.txt"),
        ({"tokenizer.json": "{not json"}, r"tokenizer\.json: not a readable tokenizers JSON"),
        ({"vocab.txt": b"\xff\xfe[PAD]\n"}, r"vocab\.txt: not UTF-8"),
        ({"vocab.txt": ""}, r"vocab\.txt: the vocabulary is empty"),
        ({"vocab.txt": "[PAD]\n[UNK]\nhello\n"}, r"vocab\.txt: special token '\[CLS\]'"),
        ({"vocab.txt": "[PAD]\n", "tokenizer_config.json": "[1]"}, r"tokenizer_config\.json: expected a JSON object"),
    ],
    ids=["empty", "bad-json", "not-utf8", "empty-vocab", "no-cls", "bad-config"],
)
def test_bad_tokenizer_files(tmp_path, files, message):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(CheckpointError, match=message):
        load_piece_tokenizer(tmp_path)
