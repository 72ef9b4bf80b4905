"""spacy-bert-cls.Tokenizer.v1: lone surrogates (legal in a Python str, not in UTF-8) no
longer stop nlp.pipe; everything else is spaCy's own tokenizer."""
import pickle

import pytest
import spacy
from spacy.util import compile_infix_regex

from spacy_bert_cls.safe_tokenizer import SurrogateSafeTokenizer, replace_surrogates

CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy-bert-cls.Tokenizer.v1"}}}


def test_spacy_alone_cannot_take_a_lone_surrogate():
    with pytest.raises(UnicodeEncodeError):
        spacy.blank("en")("half an emoji \ud83d")


def test_lone_surrogates_become_replacement_characters_one_for_one():
    nlp = spacy.blank("en", config=CONFIG)
    assert isinstance(nlp.tokenizer, SurrogateSafeTokenizer)
    text = "half an emoji \ud83d and \udc00x"
    doc = nlp(text)
    assert doc.text == replace_surrogates(text) and len(doc.text) == len(text)
    assert [t.text for t in doc] == [t.text for t in spacy.blank("en")(replace_surrogates(text))]
    assert [d.text for d in nlp.pipe(["\ud800", "fine"])] == ["\ufffd", "fine"]


def test_it_saves_loads_pickles_and_takes_customizations(tmp_path):
    nlp = spacy.blank("en", config=CONFIG)
    nlp.tokenizer.add_special_case("gimme", [{"ORTH": "gim"}, {"ORTH": "me"}])
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert isinstance(loaded.tokenizer, SurrogateSafeTokenizer)
    assert [t.text for t in loaded("gimme \ud83d")] == ["gim", "me", "\ufffd"]
    again = pickle.loads(pickle.dumps(nlp))
    assert [t.text for t in again("gimme")] == ["gim", "me"]
    infixes = list(nlp.Defaults.infixes) + [r"[~]"]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer  # reaches spaCy's tokenizer
    assert [t.text for t in nlp("a~b")] == ["a", "~", "b"]
