"""Lower-precision inference for the encoder: int8 linear layers, and the fp32 matmul backend.

int8, what keeps the accuracy on BERT (all-MiniLM-L6-v2, mean cosine of the token states to
fp32 on rotten_tomatoes: torch's quantize_dynamic as shipped 0.921; per-channel weights 0.962;
8-bit activations 0.989; SmoothQuant 0.987 on held-out text; per-token activations 0.9976,
at SmoothQuant's alpha 0.5, with no layer left in fp32; docs/benchmarks.md):

- weights: symmetric per output channel, in 7 bits (see Int8Linear);
- activations: dynamically per row (per token, 8 bits; Int8Linear.forward) by the dynamic
  linear of fbgemm (torch's default on x86) or oneDNN (AMX), whichever is faster for the
  shape on this CPU (int8_engine). Per row, a text's result does not depend on its batch,
  and the engines agree to 2e-6: per tensor (torch's and ONNX Runtime's way) a text's
  entities changed with its batch and with the engine a process had timed as faster;
- SmoothQuant (Xiao et al. 2023): activation outliers sit in a few input channels, so each
  input channel j is divided by s_j = amax(x_j)^alpha / amax(W_:,j)^(1-alpha) and the
  weight's column multiplied by it: the product is unchanged, the activations are easier to
  quantize. The division is folded into what computes each input: the LayerNorm before
  qkv and intermediate (BERT is post-norm, so the residual sum multiplies the LayerNorm's
  output back), the value rows for the attention output, and for the feed-forward output a
  division written over GELU's output (smoothing.py);
- the layers whose quantization costs most (measured one at a time on calibration text)
  stay in fp32, until the mean cosine reaches 0.993 (accuracy and speed against fp32:
  `python -m benchmarks.speed_cpu`, its --accuracy table; docs/benchmarks.md).

Nothing here is stored in a quantized format: a pipeline keeps its fp32 weights and the
calibration (per-channel activation ranges, alpha, the fp32 layers), and the int8 layers are
derived from them when the pipeline is loaded or its weights change. Deriving them is
deterministic and takes milliseconds, and saved pipelines stay plain safetensors.
"""
import copy
import logging
import threading
import time
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoder import BertModel
from .smoothing import fold_smoothing, smoothing_scales

logger = logging.getLogger("spacy_bert_cls")

DTYPES = ("float32", "bfloat16", "int8")
Batch = Tuple[Tensor, Optional[Tensor]]  # (input_ids [batch, seq], attention_mask [batch, seq] or None)


def quantizable_layers(bert: BertModel) -> List[str]:
    """Names of the encoder's linear layers (the pooler excluded: it runs once per window)."""
    return [name for name, module in bert.named_modules()
            if isinstance(module, nn.Linear) and not name.startswith("pooler")]


def int8_supported() -> bool:
    """Whether this torch has a quantized engine with a dynamic int8 linear on the CPU."""
    return any(e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "onednn", "qnnpack"))


BF16_EMULATED = ("this CPU has no native bf16 (avx512_bf16/AMX): bf16 inference is emulated and slower "
                 "than fp32 here; int8 is the faster choice on this CPU")
INT8_UNCALIBRATED = ("int8 inference without calibration: weights per channel, no smoothing, and no "
                     "measure of how far its token states are from fp32. Calibrate on training text for "
                     "better accuracy: spacy-bert-cls quantize PIPELINE OUTPUT --data TRAIN_FILE")


def bf16_native() -> bool:
    """Whether the CPU multiplies bf16 natively (avx512_bf16 / AMX / ARM bf16): without it
    torch emulates bf16 and it is several times slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (per output channel) and x quantized per call.

    linear (nn.Linear): the fp32 layer (its weights are copied, not kept).
    smooth (Tensor[in_features] or None): SmoothQuant's per-input-channel scales s, which
        multiply the weights' columns: the input must arrive divided by s (quantize_bert
        folds that division into what computes it).
    """

    def __init__(self, linear: nn.Linear, smooth: Optional[Tensor] = None) -> None:
        super().__init__()
        engine = int8_engine(linear)
        weight = linear.weight.detach().float()
        if smooth is not None:
            weight = weight * smooth[None, :]
        self.bias = linear.bias.detach().float() if linear.bias is not None else None
        self._packed = _packed_weight(weight, None, engine)
        self.engine = engine
        self.out_features = weight.shape[0]
        # The last row of every call: the range [-1, 1] whatever the rows are (see forward).
        self._extremes = torch.cat([torch.tensor([-1.0, 1.0]), torch.zeros(weight.shape[1] - 2)])

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor[..., in], divided by `smooth`) -> Tensor[..., out], fp32. The engine
        quantizes its input per tensor, from its range (all 8 bits: reduce_range=False).
        Each row divided by its largest |x|, and a row of -1 and 1 added, every call's range
        is [-1, 1]: each row has its own scale, the same in any batch; its output is
        multiplied back and the bias added after."""
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        amax = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_()).clamp_(min=1e-12)
        scaled = rows.new_empty((rows.shape[0] + 1, shape[-1]))
        torch.div(rows, amax, out=scaled[:-1])
        scaled[-1] = self._extremes
        y = torch.ops.quantized.linear_dynamic(scaled, self._packed, False)[:-1]
        y = y.mul_(amax) if self.bias is None else torch.addcmul(self.bias, y, amax, out=y)
        return y.reshape(*shape[:-1], self.out_features)


class OneDNNLinear(nn.Module):
    """An fp32 linear layer on oneDNN with its weight packed once in oneDNN's layout.

    Where MKL's runtime dispatch takes a slower path than the CPU has (AVX2 on AMD CPUs
    with AVX-512), oneDNN's own dispatch finds the faster one.
    """

    def __init__(self, linear: nn.Linear, batch_rows: int) -> None:
        super().__init__()
        self.weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().float(), batch_rows)
        self.bias = linear.bias.detach().float() if linear.bias is not None else None
        self.out_features = linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, shape[-1]).contiguous(), self.weight, self.bias,
                                               "none", [], "")
        return y.reshape(*shape[:-1], self.out_features)


def _shallow_copy(bert: BertModel) -> BertModel:
    """A copy of the module tree in eval mode that shares every tensor with `bert` (so the
    embeddings are not duplicated); its layers can then be replaced (quantize_bert's replaced
    LayerNorms and value-divided qkv are copies)."""
    memo = {id(t): t for t in list(bert.parameters()) + list(bert.buffers())}
    return copy.deepcopy(bert, memo).eval()


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def activation_ranges(bert: BertModel, batches: Iterable[Batch]) -> Dict[str, Tensor]:
    """The largest |x| of every input channel of every linear layer over `batches` (real
    pieces only, padding excluded). RETURNS {layer name: Tensor[in_features]}."""
    ranges: Dict[str, Tensor] = {}
    current_mask: List[Optional[Tensor]] = [None]

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0]
            mask = current_mask[0]
            rows = x[mask] if mask is not None else x.reshape(-1, x.shape[-1])
            if rows.shape[0]:
                amax = rows.abs().amax(dim=0).float()
                ranges[name] = torch.maximum(ranges[name], amax) if name in ranges else amax
        return record

    handles = [bert.get_submodule(name).register_forward_hook(hook(name)) for name in quantizable_layers(bert)]
    was_training = bert.training
    bert.eval()
    try:
        for input_ids, mask in batches:
            current_mask[0] = mask.bool() if mask is not None else None
            bert(input_ids, mask)
    finally:
        for handle in handles:
            handle.remove()
        bert.train(was_training)
    return ranges


def quantize_bert(bert: BertModel, ranges: Optional[Dict[str, Tensor]], *, alpha: float = 0.5,
                  fp32_layers: Sequence[str] = ()) -> BertModel:
    """A copy of `bert` for inference with its linear layers in int8.

    ranges: activation_ranges() of calibration text; None: no smoothing (weights per
        channel, activations dynamic: what can be done without data).
    alpha (float): SmoothQuant's migration strength (0: none, 1: all into the weights).
    fp32_layers: layers left in fp32.
    """
    quantized = _shallow_copy(bert)
    scales = {name: smoothing_scales(bert.get_submodule(name), ranges[name], alpha)
              for name in quantizable_layers(bert) if ranges and name in ranges and name not in fp32_layers}
    linears = {name: bert.get_submodule(name) for name in quantizable_layers(bert)}
    fold_smoothing(quantized, linears, scales)
    for name, linear in linears.items():
        if name not in fp32_layers:
            _replace(quantized, name, Int8Linear(linear, scales.get(name)))
        elif linear is not bert.get_submodule(name):  # an fp32 qkv with its value rows divided
            _replace(quantized, name, linear)
    quantized.row_buckets = any(isinstance(m, Int8Linear) and m.engine == "onednn" for m in quantized.modules())
    return quantized.eval()


@torch.no_grad()
def fidelity(reference: BertModel, candidate: BertModel, batches: Sequence[Batch]) -> Dict[str, float]:
    """Cosine of `candidate`'s last hidden states to `reference`'s, over real pieces."""
    cosines = []
    for input_ids, mask in batches:
        a, b = reference(input_ids, mask), candidate(input_ids, mask)
        keep = mask.bool() if mask is not None else torch.ones(a.shape[:2], dtype=torch.bool)
        cosines.append(F.cosine_similarity(a[keep], b[keep], dim=-1))
    every = torch.cat(cosines) if cosines else torch.ones(1)
    return {"mean_cosine": float(every.mean()), "min_cosine": float(every.min())}


@torch.no_grad()
def calibrate_int8(bert: BertModel, batches: Sequence[Batch], *, alpha: float = 0.5, target_cosine: float = 0.993,
                   max_fp32_fraction: float = 0.25) -> Dict:
    """Calibrate int8 inference on `batches` (training text): activation ranges for the
    smoothing, then the most sensitive layers left in fp32, one at a time (most costly first,
    each measured alone) until the mean token cosine to fp32 reaches `target_cosine` or
    `max_fp32_fraction` of the layers are fp32.

    RETURNS: {"alpha", "ranges", "fp32_layers", "mean_cosine", "min_cosine"}.
    """
    bert = bert.eval()
    ranges = activation_ranges(bert, batches)
    layers = quantizable_layers(bert)
    full = fidelity(bert, quantize_bert(bert, ranges, alpha=alpha), batches)
    fp32_layers: List[str] = []
    if full["mean_cosine"] < target_cosine:
        # Each layer's own cost: quantize it alone (on a part of the batches: a ranking).
        sample = batches[: max(2, len(batches) // 4)]
        cost = {}
        for name in layers:
            alone = quantize_bert(bert, ranges, alpha=alpha, fp32_layers=[n for n in layers if n != name])
            cost[name] = 1.0 - fidelity(bert, alone, sample)["mean_cosine"]
        for name in sorted(layers, key=cost.get, reverse=True)[: int(max_fp32_fraction * len(layers))]:
            fp32_layers.append(name)
            full = fidelity(bert, quantize_bert(bert, ranges, alpha=alpha, fp32_layers=fp32_layers), batches)
            if full["mean_cosine"] >= target_cosine:
                break
    return {"alpha": alpha, "ranges": ranges, "fp32_layers": fp32_layers, **full}


# The fp32 matmul backend and the int8 engine are chosen once per process and layer shape,
# by timing the candidates: the answer is about this machine's CPU, the same for every model
# in the process, and timing it again per model would cost each load ~50 ms. The only
# module-level state of pytorch/. Keys: ("fp32" or "int8", in_features, out_features).
_BACKENDS: Dict[Tuple[str, int, int], str] = {}
_BACKEND_LOCK = threading.RLock()


def chosen_int8_engines() -> List[str]:
    """The int8 engines int8_engine has chosen in this process so far (for reports)."""
    with _BACKEND_LOCK:
        return sorted({engine for (kind, *_), engine in _BACKENDS.items() if kind == "int8"})


def fp32_backend_choices() -> Dict[str, str]:
    """fp32_backend's choices in this process so far, {"IN x OUT": "mkl" or "onednn"}: what a
    checkpoint records so that a resumed run computes with the backends it began with."""
    with _BACKEND_LOCK:
        return {f"{i} x {o}": choice for (kind, i, o), choice in _BACKENDS.items() if kind == "fp32"}


def pin_fp32_backends(choices: Dict[str, str]) -> None:
    """Take fp32_backend_choices() of another process (a checkpoint's) instead of timing those
    shapes again: the backends round differently, so a resumed run that chose otherwise would
    not end as the stopped one would have. oneDNN is not pinned where this build lacks it."""
    with _BACKEND_LOCK:
        for shape, choice in choices.items():
            if choice == "onednn" and not onednn_available():
                continue
            i, o = (int(n) for n in shape.split(" x "))
            _BACKENDS[("fp32", i, o)] = choice


def onednn_available() -> bool:
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


@torch.no_grad()
def fp32_backend(linear: nn.Linear, rows: int = 1024, timer: Callable[[], float] = time.perf_counter) -> str:
    """"onednn" where a oneDNN-packed weight multiplies faster than torch's own linear (MKL)
    for this layer's shape and gives the same result (within 1e-4 relative), else "mkl"."""
    key = ("fp32", linear.in_features, linear.out_features)
    with _BACKEND_LOCK:
        if key in _BACKENDS:
            return _BACKENDS[key]
        choice = "mkl"
        if onednn_available():
            try:
                x = torch.randn(rows, linear.in_features, generator=torch.Generator().manual_seed(0))
                packed = OneDNNLinear(linear, rows)
                expected = F.linear(x, linear.weight, linear.bias)
                got = packed(x)
                scale = float(expected.abs().max()) or 1.0
                if float((got - expected).abs().max()) <= 1e-4 * scale:
                    times = _interleaved_times({"mkl": lambda: F.linear(x, linear.weight, linear.bias),
                                                "onednn": lambda: packed(x)}, timer)
                    # A win of at least 5% (best of 9 each, so a steady one): on an AMD EPYC
                    # with AVX-512 oneDNN took 0.79-0.92 of MKL's time on MiniLM's shapes in
                    # 36 trials, and 0.85 had left the choice to chance, process by process.
                    choice = "onednn" if times["onednn"] < 0.95 * times["mkl"] else "mkl"
                    logger.debug("fp32 linear %s: mkl %.2f ms, onednn %.2f ms -> %s", key,
                                 1e3 * times["mkl"], 1e3 * times["onednn"], choice)
            except RuntimeError as err:  # an op this build or CPU lacks
                logger.debug("oneDNN linear unavailable for %s: %s", key, err)
        _BACKENDS[key] = choice
        return choice


def _packed_weight(weight: Tensor, bias: Optional[Tensor], engine: str):
    """`weight` (Tensor[out, in], fp32) in int8 per output channel, packed for `engine`.

    Weights in 7 bits ([-63, 63]) so that activations can have all 8: the AVX2 / AVX-512
    int8 kernels (vpmaddubsw) add pairs of u8 x s8 products in int16, which saturates for
    255 x 127 x 2 but never for 255 x 64 x 2. (torch's own recipe halves the activations'
    range instead; per-channel weights lose less from the missing bit.)
    """
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 63.0
    with warnings.catch_warnings():
        # torch marks quantized tensor types as deprecated; the packed weight is the
        # engine's own format and nothing quantized is ever saved.
        warnings.simplefilter("ignore", UserWarning)
        qweight = torch.quantize_per_channel(weight, scale.double(), torch.zeros(weight.shape[0], dtype=torch.long),
                                             0, torch.qint8)
        return _prepack(qweight, bias, engine)


def _prepack(qweight: Tensor, bias: Optional[Tensor], engine: str):
    """The weight packed for `engine`'s dynamic linear. The engine is torch's process-wide
    setting, read when a weight is packed (the packed weight then runs its own engine's
    kernel whatever the setting): switched for the packing only, under the lock."""
    with _BACKEND_LOCK:
        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine
        try:
            return torch.ops.quantized.linear_prepack(qweight, bias)
        finally:
            torch.backends.quantized.engine = previous


@torch.no_grad()
def int8_engine(linear: nn.Linear, rows: int = 1024, timer: Callable[[], float] = time.perf_counter) -> str:
    """"onednn" where oneDNN's dynamic int8 linear is clearly faster than the default engine's
    (fbgemm) for this layer's shape and gives the same result (within 2% of the output's
    range: both quantize alike, they differ in rounding), else the default engine."""
    key = ("int8", linear.in_features, linear.out_features)
    with _BACKEND_LOCK:
        if key in _BACKENDS:
            return _BACKENDS[key]
        default = torch.backends.quantized.engine
        choice = default
        if default != "onednn" and "onednn" in torch.backends.quantized.supported_engines:
            try:
                x = torch.randn(rows, linear.in_features, generator=torch.Generator().manual_seed(0))
                weight = linear.weight.detach().float()
                packed = {name: _packed_weight(weight, linear.bias, name) for name in (default, "onednn")}
                run = {name: (lambda p=p: torch.ops.quantized.linear_dynamic(x, p, False)) for name, p in packed.items()}
                expected, got = run[default](), run["onednn"]()
                if float((got - expected).abs().max()) <= 0.02 * (float(expected.abs().max()) or 1.0):
                    times = _interleaved_times(run, timer)
                    choice = "onednn" if times["onednn"] < 0.85 * times[default] else default
                    logger.debug("int8 linear %s: %s %.2f ms, onednn %.2f ms -> %s", key[1:], default,
                                 1e3 * times[default], 1e3 * times["onednn"], choice)
            except RuntimeError as err:  # an engine this build or CPU lacks
                logger.debug("oneDNN int8 linear unavailable for %s: %s", key[1:], err)
        _BACKENDS[key] = choice
        return choice


def _interleaved_times(candidates: Dict[str, Callable[[], Tensor]], timer: Callable[[], float],
                       repeat: int = 9) -> Dict[str, float]:
    """The fastest time of each candidate, timed in turns: another process on the machine
    only lengthens a call (by a lot when threads are oversubscribed), so the fastest of
    several is the kernel's own speed, where a median can follow the other process."""
    for fn in candidates.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = timer()
            fn()
            times[name].append(timer() - start)
    return {name: min(values) for name, values in times.items()}


def fast_fp32_bert(bert: BertModel) -> Optional[BertModel]:
    """A copy of `bert` with the linear layers on oneDNN where that is faster on this CPU;
    None where torch's default path is already the fastest for every layer."""
    chosen = [name for name in quantizable_layers(bert) if fp32_backend(bert.get_submodule(name)) == "onednn"]
    if not chosen:
        return None
    fast = _shallow_copy(bert)
    for name in chosen:
        _replace(fast, name, OneDNNLinear(bert.get_submodule(name), 1024))
    fast.row_buckets = True
    return fast
