"""Run the encoder over buckets of windows and combine them into doc pieces (plain torch)."""
import functools
import logging
import threading
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .encoder import BertModel
from .quantized import BF16_EMULATED, DTYPES, INT8_UNCALIBRATED, bf16_native, fast_fp32_bert, int8_supported, quantize_bert

logger = logging.getLogger("spacy_bert_cls")
INT8_TRAINED = ("training an encoder set to int8 inference: its fp32 weights are trained, but it predicts (dev "
                "scores too) in int8 with a calibration measured on the weights it had before: quantize the "
                "trained pipeline again (spacy-bert-cls quantize), or train from the fp32 one (--dtype float32)")


def _chunks(buckets: List[Tuple[Tensor, Optional[Tensor]]], limit: int):
    """Consecutive buckets with at most `limit` (padded) pieces together; a bigger bucket alone."""
    chunk, size = [], 0
    for bucket in buckets:
        n = bucket[0].numel()
        if chunk and size + n > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(bucket)
        size += n
    if chunk:
        yield chunk


@functools.cache
def _warn_once(message: str) -> None:
    """Log `message` the first time only (per process: it is about this machine's CPU)."""
    logger.warning(message)


class WindowedBert(nn.Module):
    """BertModel over padded buckets of windows, outputs gathered into doc order.

    The window bookkeeping is planned outside (windows.py); this module only does
    the differentiable part: encode, gather (and average overlaps), pool [CLS].
    """

    def __init__(self, bert: BertModel, mixed_precision: bool = False, inference_dtype: str = "float32",
                 max_batch_pieces: int = 8192) -> None:
        super().__init__()
        self.bert = bert
        # Most pieces (padded) run through the encoder at once.
        self.max_batch_pieces = max_batch_pieces
        # Autocast on the device the weights are on: fp16 on CUDA (thinc's shim adds
        # the gradient scaler there), bf16 on CPU, which needs no scaler.
        self.mixed_precision = mixed_precision
        self.inference_dtype = inference_dtype
        # int8 calibration (see quantized.calibrate_int8): {"alpha", "fp32_layers"} here and
        # the activation ranges as buffers of `calibration`, so they are saved with the weights.
        self.int8_settings: Dict = {}
        self.calibration = nn.Module()
        # The module inference runs (int8 or oneDNN layers), derived from `bert` and rebuilt
        # when its weights change: (fingerprint of bert's weights, settings, module).
        self._derived: Optional[Tuple[tuple, tuple, nn.Module]] = None
        self._derive_lock = threading.Lock()

    def __getstate__(self):
        # Copies and pickles take the weights and settings, not the derived module or lock.
        state = dict(self.__dict__)
        state["_derived"] = None
        del state["_derive_lock"]
        return state

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self._derive_lock = threading.Lock()

    @property
    def inference_dtype(self) -> str:
        return self._inference_dtype

    @inference_dtype.setter
    def inference_dtype(self, value: str) -> None:
        if value not in DTYPES:
            raise ValueError(f"inference dtype must be one of {DTYPES}, got {value!r}")
        self._inference_dtype = value
        self._derived = None

    def set_int8_calibration(self, alpha: float, fp32_layers: List[str], ranges: Dict[str, Tensor]) -> None:
        """Keep a calibration (quantized.calibrate_int8's result) with the encoder."""
        self.int8_settings = {"alpha": float(alpha), "fp32_layers": list(fp32_layers)}
        self.calibration = nn.Module()
        for name, amax in ranges.items():
            self.calibration.register_buffer(name.replace(".", "__"), amax.detach().float().clone())
        self._derived = None

    def clear_int8_calibration(self) -> None:
        self.int8_settings = {}
        self.calibration = nn.Module()
        self._derived = None

    def weights_changed(self) -> None:
        """Drop the derived inference module: the weights were changed in a way that
        their (data_ptr, version) fingerprint does not show (thinc's optimizer)."""
        self._derived = None

    def int8_ranges(self) -> Dict[str, Tensor]:
        return {name.replace("__", "."): amax for name, amax in self.calibration.named_buffers()}

    def inference_bert(self) -> nn.Module:
        """The module that predicts: `bert` itself, or its int8 / oneDNN derivative."""
        device = next(self.bert.parameters()).device
        dtype = self.inference_dtype
        if device.type != "cpu" or dtype == "bfloat16":
            if dtype == "bfloat16" and device.type == "cpu" and not bf16_native():
                _warn_once(BF16_EMULATED)
            return self.bert  # bf16 is autocast; int8 and oneDNN layers are CPU paths
        fingerprint = tuple((p.data_ptr(), p._version) for p in self.bert.parameters())
        settings = (dtype, repr(self.int8_settings), tuple(b.data_ptr() for b in self.calibration.buffers()))
        derived = self._derived
        if derived is not None and derived[0] == fingerprint and derived[1] == settings:
            return derived[2]
        with self._derive_lock:
            if dtype == "int8" and int8_supported():
                ranges = self.int8_ranges() or None
                if ranges is None:
                    logger.warning(INT8_UNCALIBRATED)
                # 0.8: the alpha of calibrations saved before it was recorded (the default since is 0.5)
                module = quantize_bert(self.bert, ranges, alpha=self.int8_settings.get("alpha", 0.8),
                                       fp32_layers=self.int8_settings.get("fp32_layers", ()))
            else:
                if dtype == "int8":
                    logger.warning("this torch build has no int8 engine: the encoder runs in fp32")
                module = fast_fp32_bert(self.bert) or self.bert
            self._derived = (fingerprint, settings, module)
        return module

    def _precision(self, device_type: str) -> Tuple[nn.Module, bool, torch.dtype]:
        """(the module that runs, autocast or not, autocast's dtype) for this call."""
        low = torch.bfloat16 if device_type == "cpu" else torch.float16
        if self.training or torch.is_grad_enabled():
            if self.inference_dtype == "int8" and self.training and not getattr(self, "_warned_training", False):
                self._warned_training = True
                logger.warning(INT8_TRAINED)
            return self.bert, self.mixed_precision, low
        # Prediction: the inference dtype's path. The int8 and oneDNN copies are CPU paths
        # with their own precision: mixed_precision's autocast would hand their layers bf16
        # activations (int8 then failed on the dtypes).
        bert = self.inference_bert()
        if self.inference_dtype == "bfloat16":
            return bert, True, torch.bfloat16
        return bert, self.mixed_precision and bert is self.bert, low

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
        bert, autocast, low = self._precision(device_type)
        # Training: the piece embeddings' gradient as the rows looked up (a few thousand of
        # 30,522), not a fresh zeroed [vocab, hidden] matrix a step (BertShim steps it on a
        # buffer it keeps); not under fp16 on CUDA, whose gradient scaler (thinc's) unscales
        # dense tensors only.
        sparse_grad = torch.is_grad_enabled() and self.training and not (autocast and device_type == "cuda")
        with torch.autocast(device_type, dtype=low, enabled=autocast):
            # The real pieces only (packing.py), in chunks of at most max_batch_pieces.
            states, maps, offset = [], [], 0
            for chunk in _chunks(buckets, self.max_batch_pieces):
                hidden, layout = bert.forward_packed(chunk, sparse_grad=sparse_grad)
                rows = layout.padded_to_packed
                maps.append(torch.where(rows >= 0, rows + offset, rows))
                states.append(hidden)
                offset += hidden.shape[0]
        width = self.bert.config.hidden_size
        flat = states[0] if len(states) == 1 else torch.cat(states)
        padded_to_packed = maps[0] if len(maps) == 1 else torch.cat(maps)
        # piece_rows and cls_rows count positions of the padded buckets.
        piece_rows = padded_to_packed.index_select(0, piece_rows)
        cls_rows = padded_to_packed.index_select(0, cls_rows)
        sources = flat.index_select(0, piece_rows)
        if piece_targets is None:
            pieces = sources
        else:
            pieces = flat.new_zeros((n_pieces, width)).index_add(
                0, piece_targets, sources * piece_weights[:, None].to(sources.dtype)
            )
        cls = flat.index_select(0, cls_rows)
        with torch.autocast(device_type, dtype=low, enabled=autocast):
            pooled = self.bert.pooler(cls)
        return pieces, cls, pooled
