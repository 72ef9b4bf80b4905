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

from ..pytorch.encoder import BertModel
from ..pytorch.heads import BertClassifier, ClassificationHead

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def write_onnx(path: Path, bert: BertModel, classifier: ClassificationHead, token_level: bool,
               opset: int = 17) -> Path:
    """Export the encoder and its classifier (pytorch/heads.BertClassifier) to `path`
    (ONNX, batch and sequence dynamic).

    bert (BertModel): the encoder (copied; the pipeline's module is left as it is).
    classifier (ClassificationHead): the classifier (copied), weight [n_labels, hidden].
    token_level (bool): logits for every piece (token classification) or for the pooled [CLS].
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'spacy_bert_cls[onnx]'") from None
    module = BertClassifier(copy.deepcopy(bert).float().cpu(), copy.deepcopy(classifier).float().cpu(), token_level)
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
