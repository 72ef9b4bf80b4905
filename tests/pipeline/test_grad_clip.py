"""The optimizer's grad_clip clips the encoder's gradient by its global norm, as torch's
clip_grad_norm_ and HF's Trainer do, not each parameter's gradient on its own (thinc's rule,
which lets the whole encoder step up to sqrt(n_tensors) times further)."""
import pytest
import torch
from thinc.api import SGD, fix_random_seed

from spacy_bert_cls.models.encoder import get_bert_shim

from ..conftest import TINY_SIZES, tiny_vocab
from .test_heads import TRAIN, initialize, make_nlp


@pytest.mark.parametrize("clip", [1e-3, 1e3])
def test_encoder_step_has_the_global_norm_of_grad_clip(tiny_checkpoint, clip):
    fix_random_seed(0)
    nlp = make_nlp({"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 16, "stride": 8})
    examples, _ = initialize(nlp, tiny_checkpoint, TRAIN)
    bert = nlp.get_pipe("bert")
    encoder = get_bert_shim(bert.model).windowed
    nlp.update(examples, sgd=None, losses={})  # gradients only
    # (the piece embeddings' gradient is sparse: the rows looked up)
    grads = {name: p.grad.to_dense() if p.grad.is_sparse else p.grad.clone()
             for name, p in encoder.named_parameters() if p.grad is not None}
    assert encoder.bert.embeddings.piece_embeddings.weight.grad.is_sparse
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])))
    assert len(grads) > 20 and norm > 1e-3
    before = {name: p.detach().clone() for name, p in encoder.named_parameters() if name in grads}
    bert.finish_update(SGD(learn_rate=1.0, grad_clip=clip, L2=0.0))
    steps = [before[name] - p.detach() for name, p in encoder.named_parameters() if name in grads]
    step_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in steps])))
    if clip < norm:
        # clipped as one vector: the step's norm is grad_clip, its direction the gradient's
        assert step_norm == pytest.approx(clip, rel=1e-3)
        # (float32 weights minus float32 weights: compare directions, not digits)
        flat_step = torch.cat([s.flatten() for s in steps])
        flat_grad = torch.cat([g.flatten() for g in grads.values()])
        assert float(torch.nn.functional.cosine_similarity(flat_step, flat_grad, dim=0)) > 0.999
    else:
        assert step_norm == pytest.approx(norm, rel=1e-3)


@pytest.mark.parametrize("settings", [dict(L2=0.01, L2_is_weight_decay=True), dict(L2=0.1, L2_is_weight_decay=False)])
def test_the_sparse_embedding_gradient_trains_as_the_dense_one(tiny_checkpoint, monkeypatch, settings):
    """Three Adam updates with the piece embeddings' sparse gradient (laid out on the shim's
    buffer) against the same updates with the dense gradient: the same weights, and the
    buffer zero again after each step."""
    from thinc.api import Adam

    import spacy_bert_cls.pytorch.embeddings as embeddings

    def train(dense: bool):
        fix_random_seed(0)
        nlp = make_nlp({"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 16, "stride": 8})
        examples, _ = initialize(nlp, tiny_checkpoint, TRAIN)
        optimizer = Adam(1e-2, grad_clip=1.0, use_averages=False, **settings)
        shim = get_bert_shim(nlp.get_pipe("bert").model)
        lookup = embeddings.F.embedding
        def dense_lookup(*args, **kwargs):  # F.embedding(input, weight, ..., sparse) with sparse False
            kwargs["sparse"] = False
            return lookup(*args[:6], **kwargs)

        if dense:
            monkeypatch.setattr(embeddings.F, "embedding", dense_lookup)
        for _ in range(3):
            nlp.update(examples, sgd=optimizer, losses={})
            assert all(not buffer.any() for buffer in shim.__dict__.get("_grad_buffers", {}).values())
        monkeypatch.undo()
        return shim, {name: p.detach().clone() for name, p in shim.windowed.named_parameters()}

    sparse_shim, sparse = train(dense=False)
    dense_shim, dense = train(dense=True)
    assert sparse_shim.__dict__.get("_grad_buffers") and not dense_shim.__dict__.get("_grad_buffers")
    for name in dense:
        torch.testing.assert_close(sparse[name], dense[name], rtol=1e-5, atol=1e-6, msg=name)
