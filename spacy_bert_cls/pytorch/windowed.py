"""Run the encoder over buckets of windows and combine them into doc pieces (plain torch)."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .encoder import BertModel


class WindowedBert(nn.Module):
    """BertModel over padded buckets of windows, outputs gathered into doc order.

    The window bookkeeping is planned outside (windows.py); this module only does
    the differentiable part: encode, gather (and average overlaps), pool [CLS].
    """

    def __init__(self, bert: BertModel, mixed_precision: bool = False) -> None:
        super().__init__()
        self.bert = bert
        # Autocast on the device the weights are on: fp16 on CUDA (thinc's shim adds
        # the gradient scaler there), bf16 on CPU, which needs no scaler.
        self.mixed_precision = mixed_precision

    def forward(
        self,
        buckets: List[Tuple[Tensor, Optional[Tensor]]],
        piece_rows: Tensor,
        piece_targets: Optional[Tensor],
        piece_weights: Optional[Tensor],
        n_pieces: int,
        cls_rows: Tensor,
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """
        buckets (List[(Tensor[n, seq] long, Tensor[n, seq] bool or None)]): windows.
        piece_rows (Tensor[n_sources], long): flat output row of each piece source.
        piece_targets (Tensor[n_sources], long): doc-piece row of each source; None
            when every piece has exactly one source, in order.
        piece_weights (Tensor[n_sources], float): weight of each source (with targets).
        n_pieces (int): rows of the combined output.
        cls_rows (Tensor[n_windows], long): flat output row of each window's [CLS].
        RETURNS (Tensor[n_pieces, hidden], Tensor[n_windows, hidden] x 2): the
            combined piece states, the [CLS] states and the pooler over them.
        """
        device_type = piece_rows.device.type
        low = torch.bfloat16 if device_type == "cpu" else torch.float16
        with torch.autocast(device_type, dtype=low, enabled=self.mixed_precision):
            outputs = [self.bert(ids, mask) for ids, mask in buckets]
        width = self.bert.config.hidden_size
        flat = outputs[0].reshape(-1, width) if len(outputs) == 1 else torch.cat(
            [out.reshape(-1, width) for out in outputs]
        )
        sources = flat.index_select(0, piece_rows)
        if piece_targets is None:
            pieces = sources
        else:
            pieces = flat.new_zeros((n_pieces, width)).index_add(
                0, piece_targets, sources * piece_weights[:, None].to(sources.dtype)
            )
        cls = flat.index_select(0, cls_rows)
        with torch.autocast(device_type, dtype=low, enabled=self.mixed_precision):
            pooled = self.bert.pooler(cls)
        return pieces, cls, pooled
