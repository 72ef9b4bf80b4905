"""BertModel: embeddings, a stack of encoder layers and the pooler (pooler.py)."""
from functools import partial
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .config import BertConfig
from .embeddings import BertEmbeddings
from .layer import EncoderLayer
from .packing import PackedLayout, bucket_rows, pack
from .pooler import BertPooler


class BertModel(nn.Module):
    """The BERT encoder. Returns hidden states only: the other heads live in heads.py."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = BertPooler(config)
        # Prediction pads the packed rows to bucket_rows' counts (see _pads_rows): set on
        # the copies whose layers run oneDNN's kernels (quantized.py), which keep a
        # primitive per row count.
        self.row_buckets = False
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """
        input_ids (Tensor[batch, seq], long): piece ids, [CLS] first.
        attention_mask (Tensor[batch, seq], bool or 0/1): 1 for real pieces, 0 for
            padding. None: nothing is padded.
        token_type_ids (Tensor[batch, seq], long): segment ids; None: all 0.
        RETURNS (Tensor[batch, seq, hidden]): the last layer's hidden states.
            Rows at padded positions are computed but meaningless.
        """
        if input_ids.shape[-1] > self.config.max_position_embeddings:
            raise ValueError(
                f"Sequence of {input_ids.shape[-1]} pieces is longer than "
                f"max_position_embeddings ({self.config.max_position_embeddings})"
            )
        mask = None
        if attention_mask is not None:
            attention_mask = attention_mask.bool()
            if not bool(attention_mask.all()):
                # [batch, seq] -> [batch, 1, 1, seq]: the same key mask for every head and query.
                mask = attention_mask[:, None, None, :]
        hidden = self.embeddings(input_ids, token_type_ids=token_type_ids)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return hidden

    def forward_packed(self, buckets: Sequence[Tuple[Tensor, Optional[Tensor]]], *,
                       sparse_grad: bool = False) -> Tuple[Tensor, PackedLayout]:
        """The same as forward on each bucket, with no work for padding (see packing.py).

        buckets: (input_ids [n, seq] long, attention_mask [n, seq] bool or None) each.
        sparse_grad (bool): see BertEmbeddings.forward.
        RETURNS: the last layer's states of the real pieces (Tensor[n_real, hidden], in
            the buckets' order, padding left out) and their layout.
        """
        device = buckets[0][0].device if buckets else torch.device("cpu")
        length = partial(self.layers[0].attention.attention_length, device=device) if len(self.layers) else int
        input_ids, positions, layout = pack(buckets, length)
        if input_ids.shape[0] and int(positions.max()) >= self.config.max_position_embeddings:
            raise ValueError(
                f"Sequence of {int(positions.max()) + 1} pieces is longer than "
                f"max_position_embeddings ({self.config.max_position_embeddings})"
            )
        n_real = input_ids.shape[0]
        extra = bucket_rows(n_real) - n_real if self._pads_rows(device) else 0
        if extra:
            # Rows past the real ones, never attended to or read out: copies of the first
            # row (attention copies its output too), so that no statistic of the rows
            # changes, int8's per-call quantization range included.
            input_ids = torch.cat([input_ids, input_ids[:1].expand(extra)])
            positions = torch.cat([positions, positions[:1].expand(extra)])
        hidden = self.embeddings(input_ids[None], position_ids=positions[None], sparse_grad=sparse_grad)[0]
        for layer in self.layers:
            hidden = layer.forward_packed(hidden, layout)
        return (hidden[:n_real] if extra else hidden), layout  # a full slice would still be an autograd node

    def _pads_rows(self, device: torch.device) -> bool:
        """Whether this call pads its packed rows to bucket_rows' counts: prediction on a copy
        whose layers run oneDNN's kernels (row_buckets), or under the CPU's bf16 autocast,
        whose matrix products are oneDNN's too (a pipeline predicting in bf16 grew from 475
        to 1,198 MiB in 500 requests of 1 to 16 texts without it). Training does not pad:
        mixed_precision on the CPU still grows with each new batch shape (docs/benchmarks.md)."""
        if torch.is_grad_enabled():
            return False
        return self.row_buckets or (device.type == "cpu" and torch.is_autocast_enabled("cpu"))

    def pool(self, hidden: Tensor) -> Tensor:
        """hidden (Tensor[batch, seq, hidden]) -> pooled [CLS] (Tensor[batch, hidden])"""
        return self.pooler(hidden[:, 0])
