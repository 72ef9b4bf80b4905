"""bert_textcat (both modes) and bert_ner: learn, save, load, decode, confidences, thresholds."""
import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_bert_cls.pipeline.textcat import best_thresholds, tune_thresholds

TRAIN = [
    ("i love this movie", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": []}),
    ("john visited paris today", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(0, 4, "PER"), (13, 18, "LOC")]}),
    ("awful film from acme corp", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(16, 25, "ORG")]}),
    ("mary hates new york city", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(0, 4, "PER"), (11, 24, "LOC")]}),
]
MULTI = [
    ("i love this movie", {"cats": {"good": 1.0, "film": 1.0, "place": 0.0}}),
    ("john visited paris today", {"cats": {"good": 0.0, "film": 0.0, "place": 1.0}}),
    ("awful film from acme corp", {"cats": {"good": 0.0, "film": 1.0, "place": 0.0}}),
    ("mary hates new york city", {"cats": {"good": 0.0, "film": 0.0, "place": 1.0}}),
]
TEXTS = [t for t, _ in TRAIN] + ["", "   ", "new york city said no"]


def make_nlp(model_config, components=("bert_textcat", "bert_ner"), exclusive=True, scheme="BILUO"):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **model_config}})
    width = model_config["hidden_size"]
    if "bert_textcat" in components:
        nlp.add_pipe("bert_textcat", config={"model": {
            "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": exclusive,
            "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": width}}})
    if "bert_ner" in components:
        nlp.add_pipe("bert_ner", config={"scheme": scheme, "model": {
            "@architectures": "spacy-bert-cls.BertTagger.v1",
            "tok2vec": {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width,
                        "pooling": {"@layers": "reduce_first.v1"}}}})
    return nlp


def initialize(nlp, checkpoint, data, sgd=None):
    """Examples of `data` and nlp initialized on them, the encoder from `checkpoint`.
    RETURNS: (examples, the optimizer nlp.initialize returns)."""
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in data]
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(checkpoint)}}
    return examples, nlp.initialize(lambda: examples, sgd=sgd)


def train(nlp, checkpoint, data, n_iter=40, lr=3e-3):
    fix_random_seed(0)
    examples, optimizer = initialize(nlp, checkpoint, data, sgd=Adam(lr))
    history = [nlp.update(examples, sgd=optimizer, losses={}) for _ in range(n_iter)]
    return history


def predictions(nlp, texts=TEXTS):
    out = []
    for doc in nlp.pipe(texts):
        ents = [(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents]
        out.append((doc.cats, ents))
    return out


def assert_same(a, b):
    for (cats_a, ents_a), (cats_b, ents_b) in zip(a, b):
        assert [e[:3] for e in ents_a] == [e[:3] for e in ents_b]
        assert [e[3] for e in ents_a] == pytest.approx([e[3] for e in ents_b], abs=1e-5)
        assert cats_a.keys() == cats_b.keys()
        assert [cats_a[k] for k in cats_a] == pytest.approx([cats_b[k] for k in cats_a], abs=1e-5)


@pytest.fixture(scope="module")
def joint(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config)
    history = train(nlp, tiny_checkpoint, TRAIN, n_iter=60)
    return nlp, history


def test_joint_pipeline_overfits(joint):
    nlp, history = joint
    for name in ("bert_textcat", "bert_ner"):
        assert history[-1][name] < history[0][name] / 5, (name, history[0], history[-1])
    for text, gold in TRAIN:
        doc = nlp(text)
        assert max(doc.cats, key=doc.cats.get) == max(gold["cats"], key=gold["cats"].get)
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == gold["entities"]


def test_save_load_same_predictions(joint, tmp_path):
    nlp, _ = joint
    before = predictions(nlp)
    nlp.to_disk(tmp_path / "p")
    assert_same(before, predictions(spacy.load(tmp_path / "p")))
    again = spacy.blank("en").from_config(nlp.config)
    again.from_bytes(nlp.to_bytes())
    assert_same(before, predictions(again))


def test_confidences_and_spans_group(joint):
    nlp, _ = joint
    for doc in nlp.pipe(TEXTS):
        exclusive_sum = sum(doc.cats.values())
        assert exclusive_sum == pytest.approx(1.0, abs=1e-5)  # empty docs too
        group = doc.spans["bert_ner"]
        assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
        assert group.attrs["scores"] == [e._.confidence for e in doc.ents]
        assert all(0.0 <= e._.confidence <= 1.0 for e in doc.ents)
    trained_entity = nlp("john visited paris today").ents[0]
    assert trained_entity._.confidence > 0.5


@pytest.mark.parametrize("store_user_data", [True, False])
def test_confidences_survive_docbin(joint, store_user_data):
    """A default DocBin (no user data) kept the span group's scores but lost
    ent._.confidence; it reads from the span group now."""
    from spacy.tokens import DocBin

    nlp, _ = joint
    doc = nlp("john visited paris today")
    assert doc.ents and all(e._.confidence is not None for e in doc.ents)
    again = list(DocBin(docs=[doc], store_user_data=store_user_data).get_docs(nlp.vocab))[0]
    assert again.spans["bert_ner"].attrs["scores"] == pytest.approx(doc.spans["bert_ner"].attrs["scores"])
    assert [e._.confidence for e in again.ents] == pytest.approx([e._.confidence for e in doc.ents])


def test_confidences_after_an_entity_ruler_overwrites(joint):
    """entity_ruler(overwrite_ents=True) after bert_ner: the ruler's entity has no
    confidence (it had bert_ner's stale one or None), bert_ner's surviving entities keep
    theirs, and the span group, named after the component, still holds what bert_ner said."""
    nlp, _ = joint
    text = "john visited paris today"
    before = nlp(text)
    assert [e.text for e in before.ents][:1] == ["john"]
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    try:
        ruler.add_patterns([{"label": "CITY", "pattern": "paris"}])
        doc = nlp(text)
    finally:
        nlp.remove_pipe("entity_ruler")
    by_text = {e.text: e for e in doc.ents}
    assert by_text["paris"].label_ == "CITY" and by_text["paris"]._.confidence is None
    assert by_text["john"]._.confidence == pytest.approx(before.ents[0]._.confidence)
    group = doc.spans["bert_ner"]
    assert [(s.text, s.label_) for s in group] == [(e.text, e.label_) for e in before.ents]


def test_confidence_ignores_other_span_groups(joint):
    """A spancat-like group with attrs["scores"] is not read as bert_ner's confidences."""
    from spacy.tokens import SpanGroup

    nlp, _ = joint
    doc = nlp.make_doc("john visited paris today")
    doc.ents = [doc.char_span(0, 4, label="PER")]
    doc.spans["sc"] = SpanGroup(doc, name="sc", spans=[doc.ents[0]], attrs={"scores": [0.3]})
    assert doc.ents[0]._.confidence is None


def test_long_and_empty_docs(joint):
    nlp, _ = joint
    long_text = " ".join(["john visited paris today ."] * 1000)  # 5,000 tokens, many windows
    doc = nlp(long_text)
    assert len(doc) == 5000
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(1 for e in doc.ents if e.label_ == "PER") > 900  # learned entities all along the doc
    for text in ["", " ", "\n\n"]:
        doc = nlp(text)
        assert list(doc.ents) == []


@pytest.mark.parametrize("scheme", ["BILUO", "BIO"])
def test_ner_alone_both_schemes(tiny_checkpoint, tiny_model_config, scheme, tmp_path):
    nlp = make_nlp(tiny_model_config, components=("bert_ner",), scheme=scheme)
    train(nlp, tiny_checkpoint, TRAIN, n_iter=40)
    assert [(e.start_char, e.end_char, e.label_) for e in nlp("mary hates new york city").ents] == TRAIN[3][1]["entities"]
    nlp.to_disk(tmp_path / "p")
    assert_same(predictions(nlp), predictions(spacy.load(tmp_path / "p")))


@pytest.fixture(scope="module")
def multilabel(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=False)
    history = train(nlp, tiny_checkpoint, MULTI, n_iter=150)
    return nlp, history


def test_multilabel_overfits_and_thresholds_survive_serialization(multilabel, tmp_path):
    nlp, history = multilabel
    assert history[-1]["bert_textcat"] < history[0]["bert_textcat"] / 5
    textcat = nlp.get_pipe("bert_textcat")
    for text, gold in MULTI:
        cats = nlp(text).cats
        assert {k for k, v in cats.items() if v >= 0.5} == {k for k, v in gold["cats"].items() if v}
    textcat.set_thresholds({"good": 0.3, "film": 0.7})
    before = predictions(nlp)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("bert_textcat").thresholds == pytest.approx({"good": 0.3, "film": 0.7, "place": 0.5})
    assert_same(before, predictions(loaded))
    again = spacy.blank("en").from_config(nlp.config).from_bytes(nlp.to_bytes())
    assert again.get_pipe("bert_textcat").thresholds == pytest.approx(textcat.thresholds)


def test_scores_use_per_label_thresholds(multilabel):
    nlp, _ = multilabel
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in MULTI]
    textcat = nlp.get_pipe("bert_textcat")
    textcat.set_thresholds({"good": 0.5, "film": 0.5, "place": 0.5})
    assert nlp.evaluate(examples)["cats_macro_f"] == pytest.approx(1.0)
    textcat.set_thresholds({"place": 1.0})  # never predicted: its F drops to 0
    scores = nlp.evaluate(examples)
    assert scores["cats_f_per_type"]["place"]["f"] == 0.0
    assert scores["cats_macro_f"] == pytest.approx(2 / 3)
    tuned = tune_thresholds(nlp, examples)
    assert tuned["place"] < 1.0
    assert nlp.evaluate(examples)["cats_macro_f"] == pytest.approx(1.0)


def test_best_thresholds_maximise_f1():
    probs = numpy.array([[0.9, 0.2], [0.6, 0.3], [0.4, 0.1], [0.1, 0.05]])
    truths = numpy.array([[1, 0], [1, 0], [0, 0], [0, 0]], dtype=float)
    tuned = best_thresholds(probs, truths)
    assert 0.4 < tuned[0] <= 0.6  # separates 0.6 (positive) from 0.4 (negative)
    assert tuned[1] == 0.5  # no positive example: left at 0.5
    kept = best_thresholds(probs, truths, keep=numpy.array([0.9, 0.37]))
    assert kept[0] == tuned[0] and kept[1] == 0.37  # ... or at its threshold so far


def test_bad_thresholds_are_refused(multilabel):
    textcat = multilabel[0].get_pipe("bert_textcat")
    with pytest.raises(ValueError, match="no label"):
        textcat.set_thresholds({"nope": 0.5})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        textcat.set_thresholds({"good": 1.5})


def test_listener_order_does_not_matter(tiny_checkpoint, tiny_model_config, joint):
    # spaCy #9221: with spacy-transformers, [transformer, textcat, ner] crashed in update.
    # Here the other order trains to the very same losses.
    _, forward = joint
    nlp = make_nlp(tiny_model_config, components=("bert_ner", "bert_textcat"))
    backward = train(nlp, tiny_checkpoint, TRAIN, n_iter=len(forward))
    for name in ("bert_ner", "bert_textcat"):
        assert [h[name] for h in backward] == pytest.approx([h[name] for h in forward], rel=1e-3, abs=1e-4)


def test_multilabel_head_starts_at_each_labels_prior(tiny_checkpoint, tiny_model_config):
    # A label positive in 1 of 4 examples starts at (1 + 1) / (4 + 2) = 1/3 (add-one smoothing);
    # one that an example leaves out of its cats is counted over the others only.
    data = [(t, {"cats": dict(a["cats"])}) for t, a in MULTI]
    del data[0][1]["cats"]["place"]
    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=False)
    initialize(nlp, tiny_checkpoint, data)
    textcat = nlp.get_pipe("bert_textcat")
    expected = {"good": 2 / 6, "film": 3 / 6, "place": 3 / 5}
    bias = textcat.model.get_ref("output_layer").get_param("b")
    for label, prior in expected.items():
        assert bias[textcat.labels.index(label)] == pytest.approx(numpy.log(prior / (1 - prior)), abs=1e-6)
    # the untrained head's probabilities sit around the priors, not at 0.5
    probs = numpy.array([[doc.cats[label] for label in expected] for doc in nlp.pipe([t for t, _ in MULTI] * 3)])
    assert probs.mean(axis=0) == pytest.approx(list(expected.values()), abs=0.1)


def test_ner_head_starts_at_the_tag_priors(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config, components=("bert_ner",), scheme="BIO")
    examples, _ = initialize(nlp, tiny_checkpoint, [(t, {"entities": a["entities"]}) for t, a in TRAIN])
    ner = nlp.get_pipe("bert_ner")
    counts = {tag: 1.0 for tag in ner.scheme.tags}  # add-one smoothing
    for eg in examples:
        for i in ner.scheme.tag_ids(eg.get_aligned_ner()):
            counts[ner.scheme.tags[i]] += 1
    total = sum(counts.values())
    bias = ner.model.get_ref("output_layer").get_param("b")
    assert counts["O"] > counts["B-LOC"]
    assert list(bias) == pytest.approx([numpy.log(counts[t] / total) for t in ner.scheme.tags], abs=1e-6)


def test_exclusive_classes_refuse_texts_with_several_labels(tiny_checkpoint, tiny_model_config):
    """Multi-label data trained an exclusive bert_textcat silently, with a softmax gradient that
    is wrong for every text with two labels (spaCy's own textcat stops with E895)."""
    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=True)
    with pytest.raises(ValueError, match=r"exclusive classes \(one label a text\).*has 2: film, good"):
        train(nlp, tiny_checkpoint, MULTI, n_iter=1)


def test_thresholds_on_exclusive_classes_are_refused(tiny_checkpoint, tiny_model_config):
    """They were accepted and changed nothing (each text gets its top-scoring label)."""
    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=True)
    train(nlp, tiny_checkpoint, TRAIN, n_iter=1)
    with pytest.raises(ValueError, match="exclusive classes.*multi-label bert_textcat"):
        nlp.get_pipe("bert_textcat").set_thresholds({"POS": 0.9})
