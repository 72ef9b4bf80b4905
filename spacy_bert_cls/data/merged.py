"""`spacy-bert-cls.MergedCorpus.v1`: several data files interleaved, one example of each
in turn, optionally balanced so that every kind of example is as frequent."""
import random
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.training import Example

from .lines import PathLike
from .readers import BertClsCorpus


class MergedCorpus:
    """Examples of several files interleaved (one from each in turn), for a pipeline
    whose components learn from different data: a text classification file and an
    NER file train `bert` + `bert_textcat` + `bert_ner` together. An example keeps
    only its own file's annotation; the other's is missing, not negative.

    balance: every kind of example (text classification, NER, both) gives as many
    examples per epoch as the most common kind: a rarer kind is repeated (whole
    passes, then a random sample of it), whether the kinds come in separate files
    or merged in one. Without it, a head whose data is the smaller share trains on
    that share of every batch and gets that share of the shared encoder's updates.
    """

    def __init__(self, paths: Sequence[PathLike], limit: int = 0, balance: bool = False) -> None:
        if not paths:
            raise ValueError("MergedCorpus needs at least one path")
        self.readers = [BertClsCorpus(path) for path in paths]
        self.limit = limit
        self.balance = balance

    def __call__(self, nlp: Language) -> Iterator[Example]:
        examples = self._interleaved(nlp)
        if self.balance:
            examples = _balanced(examples)
        for count, example in enumerate(examples, 1):
            yield example
            if self.limit and count >= self.limit:
                return

    def _interleaved(self, nlp: Language) -> Iterator[Example]:
        streams = [iter(reader(nlp)) for reader in self.readers]
        while streams:
            for stream in list(streams):
                example = next(stream, None)
                if example is None:
                    streams.remove(stream)
                    continue
                yield example


def _example_kind(example: Example) -> Tuple[bool, bool]:
    """Which heads an example trains: (text classification, NER)."""
    reference = example.reference
    return bool(reference.cats), reference.has_annotation("ENT_IOB")


def _balanced(examples: Iterable[Example]) -> Iterator[Example]:
    """The examples of every kind, the rarer kinds repeated up to the most common
    kind's count (whole passes, then a random sample; `random` is the one spaCy
    seeds), interleaved one of each kind in turn. A repeat is a copy: one Doc twice
    in a batch would confuse the listeners."""
    groups: Dict[Tuple[bool, bool], List[Example]] = {}
    for example in examples:
        groups.setdefault(_example_kind(example), []).append(example)
    if not groups:
        return
    target = max(len(group) for group in groups.values())
    filled = []
    for kind, group in groups.items():
        if not any(kind):  # trains no head: once is enough
            filled.append(group + [None] * (target - len(group)))
            continue
        passes, rest = divmod(target, len(group))
        repeats = [eg.copy() for _ in range(passes - 1) for eg in group]
        # The sample is of training data, seeded by spaCy: nothing secret (bandit B311).
        repeats += [eg.copy() for eg in random.sample(group, rest)]  # nosec B311
        filled.append(group + repeats)
    for i in range(target):
        for group in filled:
            if group[i] is not None:
                yield group[i]


def create_merged_corpus_reader_v1(
    paths: Dict[str, Optional[Path]], limit: int = 0, balance: bool = False
) -> MergedCorpus:
    """spacy-bert-cls.MergedCorpus.v1: several data files (any format of Corpus.v1), interleaved.

    paths (Dict[str, Optional[Path]]): the files by a name of your choice, in a
        section: [corpora.train.paths] textcat = ${paths.train_textcat} ... (a list of
        interpolated strings would not do: the config system joins them). A null
        entry is left out.
    limit (int): the most examples per epoch in all; 0 for no limit.
    balance (bool): as many examples of each kind (text classification, NER) per
        epoch, the rarer kind repeated, whether the kinds are in one file or two; for
        training (leave the dev corpus as it is).
    """
    return MergedCorpus([path for path in paths.values() if path is not None], limit=limit, balance=balance)
