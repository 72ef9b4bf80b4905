"""Pretraining sequences from raw documents: packed to the maximum length, with NSP pairs.

With NSP, a sequence is [CLS] A [SEP] B [SEP]: A is the start of a run of a document's
paragraphs, B its actual continuation (label 0) or, with probability 0.5 whenever the
shard has another document, a run from another document (label 1), as in BERT's own
data generation. Documents are read in blocks (up to 1,000 of this shard's documents);
a random B starts at a random paragraph of a random other document of the current or
the previous block (never A's own document), so the first documents of a file, a small
file and the last, short block all get random pairs. A shard needs at least two
documents for that (pretrain() checks the files first). Without NSP, pieces are packed
across paragraphs and documents ([SEP] between documents) into full sequences.
The stream is a pure function of the seed, so a resumed run can replay it exactly.
"""
import random
from array import array
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import torch

from ..tokenization import PieceTokenizer
from .data import DEFAULT_MAX_LINE_CHARS, iter_documents

IS_NEXT, RANDOM_NEXT, NO_NSP = 0, 1, -100
# Documents read at a time for NSP: random B segments come from the current and previous block.
BLOCK_DOCUMENTS = 1000
# A document as its segments (paragraphs, cut to fit a sequence), compact.
Segments = List["array[int]"]


@dataclass
class Instance:
    ids: List[int]
    type_ids: List[int]
    nsp_label: int


@dataclass
class Batch:
    input_ids: torch.Tensor  # [batch, seq]
    attention_mask: torch.Tensor  # [batch, seq] bool
    token_type_ids: torch.Tensor  # [batch, seq]
    maskable: torch.Tensor  # [batch, seq] bool: not special, not padding
    continuation: torch.Tensor  # [batch, seq] bool: a "##" piece
    nsp_labels: torch.Tensor  # [batch]: IS_NEXT, RANDOM_NEXT or NO_NSP

    @property
    def n_pieces(self) -> int:
        return int(self.attention_mask.sum())


class InstanceStream:
    """Endless, deterministic stream of instances from a raw text file (epoch after epoch).

    rank, world_size: this process's shard: documents i with i % world_size == rank.
    block_documents: documents held at a time for NSP's random B segments (two blocks).
    """

    def __init__(self, path: Path, tokenizer: PieceTokenizer, *, max_length: int, nsp: bool, seed: int,
                 short_seq_probability: float = 0.1, rank: int = 0, world_size: int = 1,
                 max_line_chars: int = DEFAULT_MAX_LINE_CHARS, epochs: Optional[int] = None,
                 block_documents: int = BLOCK_DOCUMENTS) -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        if block_documents < 1:
            raise ValueError(f"block_documents must be at least 1, got {block_documents}")
        self.block_documents = block_documents
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.nsp = nsp
        self.seed = seed
        self.short_seq_probability = short_seq_probability
        self.rank = rank
        self.world_size = world_size
        self.max_line_chars = max_line_chars
        self.epochs = epochs
        self.epoch = 0

    def documents(self) -> Iterator[List[List[int]]]:
        """This shard's documents, each a list of paragraphs' piece ids."""
        docs = (paragraphs for i, (_, paragraphs) in enumerate(iter_documents(self.path, self.max_line_chars))
                if i % self.world_size == self.rank)
        while True:
            group = list(islice(docs, 64))
            if not group:
                return
            flat = [p for doc in group for p in doc]
            encoded = iter(self.tokenizer.encode_batch(flat))
            for doc in group:
                yield [next(encoded)[0].tolist() for _ in doc]

    def blocks(self) -> Iterator[List[Segments]]:
        """This shard's non-empty documents as segments, `block_documents` at a time."""
        limit = self.max_length - 3
        block: List[Segments] = []
        for doc in self.documents():
            # Paragraphs longer than a sequence are cut into sequence-sized parts.
            segments = [array("i", p[i:i + limit]) for p in doc for i in range(0, len(p), limit)]
            if not segments:
                continue
            block.append(segments)
            if len(block) == self.block_documents:
                yield block
                block = []
        if block:
            yield block

    def __iter__(self) -> Iterator[Instance]:
        # A seeded generator for sampling data, not for security.
        rng = random.Random(f"{self.seed}-{self.rank}")  # nosec B311
        self.epoch = 0
        while self.epochs is None or self.epoch < self.epochs:
            produced = False
            if self.nsp:
                previous: List[Segments] = []
                for block in self.blocks():
                    # Random B from this block or the previous one: a short last block
                    # (even a single document) still has other documents to pair with.
                    pool = previous + block
                    for index in range(len(previous), len(pool)):
                        for instance in self._nsp_instances(pool, index, rng):
                            produced = True
                            yield instance
                    previous = block
            else:
                carry: List[int] = []
                for doc in self.documents():
                    doc = [p for p in doc if p]
                    if not doc:
                        continue
                    carry.extend([i for p in doc for i in p] + [self.tokenizer.sep_id])
                    while len(carry) >= self.max_length - 2:
                        produced = True
                        yield self._single(carry[: self.max_length - 2])
                        carry = carry[self.max_length - 2:]
                if carry:
                    produced = True
                    yield self._single(carry)
            if not produced:
                raise ValueError(f"{self.path}: no pretraining sequence could be made from this shard "
                                 f"(rank {self.rank} of {self.world_size})")
            self.epoch += 1

    def _single(self, pieces: List[int]) -> Instance:
        ids = [self.tokenizer.cls_id] + pieces + [self.tokenizer.sep_id]
        return Instance(ids, [0] * len(ids), NO_NSP)

    def _target(self, rng: random.Random) -> int:
        limit = self.max_length - 3
        return limit if rng.random() >= self.short_seq_probability else rng.randint(2, limit)

    def _nsp_instances(self, pool: List[Segments], index: int, rng: random.Random) -> Iterator[Instance]:
        """The pairs whose A comes from pool[index]."""
        segments = pool[index]
        target = self._target(rng)
        chunk: Segments = []
        length = 0
        for i, segment in enumerate(segments):
            chunk.append(segment)
            length += len(segment)
            if i == len(segments) - 1 or length >= target:
                pair = self._pair(chunk, target, pool, index, rng)
                if pair is not None:
                    yield pair
                chunk, length = [], 0
                target = self._target(rng)

    def _pair(self, chunk: Segments, target: int, pool: List[Segments], index: int,
              rng: random.Random) -> Optional[Instance]:
        if len(chunk) == 1:
            only = chunk[0]
            if len(only) < 2:
                return None
            cut = rng.randint(1, len(only) - 1)
            parts = [only[:cut], only[cut:]]
        else:
            parts = chunk
        a_end = rng.randint(1, len(parts) - 1)
        a = [i for p in parts[:a_end] for i in p]
        if len(pool) > 1 and rng.random() < 0.5:
            label = RANDOM_NEXT
            other = rng.randrange(len(pool) - 1)
            other = other + 1 if other >= index else other  # any document but A's own
            segments = pool[other]
            b: List[int] = []
            for segment in segments[rng.randrange(len(segments)):]:
                b.extend(segment)
                if len(a) + len(b) >= target:
                    break
        else:
            label = IS_NEXT
            b = [i for p in parts[a_end:] for i in p]
        a, b = _truncate_pair(a, b, target, rng)
        if not a or not b:
            return None
        tok = self.tokenizer
        ids = [tok.cls_id] + a + [tok.sep_id] + b + [tok.sep_id]
        type_ids = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        return Instance(ids, type_ids, label)


def _truncate_pair(a: List[int], b: List[int], limit: int, rng: random.Random):
    """Trim the longer side, from its front or back at random, until both fit (as BERT)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > limit:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
    return a, b


def continuation_table(tokenizer: PieceTokenizer) -> torch.Tensor:
    """True for every id whose piece continues a word ("##..."): for whole-word masking."""
    table = torch.zeros(max(tokenizer.vocab_size, 1), dtype=torch.bool)
    for piece, index in tokenizer.tokenizer.get_vocab(with_added_tokens=True).items():
        if piece.startswith("##") and index < len(table):
            table[index] = True
    return table


def special_ids(tokenizer: PieceTokenizer) -> List[int]:
    return sorted({tokenizer.tokenizer.token_to_id(t) for t in tokenizer.specials.values()} - {None})


def collate(instances: Sequence[Instance], pad_id: int, specials: Sequence[int], continuation: torch.Tensor) -> Batch:
    length = max(len(x.ids) for x in instances)
    ids = torch.full((len(instances), length), pad_id, dtype=torch.long)
    types = torch.zeros((len(instances), length), dtype=torch.long)
    mask = torch.zeros((len(instances), length), dtype=torch.bool)
    for row, x in enumerate(instances):
        ids[row, : len(x.ids)] = torch.tensor(x.ids)
        types[row, : len(x.ids)] = torch.tensor(x.type_ids)
        mask[row, : len(x.ids)] = True
    maskable = mask & ~torch.isin(ids, torch.tensor(list(specials), dtype=torch.long))
    return Batch(ids, mask, types, maskable, continuation[ids] & mask,
                 torch.tensor([x.nsp_label for x in instances], dtype=torch.long))


def iter_batches(stream: InstanceStream, batch_size: int, pad_id: int, specials: Sequence[int],
                 continuation: torch.Tensor) -> Iterator[Batch]:
    instances = iter(stream)
    while True:
        group = list(islice(instances, batch_size))
        if not group:
            return
        yield collate(group, pad_id, specials, continuation)
