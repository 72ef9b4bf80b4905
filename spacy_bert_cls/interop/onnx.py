"""The classification heads as ONNX graphs, for serving with ONNX Runtime (no PyTorch).

`write_onnx` writes `model.onnx` beside an exported HF folder's files (the layout of
optimum's exports): inputs `input_ids`, `attention_mask`, `token_type_ids` (int64,
[batch, sequence], sequences as the folder's tokenizer.json makes them, [CLS] ... [SEP]),
output `logits`: [batch, n_labels] for a sequence classifier, [batch, sequence, n_tags] for
a token classifier. Softmax or sigmoid, as config.json's problem_type says, is the caller's.
Needs the `onnx` extra (onnx, onnxruntime to run it).
"""
import copy
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..pytorch.encoder import BertModel

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Classifier(nn.Module):
    """BertModel + a linear head over the pooled [CLS] (sequence) or every piece (token)."""

    def __init__(self, bert: BertModel, weight: Tensor, bias: Tensor, token_level: bool) -> None:
        super().__init__()
        self.bert = bert
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)
        self.token_level = token_level

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        """input_ids, attention_mask, token_type_ids (Tensor[batch, seq], long) ->
        logits (Tensor[batch, seq, n_labels] per token, or Tensor[batch, n_labels])"""
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        return F.linear(hidden if self.token_level else self.bert.pool(hidden), self.weight, self.bias)


def write_onnx(path: Path, bert: BertModel, weight: Tensor, bias: Tensor, token_level: bool,
               opset: int = 17) -> Path:
    """Export the encoder and its classifier to `path` (ONNX, batch and sequence dynamic).

    bert (BertModel): the encoder (copied; the pipeline's module is left as it is).
    weight (Tensor[n_labels, hidden]), bias (Tensor[n_labels]): the classifier.
    token_level (bool): logits for every piece (token classification) or for the pooled [CLS].
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'spacy_bert_cls[onnx]'") from None
    module = _Classifier(copy.deepcopy(bert).float().cpu(), weight.float().cpu(), bias.float().cpu(), token_level)
    module.eval()
    # Traced with a padded row, so that the graph keeps the attention mask's path
    # (BertModel skips it when nothing is padded).
    ids = torch.arange(16, dtype=torch.long).reshape(2, 8) % bert.config.vocab_size
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    dynamic["logits"] = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    with warnings.catch_warnings():
        # The TorchScript exporter (deprecated in favour of torch.export, which needs
        # onnxscript) and its tracer's notes on shape checks that become constants.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(module, (ids, mask, torch.zeros_like(ids)), str(path), input_names=list(INPUTS),
                              output_names=["logits"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return Path(path)
