"""How closely the student follows the teacher on dev texts: the share of texts whose top
class is the teacher's (multi-label: of text-label decisions), and the F-score of the
student's entities against the teacher's."""
from typing import Dict, List, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc

BATCH = 64


def _top(doc: Doc) -> Tuple:
    return (max(doc.cats, key=doc.cats.get),) if doc.cats else ()


def _decisions(doc: Doc) -> Tuple:
    return tuple(sorted(label for label, p in doc.cats.items() if p >= 0.5))


def _ents(doc: Doc) -> set:
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


class Agreement:
    """The teacher's predictions on the dev texts, made once; `measure` compares a student."""

    def __init__(self, teacher: Language, texts: Sequence[str], exclusive: bool = True) -> None:
        self.texts = list(texts)
        self.exclusive = exclusive
        self.reference = [self._summary(doc) for doc in teacher.pipe(self.texts, batch_size=BATCH)]

    def _summary(self, doc: Doc) -> Tuple[Tuple, set]:
        return (_top(doc) if self.exclusive else _decisions(doc)), _ents(doc)

    def measure(self, student: Language) -> Dict[str, float]:
        """{"cats": share of texts decided alike, "ents_f": entity F against the teacher},
        each where the teacher predicts it."""
        found = [self._summary(doc) for doc in student.pipe(self.texts, batch_size=BATCH)]
        result: Dict[str, float] = {}
        if any(cats for cats, _ in self.reference):
            result["cats"] = sum(s[0] == t[0] for s, t in zip(found, self.reference)) / len(found)
        if any(ents for _, ents in self.reference) or any(ents for _, ents in found):
            result["ents_f"] = _f_score([s[1] for s in found], [t[1] for t in self.reference])
        return result


def _f_score(predicted: List[set], reference: List[set]) -> float:
    tp = sum(len(p & r) for p, r in zip(predicted, reference))
    n_pred, n_ref = sum(map(len, predicted)), sum(map(len, reference))
    return 2 * tp / (n_pred + n_ref) if n_pred + n_ref else 1.0
