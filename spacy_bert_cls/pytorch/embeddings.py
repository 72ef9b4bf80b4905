"""Piece + position + segment embeddings, as in BERT."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .dropout import Dropout


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.piece_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, *, token_type_ids: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None, sparse_grad: bool = False) -> Tensor:
        """
        input_ids (Tensor[batch, seq], long): piece ids.
        token_type_ids (Tensor[batch, seq], long): segment ids, 0 when None.
        position_ids (Tensor[batch, seq], long): 0, 1, ... per row when None; given only
            for packed rows (BertModel.forward_packed), where each window restarts at 0.
        Both are keyword-only: each caller passes one of the two.
        sparse_grad (bool): the piece embeddings' gradient as a sparse tensor of the rows
            looked up, not a dense [vocab, hidden] one (for a caller that lays it out on a
            buffer of its own: models/encoder.py's BertShim).
        RETURNS (Tensor[batch, seq, hidden]): the summed, normalised embeddings.
        """
        seq_len = input_ids.shape[-1]
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=input_ids.device)
        pieces = self.piece_embeddings
        embeddings = F.embedding(input_ids, pieces.weight, pieces.padding_idx, sparse=sparse_grad)
        embeddings = embeddings + self.position_embeddings(position_ids)
        if token_type_ids is None:
            # Segment 0 for every piece: add its row once instead of looking it up per piece.
            embeddings = embeddings + self.type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(embeddings))
