"""Where the `bert` component leaves each doc's output at prediction for its listeners.

This table is module-global state, and it has to be: at prediction,
spaCy runs `bert` on a batch and then each listening component on the same docs, with no
channel between them but the Doc. Putting the arrays on the Doc (as spacy-transformers
does with doc._.trf_data) keeps them for the Doc's lifetime; here they wait in a table
keyed weakly by the doc, and the last of the doc's listeners to read an output drops it.
"""
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Set

from spacy.tokens import Doc

from ..errors import ListenerError
from .output import BertOutput

if TYPE_CHECKING:
    from .listener import BertListener


class _Pending:
    __slots__ = ("output", "waiting")

    def __init__(self, output: BertOutput, waiting: Set[int]) -> None:
        self.output = output
        self.waiting = waiting


# doc -> {upstream component name -> its output, and the listeners yet to read it}
_OUTPUTS: "weakref.WeakKeyDictionary[Doc, Dict[str, _Pending]]" = weakref.WeakKeyDictionary()


def store_outputs(upstream: str, docs: Iterable[Doc], outputs: Iterable[BertOutput], listeners: Iterable["BertListener"]) -> None:
    """Keep each doc's output until every listener in `listeners` has read it.

    A listener that never reads it (its component disabled with nlp.select_pipes)
    leaves the entry until the doc is garbage-collected; the stored arrays are the
    doc's own copies, so such an entry never holds on to its whole batch.
    """
    waiting = {id(listener) for listener in listeners}
    if not waiting:
        return
    for doc, output in zip(docs, outputs):
        own = replace(output, pieces=output.pieces.copy(), cls=output.cls.copy(), pooled=output.pooled.copy())
        _OUTPUTS.setdefault(doc, {})[upstream] = _Pending(own, set(waiting))


def take_output(doc: Doc, upstream: str, listener: "BertListener") -> Optional[BertOutput]:
    by_upstream = _OUTPUTS.get(doc)
    if not by_upstream:
        return None
    if upstream == "*":
        if len(by_upstream) > 1:
            raise ListenerError(
                f"Several 'bert' components ({', '.join(by_upstream)}) have output for this "
                f"doc; set the listener's upstream to the name of the one it should use."
            )
        upstream = next(iter(by_upstream))
    pending = by_upstream.get(upstream)
    if pending is None:
        return None
    pending.waiting.discard(id(listener))
    if not pending.waiting:
        del by_upstream[upstream]
        if not by_upstream:
            del _OUTPUTS[doc]
    return pending.output
