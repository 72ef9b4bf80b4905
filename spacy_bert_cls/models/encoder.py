"""Thinc layer: word pieces of a batch of docs -> BertOutput per doc, through the torch encoder."""
from typing import Any, Dict, List, Optional, Tuple

import srsly
import torch
from safetensors import SafetensorError
from safetensors.torch import save as save_safetensors
from thinc.api import ArgsKwargs, Model, PyTorchGradScaler, PyTorchShim, torch2xp, xp2torch
from thinc.util import get_torch_default_device

from ..checkpoint.io import tensor_views
from ..forking import install_fork_hooks
from ..pytorch.config import BertConfig
from ..pytorch.encoder import BertModel
from ..pytorch.windowed import WindowedBert
from ..tokenization import PieceTokenizer
from ..windows import WindowPlan, plan_windows
from . import adam
from .output import BertGrad, BertOutput, DocPieces


def build_windowed_encoder(
    config: BertConfig,
    *,
    window_size: int,
    stride: int,
    overlap: str,
    max_batch_pieces: int,
    mixed_precision: bool,
    grad_scaler_config: Dict[str, Any],
) -> Model[Tuple[List[DocPieces], PieceTokenizer], List[BertOutput]]:
    # Installed here, when a bert component is built, not at import: spaCy imports every
    # plugin's factories in any process that makes a Language, and the hooks change
    # forked children (torch threads), which is no business of someone else's pipeline.
    install_fork_hooks()
    if window_size > config.max_position_embeddings:
        raise ValueError(
            f"window_size ({window_size}) is longer than the encoder's "
            f"max_position_embeddings ({config.max_position_embeddings})"
        )
    # Checked here, at construction, rather than at the first batch.
    plan_windows([], cls_id=0, sep_id=0, pad_id=0, window_size=window_size, stride=stride, overlap=overlap,
                 max_batch_pieces=max_batch_pieces)
    # Gradient scaling is for fp16 on CUDA only; on the CPU, mixed precision is bf16
    # autocast inside WindowedBert and needs no scaler.
    on_cuda = get_torch_default_device().type == "cuda"
    grad_scaler = PyTorchGradScaler(enabled=mixed_precision and on_cuda, **grad_scaler_config)
    shim = BertShim(
        WindowedBert(BertModel(config), mixed_precision=mixed_precision, max_batch_pieces=max_batch_pieces),
        mixed_precision=mixed_precision and on_cuda,
        grad_scaler=grad_scaler,
        serialize_model=serialize_encoder,
        deserialize_model=deserialize_encoder,
    )
    return Model(
        "bert_encoder",
        encoder_forward,
        shims=[shim],
        dims={"nO": config.hidden_size},
        attrs={
            "window_size": window_size,
            "stride": stride,
            "overlap": overlap,
            "max_batch_pieces": max_batch_pieces,
        },
    )


class BertShim(PyTorchShim):
    """thinc's PyTorchShim, telling the encoder when the optimizer has changed its weights.

    thinc's optimizer writes the new weights through numpy views (same memory, no torch
    version bump), so the encoder cannot see the change by itself; without this the module
    that predicts (oneDNN-packed or int8 copies of the weights) kept serving the weights it
    was derived from, and `spacy train` scored its dev set with the step-0 encoder whenever
    the run-time check picked oneDNN (on a busy machine: dev score 0.52 for a model that
    scores 0.95 when reloaded).
    """

    # An encoder inside a component's own model (InlineBertListener) has no `bert`
    # component to clip its gradient by the global norm before the step: the shim does.
    clip_global = False

    @property
    def windowed(self) -> WindowedBert:
        """The torch module this shim wraps."""
        return self._model

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Set by the `bert` component while its listeners backpropagate one by one.
        self.retain_graph = False
        self._stashed: Dict[str, Dict[str, torch.Tensor]] = {}
        # The norm the whole gradient was clipped to before this step (clip_gradient,
        # clip_stashed): no parameter's norm is then above it, and the optimizer's own
        # clip of each parameter (a pass over the gradient) can be left out.
        self.clipped_to: Optional[float] = None

    def stash_gradient(self, key: str) -> None:
        """Move the encoder's gradient (each parameter's .grad) aside under `key`, adding to
        what is there: the gradient of one listener's loss, stepped in finish_update with an
        optimizer state of its own."""
        stash = self.stashed.setdefault(key, {})
        for name, param in self._model.named_parameters():
            if param.grad is not None:
                if name in stash:
                    stash[name] += param.grad
                else:
                    stash[name] = param.grad
                param.grad = None

    def clip_stashed(self, max_norm: float) -> Dict[str, float]:
        """Clip each stashed gradient by its own global norm (as clip_encoder_gradient does
        the whole gradient). RETURNS the norms before clipping, by key."""
        norms = {}
        self.clipped_to = max_norm
        for key, grads in self.stashed.items():
            if grads:
                grads.update((name, _coalesced(grad)) for name, grad in grads.items())
                norms[key] = _clip_global(list(grads.values()), max_norm)
        return norms

    def _clipped_globally(self, optimizer) -> bool:
        """Whether the gradient this step takes was clipped to the optimizer's grad_clip as
        a whole (and forget it: the next step's gradient is another)."""
        clipped, self.clipped_to = getattr(self, "clipped_to", None), None
        return bool(clipped) and clipped == getattr(optimizer, "grad_clip", None)

    @property
    def stashed(self) -> Dict[str, Dict[str, torch.Tensor]]:
        # (a shim unpickled from before the stash existed has no _stashed)
        if getattr(self, "_stashed", None) is None:
            self._stashed = {}
        return self._stashed

    def clip_gradient(self, max_norm: float) -> float:
        """Clip the encoder's gradient by its global norm, in place (torch's clip_grad_norm_).
        RETURNS the norm before clipping (inf or nan when the fp16 scaler found an overflow:
        the step is skipped anyway); 0.0 when there is no gradient."""
        params = [p for p in self._model.parameters() if p.grad is not None]
        if not params:
            return 0.0
        self.clipped_to = max_norm
        for param in params:
            param.grad = _coalesced(param.grad)
        return _clip_global([p.grad for p in params], max_norm)

    def finish_update(self, optimizer) -> None:
        grad_clip = getattr(optimizer, "grad_clip", None)
        if self.clip_global and grad_clip:
            self.clip_gradient(float(grad_clip))
        if self.stashed:
            self._step_each_stash(optimizer)
        else:
            self._step(optimizer)
        self._model.weights_changed()

    def _step(self, optimizer) -> None:
        """thinc's PyTorchShim.finish_update, with every parameter in one step (adam.py)."""
        named = [(name, param) for name, param in self._model.named_parameters() if param.grad is not None]
        clipped = self._clipped_globally(optimizer)
        if not self._grad_scaler.found_inf:  # an fp16 overflow: skip the step, as thinc does
            self._adam_step(optimizer, [(name, param, param.grad) for name, param in named], "", clipped)
        for _, param in named:  # spent (the next backward pass makes new ones)
            param.grad = None
        self._grad_scaler.update()

    def _step_each_stash(self, optimizer) -> None:
        """One optimizer step per stashed gradient, each with its own optimizer state (the
        parameter keys get the stash's key), one after the other: under Adam each listener's
        update then has the size it would have alone, whatever the other's gradient norm.
        Decoupled weight decay is applied by the first step only."""
        params = dict(self._model.named_parameters())
        l2 = getattr(optimizer, "L2", 0.0)
        clipped = self._clipped_globally(optimizer)
        try:
            for i, (key, grads) in enumerate(self._stashed.items()):
                if self._grad_scaler.found_inf:  # an fp16 overflow: skip the step, as thinc does
                    break
                if i == 1 and l2:
                    optimizer.L2 = 0.0
                self._adam_step(optimizer, [(name, params[name], grad) for name, grad in grads.items()], f"@{key}",
                                clipped)
        finally:
            if l2:
                optimizer.L2 = l2
            self._stashed.clear()
        self._grad_scaler.update()

    def _adam_step(self, optimizer, named: List[Tuple[str, torch.Tensor, torch.Tensor]], suffix: str,
                   clipped: bool) -> None:
        """adam.step of (name, parameter, gradient) under the keys (shim id, name + suffix).

        A sparse gradient (the piece embeddings', the rows a batch looked up) is laid out on a
        zeroed buffer kept for its parameter: the optimizer takes it dense, as before, without
        the fresh [vocab, hidden] zero matrix of a dense gradient each step (10 ms on MiniLM,
        mostly page faults). The rows written are zeroed again after the step; the whole
        buffer where the optimizer may have written elsewhere (coupled L2, thinc's own path)."""
        keyed, written = [], []
        for name, param, grad in named:
            if grad.is_sparse:
                grad = grad.coalesce()
                buffer = self._grad_buffer(name, grad)
                rows = grad.indices()[0]
                buffer[rows] = grad.values()
                written.append((buffer, rows))
                grad = buffer
            keyed.append(((self.id, name + suffix), param, grad))
        try:
            adam.step(optimizer, keyed, clip_each=not clipped)
        finally:
            rows_only = adam.foreach_supported(optimizer) and not (optimizer.L2 and not optimizer.L2_is_weight_decay)
            for buffer, rows in written:
                if rows_only:
                    buffer[rows] = 0
                else:
                    buffer.zero_()

    def _grad_buffer(self, name: str, grad: torch.Tensor) -> torch.Tensor:
        buffers = self.__dict__.setdefault("_grad_buffers", {})
        buffer = buffers.get(name)
        if buffer is None or buffer.shape != grad.shape or buffer.dtype != grad.dtype or buffer.device != grad.device:
            buffer = buffers[name] = torch.zeros(grad.shape, dtype=grad.dtype, device=grad.device)
        return buffer


def _coalesced(grad: torch.Tensor) -> torch.Tensor:
    """A sparse gradient (the piece embeddings') with one value per row; a dense one as it is."""
    return grad.coalesce() if grad.is_sparse else grad


def _clip_global(grads: List[torch.Tensor], max_norm: float) -> float:
    """torch's clip_grad_norm_ rule on `grads` (dense, or coalesced sparse: its values are its
    numbers), in place, with no pass over them where their norm is under max_norm. RETURNS
    the norm before clipping."""
    numbers = [grad.values() if grad.is_sparse else grad for grad in grads]
    norm = float(torch.nn.utils.get_total_norm(numbers))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        torch._foreach_mul_(numbers, coef)
    return norm


def get_bert_shim(model: Model) -> BertShim:
    """The torch encoder inside `model` (a `bert` component's model, its encoder layer, or
    an InlineBertListener's encoder), as its shim: the one accessor. Its training state
    (stashes, clipping) is the shim's; `.windowed` is the torch module that runs the
    windows, `.windowed.bert` the BertModel (export, pretraining, loading, freezing)."""
    return next(node for node in model.walk() if node.shims).shims[0]


def clip_encoder_gradient(model: Model, max_norm: float) -> float:
    """Clip the gradient of the torch encoder inside `model` (see get_bert_shim) by its
    global norm, in place, before the optimizer step. RETURNS BertShim.clip_gradient's norm."""
    return get_bert_shim(model).clip_gradient(max_norm)


def plan_for(model: Model, docs: List[DocPieces], tokenizer: PieceTokenizer) -> WindowPlan:
    """The windows and padded buckets the encoder runs for these docs."""
    return plan_windows(
        [doc.ids for doc in docs],
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
        window_size=model.attrs["window_size"],
        stride=model.attrs["stride"],
        overlap=model.attrs["overlap"],
        max_batch_pieces=model.attrs["max_batch_pieces"],
    )


def bucket_tensors(plan: WindowPlan, device) -> List[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """(input_ids, attention_mask or None when nothing is padded) of each bucket."""
    return [
        (torch.as_tensor(b.input_ids, dtype=torch.long, device=device),
         torch.as_tensor(b.attention_mask, dtype=torch.bool, device=device) if b.padded else None)
        for b in plan.buckets
    ]


def encoder_forward(model: Model, inputs: Tuple[List[DocPieces], PieceTokenizer], is_train: bool):
    docs, tokenizer = inputs
    plan = plan_for(model, docs, tokenizer)
    shim = model.shims[0]
    device = shim.device
    args = _encoder_args(plan, device)
    torch_outputs, torch_backprop = shim(args, is_train) if is_train else (_predict(shim, args), None)
    pieces, cls, pooled = (torch2xp(t.float()) for t in torch_outputs)
    outputs = _split_by_doc(docs, plan, pieces, cls, pooled)
    shapes = (pieces.shape, cls.shape, pooled.shape)

    def backprop(d_outputs: List[BertGrad]):
        tensors, grads = _output_gradients(model.ops, plan, d_outputs, torch_outputs, shapes, device)
        if tensors:
            kwargs = {"grad_tensors": grads, "retain_graph": getattr(shim, "retain_graph", False)}
            torch_backprop(ArgsKwargs(args=(tensors,), kwargs=kwargs))
        return []

    return outputs, backprop


def _encoder_args(plan: WindowPlan, device) -> ArgsKwargs:
    """WindowedBert's arguments for a plan: the buckets, and how its outputs become doc pieces."""

    def to_torch(array, dtype=torch.long):
        return torch.as_tensor(array, dtype=dtype, device=device)

    gather_only = plan.one_source_each
    return ArgsKwargs(
        args=(
            bucket_tensors(plan, device),
            to_torch(plan.piece_rows),
            None if gather_only else to_torch(plan.piece_targets),
            None if gather_only else to_torch(plan.piece_weights, torch.float32),
            plan.n_pieces,
            to_torch(plan.cls_rows),
        ),
        kwargs={},
    )


def _split_by_doc(docs: List[DocPieces], plan: WindowPlan, pieces, cls, pooled) -> List[BertOutput]:
    """The batch's pieces [n_pieces, hidden] and windows' cls and pooled [n_windows, hidden],
    cut into one BertOutput per doc (views, no copies)."""
    outputs = []
    piece_start = window_start = 0
    for doc, n_pieces, n_windows in zip(docs, plan.doc_pieces, plan.doc_windows):
        outputs.append(
            BertOutput(
                pieces=pieces[piece_start:piece_start + n_pieces],
                cls=cls[window_start:window_start + n_windows],
                pooled=pooled[window_start:window_start + n_windows],
                token_pieces=doc.token_pieces,
                token_lengths=doc.token_lengths,
            )
        )
        piece_start += n_pieces
        window_start += n_windows
    return outputs


def _output_gradients(ops, plan: WindowPlan, d_outputs: List[BertGrad], torch_outputs, shapes, device):
    """The docs' gradients joined into one per encoder output (pieces, cls, pooled), as
    torch tensors of the output's dtype; an output no doc has a gradient for is left out.

    RETURNS: the output tensors and their gradients, for torch.autograd.backward.
    """
    tensors, grads = [], []
    for name, tensor, shape in zip(("pieces", "cls", "pooled"), torch_outputs, shapes):
        parts = [getattr(d, name) for d in d_outputs]
        if all(p is None for p in parts):
            continue
        rows = plan.doc_pieces if name == "pieces" else plan.doc_windows
        full = ops.alloc2f(*shape)
        offset = 0
        for part, n in zip(parts, rows):
            if part is not None:
                full[offset:offset + n] = part
            offset += n
        tensors.append(tensor)
        grads.append(xp2torch(full, device=device).to(tensor.dtype))
    return tensors, grads


def _predict(shim: PyTorchShim, args: ArgsKwargs):
    """The shim's predict, without its closing module.train(): done in one thread while
    another is still in forward, that switches dropout on mid-batch there, and two threads
    running the same nlp got different results. The module stays in eval mode; thinc's
    begin_update sets train() itself."""
    module = shim._model
    if module.training:
        module.eval()
    with torch.no_grad(), torch.autocast(device_type="cuda", enabled=shim._mixed_precision):
        return module(*args.args, **args.kwargs)


def serialize_encoder(module: WindowedBert) -> bytes:
    """The encoder's config and weights; safetensors, so loading runs no pickled code."""
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    return srsly.msgpack_dumps({"config": module.bert.config.to_dict(), "weights": save_safetensors(state),
                                "int8": module.int8_settings})


def deserialize_encoder(module: Optional[WindowedBert], data: bytes, device) -> WindowedBert:
    msg = srsly.msgpack_loads(data)
    config = BertConfig.from_dict(msg["config"])
    if module is None or module.bert.config != config:
        module = WindowedBert(BertModel(config), mixed_precision=getattr(module, "mixed_precision", False),
                              inference_dtype=getattr(module, "inference_dtype", "float32"),
                              max_batch_pieces=getattr(module, "max_batch_pieces", 8192))
    try:
        state = tensor_views(msg["weights"])
    except SafetensorError as err:
        raise ValueError(f"a bert component's saved weights (the `model` file in its folder) are damaged: {err}. "
                         "Copy the pipeline again, or train it again") from None
    prefix = "calibration."
    ranges = {k[len(prefix):].replace("__", "."): v for k, v in state.items() if k.startswith(prefix)}
    settings = msg.get("int8") or {}
    if settings:
        module.set_int8_calibration(settings["alpha"], settings["fp32_layers"], ranges)
    else:
        module.clear_int8_calibration()
    module.load_state_dict(state, strict=True)
    return module.to(device)
