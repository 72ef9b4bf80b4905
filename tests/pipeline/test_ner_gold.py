"""bert_ner's gold tags read from the reference's arrays equal spaCy's get_aligned_ner."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_bert_cls.decoding import TagScheme
from spacy_bert_cls.pipeline.ner import _gold_tag_ids

WORDS = ["John", "lives", "in", " ", "New", "York", "City", "with", "Acme", "."]
TAGS = ["B-PER", "O", "O", "O", "B-LOC", "I-LOC", "I-LOC", None, "B-ORG", "O"]  # IOB, as Doc takes them


@pytest.mark.parametrize("scheme", ["BILUO", "BIO"])
@pytest.mark.parametrize("case", ["same", "missing", "retokenized", "unannotated", "unknown label"])
def test_gold_tag_ids_match_spacys_alignment(scheme, case):
    nlp = spacy.blank("en")
    spaces = [True, True, False, False, True, True, True, True, False, False]
    tags = [t if case != "missing" or i % 3 else None for i, t in enumerate(TAGS)]
    reference = Doc(nlp.vocab, words=WORDS, spaces=spaces, ents=None if case == "unannotated" else tags)
    predicted = (nlp.make_doc(reference.text.replace("New York", "NewYork ")[:len(reference.text)])
                 if case == "retokenized" else Doc(nlp.vocab, words=WORDS, spaces=spaces))
    labels = ["PER", "LOC"] if case == "unknown label" else ["PER", "LOC", "ORG"]
    eg = Example(predicted, reference)
    tag_scheme = TagScheme(labels, scheme)
    expected = tag_scheme.tag_ids(eg.get_aligned_ner())
    numpy.testing.assert_array_equal(_gold_tag_ids(tag_scheme, eg), expected)
