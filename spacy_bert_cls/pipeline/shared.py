"""What the heads (bert_textcat, bert_ner) share: their `update`, and adding a label."""
from typing import Dict, Iterable, Optional

from spacy.pipeline import TrainablePipe
from spacy.training import Example, validate_examples
from thinc.api import Optimizer, set_dropout_rate


def update_head(pipe: TrainablePipe, examples: Iterable[Example], *, drop: float, sgd: Optional[Optimizer],
                losses: Optional[Dict[str, float]], method: str) -> Dict[str, float]:
    """spaCy's TrainablePipe.update, except that a batch whose docs are all empty is
    learned from like any other (TrainablePipe.update returns before the model runs).

    The `bert` component's encoder learns a batch when the last of its listeners
    backpropagates it, with the gradients the others sent: a head that skipped the
    batch would drop the encoder's update, and bert_textcat has a label to learn from
    an empty doc (its window is [CLS] [SEP]).

    method (str): the name validate_examples' errors give, e.g. "BertTextCategorizer.update".
    """
    if losses is None:
        losses = {}
    losses.setdefault(pipe.name, 0.0)
    validate_examples(examples, method)
    examples = list(examples)
    if not examples:
        return losses
    set_dropout_rate(pipe.model, drop)
    scores, backprop = pipe.model.begin_update([eg.predicted for eg in examples])
    loss, d_scores = pipe.get_loss(examples, scores)
    backprop(d_scores)
    if sgd is not None:
        pipe.finish_update(sgd)
    losses[pipe.name] += loss
    return losses


def add_head_label(pipe: TrainablePipe, label: str) -> int:
    """Add `label` to the head's cfg["labels"] (the head checks first what a label of its
    may be). A head that is initialized has its output width, and takes no new label.

    RETURNS (int): 1 when added, 0 when the head had it already.
    """
    if label in pipe.labels:
        return 0
    if pipe.model.get_ref("output_layer").has_dim("nO"):
        raise ValueError(f"'{pipe.name}' is initialized; adding label {label!r} needs a new initialize")
    pipe.cfg["labels"].append(label)
    return 1
