"""The distillation losses: the heads' soft targets, hidden states' MSE, attention weights' KL.

The heads' losses return (loss, gradient w.r.t. the head's logits), as the components'
own get_loss do, so that the head's backprop takes the gradient as it takes theirs.
"""
import math
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple

import numpy
import torch
import torch.nn.functional as F

from ..decoding import log_softmax
from ..pytorch.encoder import BertModel
from ..pytorch.packing import PackedLayout, group_rows, to_padded

# Probabilities are clipped here before their log (a float32 softmax can give exactly 0).
TINY = 1e-30


def soft_logits_loss(student: numpy.ndarray, teacher: numpy.ndarray, temperature: float) -> Tuple[float, numpy.ndarray]:
    """T^2 * KL(teacher_T || student_T) summed over rows, softmax at temperature T (Hinton et al.).

    student, teacher (ndarray[n, n_classes]): logits.
    RETURNS: the summed loss and its gradient w.r.t. the student's logits, T * (p_T - q_T).
    """
    t = temperature
    q = numpy.exp(log_softmax(teacher / t))
    log_p = log_softmax(student / t)
    loss = t * t * float((q * (numpy.log(numpy.maximum(q, TINY)) - log_p)).sum())
    return loss, (t * (numpy.exp(log_p) - q)).astype("float32")


def soft_sigmoid_loss(student: numpy.ndarray, teacher: numpy.ndarray,
                      temperature: float) -> Tuple[float, numpy.ndarray]:
    """The multi-label version: T^2 * the KL of each label's Bernoulli at temperature T, summed."""
    t = temperature
    q = 1.0 / (1.0 + numpy.exp(-teacher / t))
    p = 1.0 / (1.0 + numpy.exp(-student / t))
    q_c, p_c = numpy.clip(q, TINY, 1 - 1e-7), numpy.clip(p, TINY, 1 - 1e-7)
    kl = q_c * numpy.log(q_c / p_c) + (1 - q_c) * numpy.log((1 - q_c) / (1 - p_c))
    return t * t * float(kl.sum()), (t * (p - q)).astype("float32")


def cats_loss(student_probs: numpy.ndarray, teacher_probs: numpy.ndarray, exclusive: bool,
              temperature: float) -> Tuple[float, numpy.ndarray]:
    """bert_textcat: the heads give probabilities, so the logits are recovered from them
    (log p for a softmax, up to a constant that softmax ignores; log(p / (1 - p)) for a
    sigmoid). RETURNS the mean loss per doc and its gradient w.r.t. the student's logits."""
    n = max(1, len(student_probs))
    s = numpy.log(numpy.maximum(student_probs.astype("float64"), TINY))
    t = numpy.log(numpy.maximum(teacher_probs.astype("float64"), TINY))
    if exclusive:
        loss, d = soft_logits_loss(s, t, temperature)
    else:
        s = s - numpy.log(numpy.maximum(1.0 - student_probs.astype("float64"), TINY))
        t = t - numpy.log(numpy.maximum(1.0 - teacher_probs.astype("float64"), TINY))
        loss, d = soft_sigmoid_loss(s, t, temperature)
    return loss / n, d / n


def probs_loss(student_probs: numpy.ndarray, teacher_probs: numpy.ndarray) -> Tuple[float, numpy.ndarray]:
    """spaCy's textcat (and textcat_multilabel): its own loss, the mean squared error of its
    probabilities, with the teacher's probabilities for truths (spaCy's get_loss refuses
    cats other than 0 and 1, and its model takes the gradient w.r.t. the probabilities).
    No temperature: the component gives no logits. RETURNS (loss, d_probabilities)."""
    d = (student_probs - teacher_probs).astype("float32")
    return float((d ** 2).mean()), d


def tags_loss(student: Sequence[numpy.ndarray], teacher: Sequence[numpy.ndarray],
              temperature: float) -> Tuple[float, List[numpy.ndarray]]:
    """bert_ner: the KL of every token's tag distribution, from each doc's logits
    [n_tokens, n_tags]. RETURNS the mean loss per token and the gradients, a doc each."""
    n = max(1, sum(len(s) for s in student))
    total, grads = 0.0, []
    for s, t in zip(student, teacher):
        loss, d = soft_logits_loss(s.astype("float64"), t.astype("float64"), temperature)
        total += loss
        grads.append(d / n)
    return total / n, grads


def hidden_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over the pairs of the MSE between each student state and its teacher state
    (embeddings with embeddings, student layer i with teacher layer map[i])."""
    losses = [F.mse_loss(s.float(), t.float()) for s, t in zip(student, teacher)]
    return torch.stack(losses).mean()


def attention_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], layout: PackedLayout,
                   heads: int) -> torch.Tensor:
    """Mean over the layer pairs, the heads and the real query pieces of KL(teacher || student)
    between their attention weights (TinyBERT's attention transfer, with MiniLM's KL):
    student layer i against teacher layer map[i].

    student, teacher: each pair's fused query/key/value projections (recorded_projections),
        Tensor[n_pieces, 3 * hidden] in the packed layout `layout` (the same windows for both).
    """
    losses = []
    for s, t in zip(student, teacher):
        total, count = s.new_zeros((), dtype=torch.float32), 0
        for (log_s, real), (log_t, _) in zip(_log_attention(s, layout, heads), _log_attention(t, layout, heads)):
            kl = torch.where(torch.isinf(log_t), 0.0, log_t.exp() * (log_t - log_s)).sum(-1)  # [rows, heads, seq]
            if real is not None:
                kl = kl.masked_select(real[:, None, :])
            total, count = total + kl.sum(), count + kl.numel()
        losses.append(total / max(count, 1))
    return torch.stack(losses).mean()


def _log_attention(qkv: torch.Tensor, layout: PackedLayout, heads: int):
    """Per group of windows: (log attention weights Tensor[rows, heads, seq, seq] with -inf at
    padded keys, the real queries Tensor[rows, seq] bool or None), as SelfAttention weighs them."""
    padded = to_padded(qkv.float(), layout)
    width = padded.shape[-1] // 3
    for group in layout.groups:
        rows = group_rows(padded, group)
        query, key = (part.reshape(group.rows, group.seq, heads, -1).transpose(1, 2)
                      for part in rows.split(width, dim=-1)[:2])
        scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        if group.mask is None:
            yield scores.log_softmax(-1), None
        else:
            yield scores.masked_fill(~group.mask, float("-inf")).log_softmax(-1), group.mask[:, 0, 0, :]


@contextmanager
def recorded_states(bert: BertModel, layers: Sequence[int]) -> Iterator[List[torch.Tensor]]:
    """Record the embeddings' output and the outputs of `layers` (0-based) while `bert`
    runs (forward or forward_packed, one or several calls: each state is the calls' rows
    concatenated). Yields the list, filled when the block ends: [embeddings, *layers],
    each Tensor[n_pieces, hidden] (packed: padding left out).

    A layer's output is its last LayerNorm's (ffn_norm), recorded by a forward hook: that
    module is called on every path, packed or not; the hooks are removed on exit.
    """
    with _recorded_outputs([bert.embeddings] + [bert.layers[i].ffn_norm for i in layers]) as states:
        yield states


@contextmanager
def recorded_projections(bert: BertModel, layers: Sequence[int]) -> Iterator[List[torch.Tensor]]:
    """The same for the fused query/key/value projection of each of `layers`: Tensor[n_pieces,
    3 * hidden] each, when the block ends (what attention_loss compares)."""
    with _recorded_outputs([bert.layers[i].attention.qkv for i in layers]) as projections:
        yield projections


@contextmanager
def _recorded_outputs(modules: Sequence[torch.nn.Module]) -> Iterator[List[torch.Tensor]]:
    """The outputs of `modules` while the block runs, by forward hooks (removed on exit): a
    Tensor[rows, width] each, its calls' rows concatenated, in the list when the block ends."""
    parts: List[List[torch.Tensor]] = [[] for _ in modules]
    handles = []
    for module, part in zip(modules, parts):
        def record(module, inputs, output, part=part):
            part.append(output.reshape(-1, output.shape[-1]))
        handles.append(module.register_forward_hook(record))
    outputs: List[torch.Tensor] = []
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
    outputs.extend(p[0] if len(p) == 1 else torch.cat(p) for p in parts if p)
