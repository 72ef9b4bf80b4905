"""BERT's pooler: dense + tanh over the [CLS] state, the head BertModel itself holds.

A module of its own because BertModel owns one (its tensors are `pooler.dense.*` in every
BERT checkpoint) while heads.py, where the other heads live, builds on BertModel:
encoder.py imports this module, heads.py imports encoder.py and re-exports BertPooler.
"""
import torch
from torch import Tensor, nn

from .config import BertConfig


class BertPooler(nn.Module):
    """dense + tanh over the [CLS] state: BERT's sentence representation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, cls_hidden: Tensor) -> Tensor:
        """cls_hidden (Tensor[..., hidden]) -> Tensor[..., hidden]"""
        return torch.tanh(self.dense(cls_hidden))
