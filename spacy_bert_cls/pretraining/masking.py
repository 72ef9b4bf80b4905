"""Dynamic masking for the masked-LM objective (pure and seeded).

Each call draws new masks (dynamic masking, as RoBERTa and HF's data collators):
every maskable piece is selected with probability `rate` (or, with whole-word masking,
every word, all its pieces together); a selected piece becomes [MASK] 80% of the
time, a random non-special piece 10%, and stays itself 10%. Special tokens and
padding are never selected.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Masked:
    input_ids: Tensor  # [batch, seq]: the ids with the masks applied
    positions: Tensor  # [n_masked, 2]: (row, column) of every selected piece
    labels: Tensor  # [n_masked]: the original id of every selected piece


def mask_pieces(
    input_ids: Tensor,
    maskable: Tensor,
    *,
    mask_id: int,
    random_ids: Tensor,
    generator: torch.Generator,
    rate: float = 0.15,
    continuation: Optional[Tensor] = None,
) -> Masked:
    """Select and corrupt pieces for the MLM objective.

    input_ids (Tensor[batch, seq], long): piece ids.
    maskable (Tensor[batch, seq], bool): False at special tokens and padding.
    mask_id (int): the [MASK] id.
    random_ids (Tensor[n], long): the ids a piece may be replaced by (no specials).
    generator (torch.Generator): the randomness; seed it for reproducible masks.
    rate (float): the share of pieces (or words) selected.
    continuation (Tensor[batch, seq], bool): True where a piece continues the word
        before it ("##..."): whole-word masking selects words, not pieces. None: pieces.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"mask rate must be in (0, 1), got {rate}")
    draws = torch.rand(input_ids.shape, generator=generator)
    if continuation is None:
        selected = (draws < rate) & maskable
    else:
        # A word is selected by the draw of its first piece; its other pieces follow.
        starts = maskable & ~continuation
        word_index = torch.cumsum(starts.long(), dim=1)  # id of the word each piece belongs to
        start_draw = torch.where(starts, draws, torch.ones_like(draws))
        chosen_words = torch.zeros(input_ids.shape[0], input_ids.shape[1] + 1, dtype=torch.bool)
        rows = torch.arange(input_ids.shape[0])[:, None].expand_as(word_index)
        chosen_words[rows[starts], word_index[starts]] = start_draw[starts] < rate
        selected = chosen_words.gather(1, word_index) & maskable & (word_index > 0)
    positions = selected.nonzero()
    labels = input_ids[selected]
    corrupted = input_ids.clone()
    how = torch.rand(labels.shape, generator=generator)
    replace = torch.randint(len(random_ids), labels.shape, generator=generator)
    new_ids = torch.where(how < 0.8, torch.full_like(labels, mask_id),
                          torch.where(how < 0.9, random_ids[replace], labels))
    corrupted[selected] = new_ids
    return Masked(corrupted, positions, labels)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, step, rank): masks are the same after a resume."""
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + step) * 101 + rank)
    return generator
