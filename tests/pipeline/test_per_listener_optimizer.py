"""per_listener_optimizer on `bert`: in a joint pipeline each listening component's gradient
steps the encoder on its own, with its own optimizer state and global-norm clip."""
import pytest
import spacy
import torch
from thinc.api import SGD, Adam, fix_random_seed

from spacy_bert_cls.models.encoder import get_bert_shim

from .test_heads import TRAIN, initialize


def dense(grad):
    """A copy of a gradient as a dense tensor (the piece embeddings' is sparse: the rows looked up)."""
    return grad.to_dense() if grad.is_sparse else grad.clone()


def make_nlp(model_config, per_listener: bool, textcat_grad_factor: float = 1.0):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **model_config},
                                 "per_listener_optimizer": per_listener})
    width = model_config["hidden_size"]
    nlp.add_pipe("bert_textcat", config={"model": {
        "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": True,
        "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": width,
                    "grad_factor": textcat_grad_factor}}})
    nlp.add_pipe("bert_ner", config={"model": {
        "@architectures": "spacy-bert-cls.BertTagger.v1",
        "tok2vec": {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width,
                    "pooling": {"@layers": "reduce_first.v1"}}}})
    return nlp


def encoder_of(nlp):
    return get_bert_shim(nlp.get_pipe("bert").model).windowed


def weights(nlp):
    return {name: p.detach().clone() for name, p in encoder_of(nlp).named_parameters()}


def test_both_heads_learn_and_the_setting_is_saved(tiny_checkpoint, tiny_model_config, tmp_path):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_config, per_listener=True)
    examples, optimizer = initialize(nlp, tiny_checkpoint, TRAIN, sgd=Adam(3e-3))
    history = [nlp.update(examples, sgd=optimizer, losses={}) for _ in range(30)]
    assert history[-1]["bert_textcat"] < 0.5 * history[0]["bert_textcat"]
    assert history[-1]["bert_ner"] < 0.5 * history[0]["bert_ner"]
    # the encoder has an Adam state per component, none shared
    keys = {key[1] for key in optimizer.mom1 if isinstance(key[1], str) and "@" in key[1]}
    assert {key.rsplit("@", 1)[1] for key in keys} == {"bert_textcat", "bert_ner"}
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("bert").cfg["per_listener_optimizer"] is True


def first_step(tiny_checkpoint, tiny_model_config, per_listener, grad_factor):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_config, per_listener=per_listener, textcat_grad_factor=grad_factor)
    # eps far under the tiny model's smallest gradients, so it does not decide a step's size
    examples, optimizer = initialize(nlp, tiny_checkpoint, TRAIN, sgd=Adam(1e-3, grad_clip=0.0, eps=1e-16))
    # (spaCy's loop steps `bert` right after its update, before the listeners backpropagate:
    # the encoder takes each batch's step at the next one. Here, gradients first, then the step.)
    nlp.update(examples, sgd=None, losses={}, drop=0.0)
    before = weights(nlp)
    nlp.get_pipe("bert").finish_update(optimizer)
    return {name: p - before[name] for name, p in weights(nlp).items()}


def test_a_listeners_gradient_scale_does_not_change_the_step(tiny_checkpoint, tiny_model_config):
    # Adam's step does not depend on the scale of its gradient: stepped apart, scaling the
    # textcat head's gradient 100 times leaves the encoder's step as it was. Summed, the
    # larger gradient takes over the step.
    def step(per_listener, grad_factor):
        steps = first_step(tiny_checkpoint, tiny_model_config, per_listener, grad_factor)
        return next(s for name, s in steps.items() if name.endswith("layers.0.attention.qkv.weight"))

    apart = [step(True, f) for f in (1.0, 100.0)]
    summed = [step(False, f) for f in (1.0, 100.0)]
    def share_changed(a, b):  # of the elements whose step is not the same (float noise aside)
        return float(((a - b).abs() > 1e-6).float().mean())

    assert float(apart[0].abs().max()) > 0
    print("apart", share_changed(*apart), "summed", share_changed(*summed))
    assert share_changed(*apart) < 0.001  # (a sign flipped by rounding on a near-zero gradient)
    assert share_changed(*summed) > 0.05


@pytest.mark.parametrize("clip", [1e-4, 1e3])
def test_each_listeners_gradient_is_clipped_by_its_own_norm(tiny_checkpoint, tiny_model_config, clip):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_config, per_listener=True)
    examples, _ = initialize(nlp, tiny_checkpoint, TRAIN)
    bert = nlp.get_pipe("bert")
    shim = bert.model.get_ref("encoder").shims[0]
    nlp.update(examples, sgd=None, losses={})  # gradients only
    stashed = {key: {n: dense(g) for n, g in grads.items()} for key, grads in shim._stashed.items()}
    assert set(stashed) == {"bert_textcat", "bert_ner"}
    assert all(p.grad is None for p in encoder_of(nlp).parameters())  # nothing summed on the side
    expected = {}
    for grads in stashed.values():
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])))
        assert norm > 0
        coef = min(1.0, clip / (norm + 1e-6))
        for n, g in grads.items():
            expected[n] = expected.get(n, 0) + coef * g
    before = weights(nlp)
    bert.finish_update(SGD(learn_rate=1.0, grad_clip=clip, L2=0.0))
    after = weights(nlp)
    # (float32 weights minus float32 weights: compare the whole step's norm and direction)
    step = torch.cat([(before[n] - after[n]).flatten() for n in expected])
    want = torch.cat([g.flatten() for g in expected.values()])
    assert float(torch.linalg.vector_norm(step)) == pytest.approx(float(torch.linalg.vector_norm(want)), rel=1e-3)
    assert float(torch.nn.functional.cosine_similarity(step, want, dim=0)) > 0.999
    assert not shim._stashed


def test_one_listener_is_the_usual_summed_step(tiny_checkpoint, tiny_model_config):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **tiny_model_config},
                                 "per_listener_optimizer": True})
    nlp.add_pipe("bert_ner", config={"model": {
        "@architectures": "spacy-bert-cls.BertTagger.v1",
        "tok2vec": {"@architectures": "spacy-bert-cls.BertListener.v1", "width": tiny_model_config["hidden_size"],
                    "pooling": {"@layers": "reduce_first.v1"}}}})
    examples, optimizer = initialize(nlp, tiny_checkpoint, TRAIN, sgd=Adam(1e-3))
    nlp.update(examples, sgd=optimizer, losses={})
    assert not any(isinstance(k[1], str) and "@" in k[1] for k in optimizer.mom1)


def test_accumulated_updates_add_up_in_each_stash(tiny_checkpoint, tiny_model_config):
    # spaCy's accumulate_gradient: several nlp.update(sgd=False) calls, then one finish_update.
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_config, per_listener=True)
    examples, _ = initialize(nlp, tiny_checkpoint, TRAIN)
    shim = nlp.get_pipe("bert").model.get_ref("encoder").shims[0]
    torch.manual_seed(0)  # the same dropout masks in the encoder (its own, from the checkpoint's config)
    nlp.update(examples, sgd=False, losses={}, drop=0.0)
    once = {key: {n: dense(g) for n, g in grads.items()} for key, grads in shim.stashed.items()}
    torch.manual_seed(0)
    nlp.update(examples, sgd=False, losses={}, drop=0.0)
    assert set(shim.stashed) == set(once) == {"bert_textcat", "bert_ner"}
    for key, grads in once.items():
        for n, g in grads.items():
            assert torch.allclose(dense(shim.stashed[key][n]), 2 * g, rtol=1e-4, atol=1e-9), (key, n)
