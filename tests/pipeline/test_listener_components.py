"""spaCy's textcat_multilabel and spancat on the `bert` listener: they learn, save and reload."""
import random

import pytest
import spacy
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

TRAIN = [
    ("i love this movie", {"cats": {"POS": 1.0, "FUN": 1.0}, "spans": {"sc": [(7, 17, "THING")]}}),
    ("john visited paris today", {"cats": {"POS": 1.0, "FUN": 0.0}, "spans": {"sc": [(0, 4, "PER"), (13, 18, "LOC")]}}),
    ("awful film from acme corp", {"cats": {"POS": 0.0, "FUN": 0.0}, "spans": {"sc": [(16, 25, "ORG")]}}),
    ("mary hates london", {"cats": {"POS": 0.0, "FUN": 1.0}, "spans": {"sc": [(0, 4, "PER"), (11, 17, "LOC")]}}),
]


def _listener(width):
    return {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width}


def make_nlp(model_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **model_config}})
    width = model_config["hidden_size"]
    nlp.add_pipe("textcat_multilabel", config={"model": {
        "@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": False,
        "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False,
        "use_reduce_mean": True, "tok2vec": _listener(width)}})
    nlp.add_pipe("spancat", config={"spans_key": "sc", "model": {
        "@architectures": "spacy.SpanCategorizer.v1",
        "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 32},
        "scorer": {"@layers": "spacy.LinearLogistic.v1"},
        "tok2vec": _listener(width)}})
    return nlp


def _predictions(nlp, texts):
    out = []
    for doc in nlp.pipe(texts):
        # spancat sets no "scores" on a doc without candidate spans (an empty doc).
        scores = doc.spans["sc"].attrs.get("scores", [])
        spans = sorted((s.start_char, s.end_char, s.label_) for s, score in zip(doc.spans["sc"], scores) if score >= 0.5)
        out.append(({k: round(v, 5) for k, v in doc.cats.items()}, spans))
    return out


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tiny_model_config):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_config)
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(3e-3))
    history = []
    for _ in range(60):
        random.Random(0).shuffle(examples)
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses, drop=0.0)
        history.append(losses)
    return nlp, history


def test_multilabel_textcat_and_spancat_learn_through_the_listener(trained):
    nlp, history = trained
    for name in ("textcat_multilabel", "spancat", "bert"):
        assert history[-1][name] < history[0][name] / 3, (name, history[0], history[-1])
    for text, annotations in TRAIN:
        doc = nlp(text)
        assert {k for k, v in doc.cats.items() if v >= 0.5} == {k for k, v in annotations["cats"].items() if v}
        found = {(s.start_char, s.end_char, s.label_) for s, score in
                 zip(doc.spans["sc"], doc.spans["sc"].attrs["scores"]) if score >= 0.5}
        assert found == set(annotations["spans"]["sc"])


def test_multilabel_textcat_and_spancat_survive_save_and_load(trained, tmp_path):
    nlp, _ = trained
    texts = [t for t, _ in TRAIN] + ["", "new york city said no"]
    before = _predictions(nlp, texts)
    nlp.to_disk(tmp_path / "pipeline")
    assert _predictions(spacy.load(tmp_path / "pipeline"), texts) == before
