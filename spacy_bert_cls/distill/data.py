"""What a distillation run reads: raw texts, gold examples, and the batches of each step.

Raw text and the texts of annotated files: data.texts.read_texts. Batches are drawn
by step number from a seeded permutation of each epoch, so a resumed run takes the very
batches an uninterrupted one would, without replaying anything. The same holds for the
word replacements of --augment, seeded by step.
"""
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence, TypeVar

import numpy
from spacy.language import Language
from spacy.training import Example

from ..data.readers import create_corpus_reader_v1
from ..errors import DataError

T = TypeVar("T")
_SPACE = re.compile(r"(\s+)")


def read_gold(path: Path, nlp: Language) -> List[Example]:
    """The labelled examples of a .spacy, .jsonl or CoNLL file."""
    examples = list(create_corpus_reader_v1(Path(path))(nlp))
    if not examples:
        raise DataError(path, None, "no examples in the file")
    return examples


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    return -(-n_items // batch_size)


def batch_at(items: Sequence[T], batch_size: int, seed: int, index: int) -> List[T]:
    """Batch number `index` (0-based, counted over epochs) of `items` shuffled anew each
    epoch; the last batch of an epoch may be smaller."""
    per_epoch = steps_per_epoch(len(items), batch_size)
    epoch, position = divmod(index, per_epoch)
    order = numpy.random.RandomState((seed + epoch) % 2**32).permutation(len(items))
    return [items[i] for i in order[position * batch_size:(position + 1) * batch_size]]


def _shape(word: str) -> str:
    """The class a word is replaced within: its first character's case or digit-ness, or
    the character itself (so @mentions stay @mentions, #tags #tags, punctuation punctuation)."""
    first = word[0]
    return "X" if first.isupper() else "x" if first.islower() else "d" if first.isdigit() else first


class WordReplacer:
    """More varied text for the teacher to label (TinyBERT's data augmentation, with the
    data's own words in place of its language model's): in half of a batch's texts, drawn
    at random, each whitespace-separated word is replaced with probability `rate` by a word
    of the same shape (_shape) drawn uniformly from the distinct words of `texts`. Seeded by
    step, so a resumed run sees the same texts."""

    def __init__(self, texts: Sequence[str], rate: float) -> None:
        pools: Dict[str, set] = defaultdict(set)
        for text in texts:
            for word in text.split():
                pools[_shape(word)].add(word)
        self.pools = {shape: sorted(words) for shape, words in pools.items()}
        self.rate = rate

    def __call__(self, texts: Sequence[str], seed: int, step: int) -> List[str]:
        rng = numpy.random.RandomState((seed * 1_000_003 + step) % 2**32)
        out = []
        for text in texts:
            if rng.random_sample() >= 0.5:
                out.append(text)
                continue
            parts = _SPACE.split(text)  # words at even positions, the whitespace between them kept
            for i in range(0, len(parts), 2):
                if parts[i] and rng.random_sample() < self.rate:
                    pool = self.pools[_shape(parts[i])]
                    parts[i] = pool[rng.randint(len(pool))]
            out.append("".join(parts))
        return out
