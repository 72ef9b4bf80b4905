"""One distillation step: the teacher's targets for a batch of texts, and the student's
forward and backward passes against them (and against gold examples, when there are some).

The teacher runs as it predicts (eval mode, no gradients). Its heads' outputs are the soft
targets: bert_textcat's probabilities, bert_ner's tag logits per token, spaCy's textcat's
probabilities (its own squared-error loss against them). Any other component that listens
to the encoder (spaCy's ner, spancat ...) learns from the teacher's annotations as silver
examples, through its own update: a transition-based ner exposes no per-token
distribution to match.

The student's encoder runs once through its `bert` component (hooks record the states
that the hidden-state loss compares, and the query/key/value projections whose attention
weights the attention loss compares); each head backpropagates through the listener as in
`spacy train`, and the optimizer steps once, after the gold and the distillation passes.
"""
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Optimizer, PyTorchGradScaler, set_dropout_rate

from ..models.encoder import bucket_tensors, get_bert_shim, plan_for
from ..models.pieces import get_piece_tokenizer
from ..pipeline.ner import BertEntityRecognizer
from ..pipeline.textcat import BertTextCategorizer
from ..pytorch.packing import PackedLayout
from .losses import attention_loss, cats_loss, hidden_loss, probs_loss, recorded_projections, recorded_states, tags_loss
from .student import encoder_name


class Targets:
    """The teacher's outputs for a batch: soft targets by head, silver docs, hidden states,
    attention projections and the packed layout of the windows they were computed on."""

    def __init__(self, docs: List[Doc], soft: Dict[str, object], states: List[torch.Tensor],
                 projections: List[torch.Tensor], layout: Optional[PackedLayout]) -> None:
        self.docs, self.soft, self.states = docs, soft, states
        self.projections, self.layout = projections, layout


class Distiller:
    """The teacher and the student of a run, and what one step does with them."""

    def __init__(self, teacher: Language, student: Language, mapping: Sequence[int], *, temperature: float,
                 hidden_weight: float, attention_weight: float, dropout: float) -> None:
        self.teacher, self.student, self.mapping = teacher, student, list(mapping)
        self.temperature, self.hidden_weight, self.dropout = temperature, hidden_weight, dropout
        self.attention_weight = attention_weight
        self.teacher_encoder = teacher.get_pipe(encoder_name(teacher, "the teacher"))
        self.encoder = student.get_pipe(encoder_name(student, "the student"))
        self.teacher_bert = get_bert_shim(self.teacher_encoder.model).windowed.bert
        self.teacher_bert.eval().requires_grad_(False)

    @property
    def heads(self) -> List[str]:
        """The student's components that listen to its encoder, in the order the encoder
        hands them its output (the last one's backprop runs the encoder's backward pass)."""
        return list(self.encoder.listening_components)

    @torch.no_grad()
    def targets(self, texts: Sequence[str]) -> Targets:
        docs = [self.teacher.make_doc(text) for text in texts]
        self.teacher_encoder.set_annotations(docs, self.teacher_encoder.predict(docs))
        soft: Dict[str, object] = {}
        for name in self.teacher_encoder.listening_components:
            pipe = self.teacher.get_pipe(name)
            if isinstance(pipe, BertEntityRecognizer):
                soft[name] = [pipe.model.ops.to_numpy(x) for x in pipe.model.predict(docs)]
            elif isinstance(pipe, (BertTextCategorizer, TextCategorizer)):
                soft[name] = pipe.model.ops.to_numpy(pipe.predict(docs))
            else:
                pipe.set_annotations(docs, pipe.predict(docs))
        states: List[torch.Tensor] = []
        projections: List[torch.Tensor] = []
        layout = None
        if self.hidden_weight > 0 or self.attention_weight > 0:
            hidden, attended = (self.mapping if w > 0 else [] for w in (self.hidden_weight, self.attention_weight))
            with recorded_states(self.teacher_bert, hidden) as states, \
                    recorded_projections(self.teacher_bert, attended) as projections:
                _, layout = self.teacher_bert.forward_packed(self._buckets(docs))
        return Targets(docs, soft, states, projections, layout)

    def _buckets(self, docs: List[Doc]):
        """The windows the encoder runs for `docs`, as the student's forward plans them."""
        model = self.teacher_encoder.model
        pieces_layer, encoder = model.get_ref("pieces"), model.get_ref("encoder")
        doc_pieces, _ = pieces_layer(docs, is_train=False)
        plan = plan_for(encoder, doc_pieces, get_piece_tokenizer(pieces_layer))
        return bucket_tensors(plan, next(self.teacher_bert.parameters()).device)

    def distill(self, texts: Sequence[str], targets: Targets) -> Dict[str, float]:
        """The student's passes on a batch against the teacher's targets; gradients are
        accumulated, not applied. RETURNS the loss of each part."""
        docs = [self.student.make_doc(text) for text in texts]
        examples = [Example(doc, silver) for doc, silver in zip(docs, targets.docs)]
        student_bert = get_bert_shim(self.encoder.model).windowed.bert
        layers = range(student_bert.config.num_hidden_layers)
        hidden, attended = (layers if weight > 0 else [] for weight in (self.hidden_weight, self.attention_weight))
        with recorded_states(student_bert, hidden) as states, \
                recorded_projections(student_bert, attended) as projections:
            self.encoder.update(examples, drop=self.dropout, sgd=None, losses={})
        losses = self._encoder_losses(states, projections, targets, student_bert.config.num_attention_heads)
        for name in self.heads:
            losses[name] = self._head_loss(name, docs, examples, targets)
        return losses

    def _encoder_losses(self, states: List[torch.Tensor], projections: List[torch.Tensor], targets: Targets,
                        heads: int) -> Dict[str, float]:
        """The hidden-state and attention losses, backpropagated into the student's encoder
        (its graph kept: the heads' backward passes go through it). RETURNS them by name."""
        parts: Dict[str, torch.Tensor] = {}
        if self.hidden_weight > 0:
            parts["hidden"] = self.hidden_weight * hidden_loss(states, targets.states)
        if self.attention_weight > 0:
            rows = projections[0].shape[0] if projections else 0
            if rows != (targets.layout.n_rows if targets.layout else 0):
                raise RuntimeError(f"the student ran {rows} pieces where the teacher ran "
                                   f"{targets.layout.n_rows if targets.layout else 0}: their windows differ")
            if rows:
                parts["attention"] = self.attention_weight * attention_loss(projections, targets.projections,
                                                                            targets.layout, heads)
        if parts:
            sum(parts.values()).backward(retain_graph=True)
        return {name: float(value.detach()) for name, value in parts.items()}

    def _head_loss(self, name: str, docs: List[Doc], examples: List[Example], targets: Targets) -> float:
        pipe = self.student.get_pipe(name)
        if name not in targets.soft:  # silver examples, the component's own loss
            silver: Dict[str, float] = {}
            pipe.update(examples, drop=self.dropout, sgd=None, losses=silver)
            return float(silver.get(name, 0.0))
        set_dropout_rate(pipe.model, self.dropout)
        scores, backprop = pipe.model.begin_update(docs)
        ops = pipe.model.ops
        if isinstance(pipe, BertEntityRecognizer):
            loss, d_logits = tags_loss([ops.to_numpy(x) for x in scores], targets.soft[name], self.temperature)
            backprop([ops.asarray2f(d) for d in d_logits])
        elif isinstance(pipe, BertTextCategorizer):
            loss, d_logits = cats_loss(ops.to_numpy(scores), targets.soft[name], pipe.exclusive, self.temperature)
            backprop(ops.asarray2f(d_logits))
        else:
            loss, d_probs = probs_loss(ops.to_numpy(scores), targets.soft[name])
            backprop(ops.asarray2f(d_probs))
        return loss

    def gold(self, examples: List[Example]) -> Dict[str, float]:
        """The ordinary update of the encoder and every head on gold examples, without the
        step. RETURNS the losses by head."""
        losses: Dict[str, float] = {}
        self.encoder.update(examples, drop=self.dropout, sgd=None, losses={})
        for name in self.heads:
            self.student.get_pipe(name).update(examples, drop=self.dropout, sgd=None, losses=losses)
        return {f"gold {name}": value for name, value in losses.items() if name in self.heads}

    def step(self, texts: Sequence[str], gold: Optional[List[Example]], optimizer: Optimizer) -> Dict[str, float]:
        """One optimizer step: the gold pass (if any), the distillation pass, the update.
        RETURNS the losses by part, and "words" and "seconds"."""
        started = time.perf_counter()
        targets = self.targets(texts)
        with student_training(self.encoder):
            losses = self.gold(gold) if gold else {}
            losses.update(self.distill(texts, targets))
            self.encoder.finish_update(optimizer)
            for name in self.heads:
                self.student.get_pipe(name).finish_update(optimizer)
        losses["words"] = float(sum(len(doc) for doc in targets.docs))
        losses["seconds"] = time.perf_counter() - started
        return losses


@contextmanager
def student_training(encoder) -> Iterator[None]:
    """The student's encoder trained as one (not frozen, one summed step for every head)
    while a step runs; its settings as they were afterwards, so that it saves as the
    teacher was configured, and its listeners rid of the batch's activations."""
    saved = {key: encoder.cfg.get(key) for key in ("frozen", "per_listener_optimizer")}
    encoder.cfg.update(frozen=False, per_listener_optimizer=False)
    # No fp16 loss scaling (CUDA with mixed_precision): the hidden-state and gold losses are
    # backpropagated outside thinc's shim, unscaled, and the shim's unscale after the heads'
    # backward would divide them by the scale. Autocast stays; only the scaler is off.
    shim = get_bert_shim(encoder.model)
    scaler, shim._grad_scaler = shim._grad_scaler, PyTorchGradScaler(enabled=False)
    try:
        yield
    finally:
        shim._grad_scaler = scaler
        encoder.cfg.update(saved)
        for listener in encoder.listeners:
            listener.clear()
