"""The torch heads, each written once: pooler, classifier and tagger, masked-LM, next-sentence.

Logits only; the losses live with the training loop. The pooler is BertModel's own
(pooler.py, re-exported here). `ClassificationHead` is the classifier of
BertForSequenceClassification (on the pooled [CLS]) and the tagger of
BertForTokenClassification (on every piece), and the next-sentence head of pretraining
(on the pooled [CLS], two classes). The models that put heads on the encoder are here too:
`BertForPreTraining` (MLM + NSP; names follow HF's cls.predictions.*, cls.seq_relationship.*
through checkpoint/hf.py) and `BertClassifier` (what export-hf's model.onnx computes).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .encoder import BertModel
from .layer import activation
from .pooler import BertPooler

__all__ = ["BertClassifier", "BertForPreTraining", "BertPooler", "ClassificationHead", "MaskedLMHead"]


class ClassificationHead(nn.Linear):
    """Dropout, then a linear layer: weight [n_labels, hidden] and bias [n_labels], as
    nn.Linear's (and, held as `classifier`, HF's classifier.weight / classifier.bias)."""

    def __init__(self, hidden_size: int, n_labels: int, dropout: float = 0.0) -> None:
        super().__init__(hidden_size, n_labels)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    @classmethod
    def from_weights(cls, weight: Tensor, bias: Tensor, dropout: float = 0.0) -> "ClassificationHead":
        """A head holding a copy of weight (Tensor[n_labels, hidden]) and bias (Tensor[n_labels]), as float32."""
        head = cls(weight.shape[1], weight.shape[0], dropout)
        with torch.no_grad():
            head.weight.copy_(weight.float())
            head.bias.copy_(bias.float())
        return head

    def forward(self, states: Tensor) -> Tensor:
        """states (Tensor[..., hidden]) -> logits (Tensor[..., n_labels])"""
        return super().forward(self.dropout(states))


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
        self.nsp = ClassificationHead(config.hidden_size, 2)
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


class BertClassifier(nn.Module):
    """BertModel + a ClassificationHead over the pooled [CLS] (sequence) or every piece
    (token): HF's BertForSequenceClassification / BertForTokenClassification."""

    def __init__(self, bert: BertModel, classifier: ClassificationHead, token_level: bool) -> None:
        super().__init__()
        self.bert = bert
        self.classifier = classifier
        self.token_level = token_level

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        """input_ids, attention_mask, token_type_ids (Tensor[batch, seq], long) ->
        logits (Tensor[batch, seq, n_labels] per token, or Tensor[batch, n_labels])"""
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(hidden if self.token_level else self.bert.pool(hidden))
