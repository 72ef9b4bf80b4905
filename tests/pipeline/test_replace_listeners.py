"""replace_listeners: a head gets its own copy of the `bert` encoder (InlineBertListener), so
heads trained in different pipelines can be assembled into one (`spacy assemble`,
configs/assemble_textcat_ner.cfg) and predict there what they predicted in their own."""
from pathlib import Path

import pytest
import spacy
import torch
from thinc.api import Adam, Config, fix_random_seed

from spacy_bert_cls.models.encoder import get_bert_shim
from spacy_bert_cls.models.inline_listener import InlineBertListener, replace_listener_cfg

from .test_heads import TRAIN, assert_same, make_nlp, predictions, train

ROOT = Path(__file__).resolve().parents[2]
TEXTCAT_ONLY = [(t, {"cats": a["cats"]}) for t, a in TRAIN]
NER_ONLY = [(t, {"entities": a["entities"]}) for t, a in TRAIN]


@pytest.fixture(scope="module")
def joint(tiny_checkpoint, tiny_model_config):
    nlp = make_nlp(tiny_model_config)
    train(nlp, tiny_checkpoint, TRAIN, n_iter=30)
    return nlp


def replaced(nlp, tmp_path):
    """nlp saved, loaded again, both heads' listeners replaced and `bert` removed."""
    nlp.to_disk(tmp_path / "joint")
    copy = spacy.load(tmp_path / "joint")
    for head in ("bert_textcat", "bert_ner"):
        copy.replace_listeners("bert", head, ["model.tok2vec"])
    assert copy.get_pipe("bert").listening_components == []
    copy.remove_pipe("bert")
    return copy


def test_replaced_heads_predict_as_before_and_after_a_reload(joint, tmp_path):
    before = predictions(joint)
    nlp = replaced(joint, tmp_path)
    assert nlp.pipe_names == ["bert_textcat", "bert_ner"]
    assert isinstance(nlp.get_pipe("bert_ner").model.get_ref("tok2vec"), InlineBertListener)
    config = nlp.config["components"]
    assert config["bert_textcat"]["model"]["tok2vec"]["@architectures"] == "spacy-bert-cls.BertInlineListener.v1"
    assert config["bert_textcat"]["model"]["tok2vec"]["output"] == "pooler"
    assert config["bert_ner"]["model"]["tok2vec"]["pooling"] == {"@layers": "reduce_first.v1"}
    assert_same(predictions(nlp), before)
    nlp.to_disk(tmp_path / "inline")
    assert_same(predictions(spacy.load(tmp_path / "inline")), before)
    # the inline encoder's inference_dtype, set in the config as the bert setting would be
    bf16 = spacy.load(tmp_path / "inline", config={
        "components": {"bert_textcat": {"model": {"tok2vec": {"inference_dtype": "bfloat16"}}}}})
    encoder = bf16.get_pipe("bert_textcat").model.get_ref("tok2vec").get_ref("encoder")
    assert get_bert_shim(encoder).windowed.inference_dtype == "bfloat16"
    for (cats, _), (want, _) in zip(predictions(bf16), before):
        assert list(cats.values()) == pytest.approx(list(want.values()), abs=0.05)


def test_hf_first_decoder_reads_the_inline_encoder(joint, tmp_path):
    joint.get_pipe("bert_ner").decoder = "hf_first"
    try:
        before = predictions(joint)
        assert_same(predictions(replaced(joint, tmp_path)), before)
    finally:
        joint.get_pipe("bert_ner").decoder = "constrained"


def test_assemble_heads_of_two_pipelines(tiny_checkpoint, tiny_model_config, tmp_path):
    # Two pipelines, each one head on its own `bert`, as project.yml's all-separate
    # trains them; the assemble config makes one pipeline of both.
    alone = {}
    for head, data in (("bert_textcat", TEXTCAT_ONLY), ("bert_ner", NER_ONLY)):
        nlp = make_nlp(tiny_model_config, components=(head,))
        train(nlp, tiny_checkpoint, data, n_iter=20)
        nlp.to_disk(tmp_path / head)
        alone[head] = predictions(nlp)
    config = Config().from_disk(ROOT / "configs" / "assemble_textcat_ner.cfg", overrides={
        "paths.textcat": str(tmp_path / "bert_textcat"), "paths.ner": str(tmp_path / "bert_ner")})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert nlp.pipe_names == ["bert_textcat", "bert_ner"]
    nlp.to_disk(tmp_path / "assembled")
    nlp = spacy.load(tmp_path / "assembled")
    both = predictions(nlp)
    for (cats, ents), (tc_cats, _), (_, ner_ents) in zip(both, alone["bert_textcat"], alone["bert_ner"]):
        assert_same([(cats, ents)], [(tc_cats, ner_ents)])
    # two encoders, one per head, neither shared
    encoders = [nlp.get_pipe(h).model.get_ref("tok2vec").get_ref("encoder") for h in nlp.pipe_names]
    assert encoders[0] is not encoders[1]
    shims = [get_bert_shim(e) for e in encoders]
    assert shims[0].id != shims[1].id


def test_an_inline_listener_trains_with_the_global_norm_clip(joint, tmp_path, monkeypatch):
    from spacy.training import Example

    nlp = replaced(joint, tmp_path)
    listener = nlp.get_pipe("bert_textcat").model.get_ref("tok2vec")
    shim = get_bert_shim(listener.get_ref("encoder"))
    assert shim.clip_global
    flipped = [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": a["cats"]["NEG"], "NEG": a["cats"]["POS"]}})
               for t, a in TRAIN]
    fix_random_seed(0)
    optimizer = Adam(1e-3, grad_clip=1e-3)
    losses = nlp.get_pipe("bert_textcat").update(flipped, sgd=None, losses={})
    params = [p for p in shim._model.parameters() if p.grad is not None]
    assert params and float(torch.nn.utils.get_total_norm([p.grad.to_dense() for p in params])) > 1e-3
    steps = []
    seen = []
    original = type(shim).clip_gradient

    def spy(self, max_norm):
        norm = original(self, max_norm)
        seen.append(float(torch.nn.utils.get_total_norm([p.grad.to_dense() for p in params])))
        return norm

    monkeypatch.setattr(type(shim), "clip_gradient", spy)
    nlp.get_pipe("bert_textcat").finish_update(optimizer)
    monkeypatch.undo()
    assert seen and seen[0] == pytest.approx(1e-3, rel=1e-3)
    # and it learns: the flipped labels' loss goes down
    for _ in range(15):
        steps.append(nlp.get_pipe("bert_textcat").update(flipped, sgd=Adam(3e-3), losses={})["bert_textcat"])
    assert steps[-1] < 0.5 * losses["bert_textcat"]


def test_replace_listener_cfg_keeps_the_listener_settings():
    encoder = {"@architectures": "spacy-bert-cls.BertTransformer.v1", "hidden_size": 8}
    doc = replace_listener_cfg(encoder, {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": 8,
                                         "upstream": "*", "reduce": "cls", "grad_factor": 0.5})
    assert doc == {"@architectures": "spacy-bert-cls.BertInlineListener.v1", "encoder": encoder,
                   "width": 8, "output": "cls", "grad_factor": 0.5}
    tokens = replace_listener_cfg(encoder, {"@architectures": "spacy-bert-cls.BertListener.v1", "width": 8,
                                            "pooling": {"@layers": "reduce_max.v1"}})
    assert tokens["output"] == "tokens" and tokens["pooling"] == {"@layers": "reduce_max.v1"}
    with pytest.raises(ValueError, match="spacy-transformers.TransformerListener.v1"):
        replace_listener_cfg(encoder, {"@architectures": "spacy-transformers.TransformerListener.v1", "width": 8})


def test_a_fresh_inline_listener_says_it_needs_a_trained_encoder():
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("bert_textcat", config={"model": {
        "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": True,
        "tok2vec": {"@architectures": "spacy-bert-cls.BertInlineListener.v1", "width": 384, "output": "pooler",
                    "encoder": {"@architectures": "spacy-bert-cls.BertTransformer.v1"}}}})
    examples = [Example.from_dict(nlp.make_doc("good"), {"cats": {"A": 1.0, "B": 0.0}})]
    with pytest.raises(ValueError, match="use a 'bert' component"):
        nlp.initialize(lambda: examples)


def test_an_int8_encoder_keeps_its_calibration_inline(joint, tmp_path):
    # quantize the bert pipeline, then replace the listeners: the copies keep the int8
    # calibration, and with inference_dtype = "int8" in their config predict as before
    from spacy_bert_cls.quantize import quantize_pipeline

    joint.to_disk(tmp_path / "joint")
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(t for t, _ in TRAIN * 5))
    quantize_pipeline(tmp_path / "joint", tmp_path / "int8", dtype="int8", data=data)
    quantized = spacy.load(tmp_path / "int8")
    want = predictions(quantized)
    inline = replaced(quantized, tmp_path)
    inline.to_disk(tmp_path / "inline")
    int8 = spacy.load(tmp_path / "inline", config={"components": {
        head: {"model": {"tok2vec": {"inference_dtype": "int8"}}} for head in ("bert_textcat", "bert_ner")}})
    assert_same(predictions(int8), want)


def test_an_assembled_head_is_quantized_by_its_name_and_a_dropped_int8_is_said(joint, tmp_path, caplog):
    """quantize --component bert_ner on an assembled pipeline wrote inference_dtype into
    bert_ner's own block (which has no such setting) and said it had saved a pipeline that
    then did not load; and replace_listeners turned an int8 encoder's copy into fp32
    without a word."""
    from spacy_bert_cls.quantize import quantize_pipeline

    data = tmp_path / "texts.txt"
    data.write_text("\n".join(t for t, _ in TRAIN * 5))
    replaced(joint, tmp_path).to_disk(tmp_path / "inline")
    with pytest.raises(ValueError, match=r"no component 'bert'.*--component \(bert_textcat, bert_ner\)"):
        quantize_pipeline(tmp_path / "inline", tmp_path / "x", dtype="int8", data=data)
    quantize_pipeline(tmp_path / "inline", tmp_path / "int8", dtype="int8", data=data, component="bert_ner")
    nlp = spacy.load(tmp_path / "int8")
    dtypes = {name: get_bert_shim(pipe.model).windowed.inference_dtype for name, pipe in nlp.pipeline}
    assert dtypes == {"bert_textcat": "float32", "bert_ner": "int8"}
    assert nlp.config["components"]["bert_ner"]["model"]["tok2vec"]["inference_dtype"] == "int8"
    assert "inference_dtype" not in nlp.config["components"]["bert_ner"]
    joint.to_disk(tmp_path / "joint")
    with pytest.raises(ValueError, match="'bert_ner' has no bert encoder of its own.*--component \\(bert\\)"):
        quantize_pipeline(tmp_path / "joint", tmp_path / "y", dtype="int8", data=data, component="bert_ner")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    quantize_pipeline(tmp_path / "joint", tmp_path / "joint8", dtype="int8", data=data)
    (tmp_path / "again").mkdir()
    with caplog.at_level("WARNING", logger="spacy_bert_cls"):
        replaced(spacy.load(tmp_path / "joint8"), tmp_path / "again")
    assert "predicted in int8; the copy predicts in float32" in caplog.text
