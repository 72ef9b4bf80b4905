"""The distillation losses: soft targets for the heads, MSE on the encoder's hidden states.

The heads' losses return (loss, gradient w.r.t. the head's logits), as the components'
own get_loss do, so that the head's backprop takes the gradient as it takes theirs.
"""
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple

import numpy
import torch
import torch.nn.functional as F

from ..decoding import log_softmax
from ..pytorch.encoder import BertModel

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


@contextmanager
def recorded_states(bert: BertModel, layers: Sequence[int]) -> Iterator[List[torch.Tensor]]:
    """Record the embeddings' output and the outputs of `layers` (0-based) while `bert`
    runs (forward or forward_packed, one or several calls: each state is the calls' rows
    concatenated). Yields the list, filled when the block ends: [embeddings, *layers],
    each Tensor[n_pieces, hidden] (packed: padding left out).

    A layer's output is its last LayerNorm's (ffn_norm), recorded by a forward hook: that
    module is called on every path, packed or not; the hooks are removed on exit.
    """
    modules = [bert.embeddings] + [bert.layers[i].ffn_norm for i in layers]
    parts: List[List[torch.Tensor]] = [[] for _ in modules]
    handles = []
    for module, part in zip(modules, parts):
        def record(module, inputs, output, part=part):
            part.append(output.reshape(-1, output.shape[-1]))
        handles.append(module.register_forward_hook(record))
    states: List[torch.Tensor] = []
    try:
        yield states
    finally:
        for handle in handles:
            handle.remove()
    states.extend(p[0] if len(p) == 1 else torch.cat(p) for p in parts if p)
