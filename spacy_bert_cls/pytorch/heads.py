"""Pretraining heads: masked-LM (decoder tied to the piece embeddings) and next-sentence.

Logits only; the losses live with the training loop. Names follow HF's
BertForPreTraining (cls.predictions.*, cls.seq_relationship.*) through checkpoint/hf.py.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .encoder import BertModel
from .layer import activation


class MaskedLMHead(nn.Module):
    """dense + activation + LayerNorm, then the tied decoder (the embedding matrix) + a bias."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = activation(config.hidden_act)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, decoder_weight: Tensor) -> Tensor:
        """hidden (Tensor[..., hidden]), decoder_weight (Tensor[vocab, hidden]) -> Tensor[..., vocab]"""
        return F.linear(self.layer_norm(self.activation(self.dense(hidden))), decoder_weight, self.bias)


class BertForPreTraining(nn.Module):
    """BertModel with the MLM and NSP heads, as HF's BertForPreTraining."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config)
        self.mlm = MaskedLMHead(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        for module in (self.mlm, self.nsp):
            module.apply(self.bert._init_weights)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
        masked_positions: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        """
        input_ids, attention_mask, token_type_ids (Tensor[batch, seq]): as BertModel.
        masked_positions (Tensor[n_masked, 2], long): (row, column) of the pieces whose
            MLM logits are wanted; None: every position. Computing the vocabulary-wide
            logits only where a piece is masked saves most of the head's cost.
        RETURNS: MLM logits (Tensor[n_masked, vocab], or [batch, seq, vocab] for None)
            and NSP logits (Tensor[batch, 2]).
        """
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        selected = hidden if masked_positions is None else hidden[masked_positions[:, 0], masked_positions[:, 1]]
        mlm_logits = self.mlm(selected, self.bert.embeddings.piece_embeddings.weight)
        nsp_logits = self.nsp(self.bert.pool(hidden))
        return mlm_logits, nsp_logits
