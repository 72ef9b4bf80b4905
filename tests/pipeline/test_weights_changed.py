"""After an optimizer step, prediction uses the new weights, whichever path predicts.

The module that predicts can be derived from the encoder's weights (oneDNN-packed copies
where the run-time check finds oneDNN faster, int8 copies for inference_dtype "int8").
thinc's optimizer writes new weights through numpy views, which torch's version counter
does not see: the derived module used to keep serving the old weights, so `spacy train`
scored its dev set with the step-0 encoder on a machine where oneDNN won the check.
"""
import numpy
import pytest
from thinc.api import SGD, fix_random_seed

import spacy_bert_cls.pytorch.quantized as quantized
from spacy_bert_cls.models.encoder import get_bert_shim

from ..conftest import TINY_SIZES, tiny_vocab
from .test_heads import TRAIN, initialize, make_nlp


def _pieces(bert, docs):
    return numpy.concatenate([out.pieces for out in bert.predict(docs)])


@pytest.mark.parametrize("path", ["onednn", "int8"])
def test_prediction_follows_an_optimizer_step(tiny_checkpoint, monkeypatch, path):
    if path == "onednn":
        if not quantized.onednn_available():
            pytest.skip("this torch build has no oneDNN linear")
        # The run-time check picks oneDNN on some machines (or when busy): force it.
        monkeypatch.setattr(quantized, "fp32_backend", lambda linear, *a, **k: "onednn")
    elif not quantized.int8_supported():
        pytest.skip("this torch build has no int8 engine")
    fix_random_seed(0)
    nlp = make_nlp({"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 16, "stride": 8})
    examples, _ = initialize(nlp, tiny_checkpoint, TRAIN)
    bert = nlp.get_pipe("bert")
    if path == "int8":
        bert.inference_dtype = "int8"
    encoder = get_bert_shim(bert.model).windowed
    docs = [nlp.make_doc(t) for t, _ in TRAIN]
    before = _pieces(bert, docs)
    assert encoder._derived[2] is not encoder.bert  # a derived copy predicts
    nlp.update(examples, sgd=None, losses={})
    bert.finish_update(SGD(learn_rate=0.5, grad_clip=0.0, L2=0.0))
    after = _pieces(bert, docs)
    assert not numpy.allclose(after, before, atol=1e-3)  # the new weights predict
    encoder.weights_changed()
    assert numpy.array_equal(_pieces(bert, docs), after)  # as a fresh derivation does
