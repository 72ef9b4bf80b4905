"""Thinc heads on the listeners: BERT's classification and token-classification layers.

Each is dropout + one linear layer, as HF's BertForSequenceClassification /
BertForTokenClassification put on the pooled [CLS] / the token states; the linear
layer's W [n_labels, hidden] and b map one to one to HF's classifier.weight/bias.
"""
from typing import List, Optional

import numpy
from spacy.tokens import Doc
from thinc.api import Dropout, Linear, Model, chain, with_array
from thinc.types import Floats2d


def bert_normal_init(ops, shape):
    """N(0, 0.02), BERT's initialisation (seeded by thinc's fix_random_seed via numpy)."""
    return ops.asarray(numpy.random.normal(0.0, 0.02, shape).astype("float32"))


def build_bert_classifier_v1(
    tok2vec: Model[List[Doc], Floats2d],
    exclusive_classes: bool,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Class probabilities from a doc vector (spacy-bert-cls.BertClassifier.v1).

    tok2vec: one vector per doc, usually spacy-bert-cls.BertDocListener.v1.
    exclusive_classes (bool): softmax over the labels (True) or a sigmoid each.
    RETURNS: probabilities [n_docs, n_labels]. Its backward pass takes
        (probabilities - truth), the cross-entropy gradient w.r.t. the logits.
    """
    output = Linear(nO=nO, init_W=bert_normal_init)
    model = chain(tok2vec, Dropout(dropout), output, cats_activation(exclusive_classes))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output)
    model.attrs["exclusive_classes"] = exclusive_classes
    return model


def cats_activation(exclusive: bool) -> Model[Floats2d, Floats2d]:
    return Model("cats_activation", _activation_forward, attrs={"exclusive": exclusive})


def _activation_forward(model: Model, logits: Floats2d, is_train: bool):
    ops = model.ops
    probs = ops.softmax(logits) if model.attrs["exclusive"] else ops.sigmoid(logits)

    def backprop(d_logits: Floats2d) -> Floats2d:
        # Softmax + cross-entropy (sigmoid + binary cross-entropy): the loss's gradient
        # w.r.t. the logits is probs - truth, which the component passes in directly.
        return d_logits

    return probs, backprop


def build_bert_tagger_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Tag logits for every token (spacy-bert-cls.BertTagger.v1).

    tok2vec: token vectors, usually spacy-bert-cls.BertListener.v1 with
        reduce_first.v1 pooling (each token's first piece, as HF's token classifier).
    RETURNS: logits [n_tokens, n_tags] per doc.
    """
    output = Linear(nO=nO, init_W=bert_normal_init)
    model = chain(tok2vec, with_array(chain(Dropout(dropout), output)))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output)
    return model
