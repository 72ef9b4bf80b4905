"""The `bert` component with spaCy's own textcat and ner on its listener."""
import pickle
import random

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_bert_cls.errors import CheckpointError, ListenerError
from spacy_bert_cls.models import output_table
from spacy_bert_cls.models.loaders import build_hf_loader_v1
from spacy_bert_cls.models.encoder import get_bert_shim

TRAIN = [
    ("i love this movie", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": []}),
    ("john visited paris today", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(0, 4, "PER"), (13, 18, "LOC")]}),
    ("awful film from acme corp", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(16, 25, "ORG")]}),
    ("mary hates london", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(0, 4, "PER"), (11, 17, "LOC")]}),
]
TEXTS = [text for text, _ in TRAIN] + ["", "   ", "new york city said no"]


def _listener(width, **kwargs):
    return {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width, **kwargs}


def make_nlp(model_config, order=("textcat", "ner"), frozen=False, grad_factor=1.0, set_doc_tensor=False):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **model_config},
                                 "frozen": frozen, "set_doc_tensor": set_doc_tensor})
    width = model_config["hidden_size"]
    for name in order:
        if name == "textcat":
            nlp.add_pipe("textcat", config={"model": {
                "@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True,
                "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False,
                "use_reduce_mean": True, "tok2vec": _listener(width, grad_factor=grad_factor)}})
        else:
            nlp.add_pipe("ner", config={"model": {
                "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
                "hidden_width": 32, "maxout_pieces": 2, "use_upper": False,
                "extra_state_tokens": False, "tok2vec": _listener(width, grad_factor=grad_factor)}})
    return nlp


def train(nlp, checkpoint, n_iter=40, lr=3e-3):
    fix_random_seed(0)
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(checkpoint)}}
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(lr))
    history = []
    for _ in range(n_iter):
        random.Random(0).shuffle(examples)
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses, drop=0.0)
        history.append(losses)
    return history


def predictions(nlp, texts=TEXTS):
    return [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in nlp.pipe(texts)]


def assert_same(a, b):
    assert len(a) == len(b)
    for (cats_a, ents_a), (cats_b, ents_b) in zip(a, b):
        assert ents_a == ents_b
        assert cats_a.keys() == cats_b.keys()
        for key in cats_a:
            assert cats_a[key] == pytest.approx(cats_b[key], abs=1e-5)


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config)
    history = train(nlp, tiny_checkpoint)
    return nlp, history


def test_overfitting_loss_falls_and_predictions_are_right(trained):
    nlp, history = trained
    for name in ("textcat", "ner"):
        assert history[-1][name] < history[0][name] / 5, (name, history[0], history[-1])
    for text, annotations in TRAIN:
        doc = nlp(text)
        gold = max(annotations["cats"], key=annotations["cats"].get)
        assert max(doc.cats, key=doc.cats.get) == gold
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == annotations["entities"]


def test_to_disk_and_to_bytes_keep_predictions(trained, tmp_path):
    nlp, _ = trained
    before = predictions(nlp)
    nlp.to_disk(tmp_path / "pipeline")
    assert_same(before, predictions(spacy.load(tmp_path / "pipeline")))
    again = make_nlp(nlp.get_pipe("bert").model.get_ref("encoder").attrs and _config_of(nlp))
    again.from_bytes(nlp.to_bytes())
    assert_same(before, predictions(again))


def _config_of(nlp):
    return {k: v for k, v in nlp.config["components"]["bert"]["model"].items() if k != "@architectures"}


def test_saved_pipeline_holds_its_own_weights(tiny_model_config, tmp_path):
    from ..conftest import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint", seed=1)
    nlp = make_nlp(tiny_model_config)
    train(nlp, checkpoint, n_iter=2)
    nlp.to_disk(tmp_path / "pipeline")
    for path in checkpoint.iterdir():
        path.unlink()
    checkpoint.rmdir()
    loaded = spacy.load(tmp_path / "pipeline")
    a = get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.state_dict()
    b = get_bert_shim(loaded.get_pipe("bert").model).windowed.bert.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pipe_equals_call_and_batch_sizes_agree(trained):
    nlp, _ = trained
    # Not "": spaCy's textcat gives all-zero cats to a batch of only empty docs, but the
    # model's scores to an empty doc in a batch with others (spaCy's behaviour, not ours).
    texts = [t for t in TEXTS if t]
    one_by_one = [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in map(nlp, texts)]
    assert_same(one_by_one, predictions(nlp, texts))
    assert_same(one_by_one, [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents])
                             for d in nlp.pipe(texts, batch_size=2)])


def test_n_process_2_equals_n_process_1(trained):
    nlp, _ = trained
    texts = TEXTS * 3
    single = predictions(nlp, texts)
    multi = [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents])
             for d in nlp.pipe(texts, n_process=2, batch_size=4)]
    assert_same(single, multi)


def test_trained_pipeline_pickles(trained):
    nlp, _ = trained
    again = pickle.loads(pickle.dumps(nlp))
    assert_same(predictions(nlp), predictions(again))


def test_nothing_is_left_behind_after_the_pipeline(trained):
    nlp, _ = trained
    docs = list(nlp.pipe(TEXTS))
    assert not any(doc in output_table._OUTPUTS for doc in docs)
    assert all(doc.tensor.size == 0 for doc in docs)


def test_empty_whitespace_and_long_docs(trained):
    nlp, _ = trained
    long_text = " ".join(["john visited paris and"] * 1250)  # 5,000 tokens
    docs = list(nlp.pipe(["", "   ", "\n\t ", long_text]))
    for doc in docs:
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(docs[3]) == 5000
    assert all(0 <= e.start < e.end <= 5000 for e in docs[3].ents)


def test_every_token_gets_a_vector_including_long_docs(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config, set_doc_tensor=True)
    train(nlp, tiny_checkpoint, n_iter=1)
    long_text = " ".join(["mary hates london ."] * 1250)
    for doc in nlp.pipe(["", "  ", "i love this movie", long_text]):
        assert doc.tensor.shape == (len(doc), tiny_model_config["hidden_size"])
        has_text = numpy.array([bool(t.text.strip()) for t in doc], dtype=bool)
        assert (numpy.abs(doc.tensor[has_text]).sum(1) > 0).all()
        assert (doc.tensor[~has_text] == 0).all()


def test_listener_component_alone_is_a_clear_error(trained):
    nlp, _ = trained
    doc = nlp.make_doc("i love this movie")
    with pytest.raises(ListenerError, match="no output of its upstream 'bert'"):
        nlp.get_pipe("textcat")(doc)
    with nlp.select_pipes(disable="bert"):  # the message named no cause the user could see
        with pytest.raises(ListenerError, match=r"Is 'bert' disabled or excluded"):
            nlp("i love this movie")


@pytest.mark.parametrize("order", [("textcat", "ner"), ("ner", "textcat")])
def test_both_component_orders_train(tiny_checkpoint, tiny_model_config, order):
    # spaCy #9221: [transformer, textcat, ner] crashed in nlp.update with spacy-transformers.
    nlp = make_nlp(tiny_model_config, order=order)
    history = train(nlp, tiny_checkpoint, n_iter=25)
    assert history[-1]["textcat"] < history[0]["textcat"]
    assert history[-1]["ner"] < history[0]["ner"]


def _weights(nlp):
    return {k: v.clone() for k, v in get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.state_dict().items()}


@pytest.mark.parametrize("setting", ["frozen", "grad_factor_0"])
def test_frozen_encoder_keeps_weights_while_listeners_learn(tiny_checkpoint, tiny_model_config, setting):
    kwargs = {"frozen": True} if setting == "frozen" else {"grad_factor": 0.0}
    nlp = make_nlp(tiny_model_config, **kwargs)
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(1e-3))
    before = _weights(nlp)
    first = last = None
    for _ in range(15):
        losses = nlp.update(examples, sgd=optimizer, losses={})
        first = first or losses
        last = losses
    after = _weights(nlp)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert last["textcat"] < first["textcat"]


def test_encoder_weights_change_when_not_frozen(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config, order=("textcat",))
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(1e-3))
    before = _weights(nlp)
    for _ in range(3):  # textcat's output layer starts at zero: no gradient on the first step
        nlp.update(examples, sgd=optimizer)
    after = _weights(nlp)
    assert not torch.equal(before["layers.0.attention.qkv.weight"], after["layers.0.attention.qkv.weight"])


def test_initialize_without_checkpoint_or_vocab_says_what_to_do(tiny_model_config):
    nlp = make_nlp(tiny_model_config, order=("textcat",))
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": None}}
    with pytest.raises(CheckpointError, match="paths.bert"):
        nlp.initialize(lambda: examples)


def test_random_weights_with_a_vocabulary(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config, order=("textcat",))
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "vocab": str(tiny_checkpoint / "vocab.txt")}}
    nlp.initialize(lambda: examples)
    assert nlp("i love this movie").cats


def test_vocab_that_does_not_match_the_embeddings(tiny_checkpoint, tiny_model_config, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text((tiny_checkpoint / "vocab.txt").read_text() + "extra1\nextra2\n")
    loader = build_hf_loader_v1(vocab=vocab)
    nlp = make_nlp(tiny_model_config, order=("textcat",))
    with pytest.raises(CheckpointError, match=r"vocab\.txt: the tokenizer has \d+ entries but the embeddings have vocab_size = \d+"):
        loader(nlp.get_pipe("bert").model)


def test_listener_width_must_match(tiny_checkpoint, tiny_model_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **tiny_model_config}})
    nlp.add_pipe("textcat", config={"model": {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True,
                                              "use_reduce_first": False, "use_reduce_last": False,
                                              "use_reduce_max": False, "use_reduce_mean": True,
                                              "tok2vec": _listener(48)}})
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    with pytest.raises(ValueError, match="width 48 but 'bert' has hidden_size 32"):
        nlp.initialize(lambda: examples)


def test_mixed_precision_on_cpu_is_bf16_autocast_and_trains(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp({**tiny_model_config, "mixed_precision": True})
    history = train(nlp, tiny_checkpoint, n_iter=10)
    assert history[-1]["ner"] < history[0]["ner"]
    full = make_nlp(tiny_model_config)
    full.from_bytes(nlp.to_bytes())
    low_cats = [d.cats["POS"] for d in nlp.pipe(TEXTS[:4])]
    full_cats = [d.cats["POS"] for d in full.pipe(TEXTS[:4])]
    assert low_cats == pytest.approx(full_cats, abs=0.05)
    assert low_cats != full_cats  # bf16 really ran


def test_disabled_listener_component_keeps_only_the_docs_own_output(trained):
    nlp, _ = trained
    with nlp.select_pipes(disable=["ner"]):
        docs = list(nlp.pipe(TEXTS[:4]))
    pending = output_table._OUTPUTS[docs[0]]["bert"]
    assert pending.output.pieces.base is None  # a copy, not a view of the batch's array
    del docs
    import gc

    gc.collect()
    assert len(output_table._OUTPUTS) == 0
