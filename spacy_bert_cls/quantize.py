"""Convert a trained pipeline's encoder to int8 or bf16 inference (`spacy-bert-cls quantize`).

The result is an ordinary pipeline folder: the same fp32 weights, the `bert` component's
`inference_dtype` set in its config.cfg, for int8 the calibration (activation ranges, the
layers kept in fp32) saved with the weights, and what was done in meta.json under
"spacy_bert_cls". It loads, saves and packages like any pipeline.
"""
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
import torch
from spacy.language import Language
from thinc.api import Model

from .data.texts import read_texts
from .models.encoder import bucket_tensors, get_bert_shim, plan_for
from .models.inline_listener import InlineBertListener
from .models.pieces import get_piece_tokenizer
from .pipeline.bert import BertTransformer
from .pytorch.quantized import (BF16_EMULATED, DTYPES, INT8_UNCALIBRATED, bf16_native, calibrate_int8, fidelity,
                                quantizable_layers)
from .saving import save_pipeline

logger = logging.getLogger("spacy_bert_cls")
PathLike = Union[str, Path]
INLINE = "spacy-bert-cls.BertInlineListener"


def encoder_batches(nlp: Language, texts: Sequence[str], component: str = "bert") -> Iterator:
    """The (input_ids, attention_mask) buckets the component's encoder runs for `texts`."""
    model, _ = encoder_of(nlp, component)
    pieces_layer, encoder = model.get_ref("pieces"), model.get_ref("encoder")
    tokenizer = get_piece_tokenizer(pieces_layer)
    docs = [nlp.make_doc(text) for text in texts]
    for start in range(0, len(docs), 64):
        doc_pieces, _ = pieces_layer(docs[start:start + 64], is_train=False)
        plan = plan_for(encoder, doc_pieces, tokenizer)
        for ids, mask in bucket_tensors(plan, torch.device("cpu")):
            yield ids, mask


def encoder_of(nlp: Language, component: str) -> Tuple[Model, Dict]:
    """The encoder model `component` runs (a `bert` component's own, or the copy inside a
    component assembled with replace_listeners) and the config block whose inference_dtype
    says how it predicts; a ValueError that says where the encoders are when it has none."""
    if component not in nlp.pipe_names:
        raise ValueError(f"no component {component!r} in the pipeline (it has {nlp.pipe_names})"
                         + _where_encoders_are(nlp))
    pipe, config = nlp.get_pipe(component), nlp.get_pipe_config(component)
    if isinstance(pipe, BertTransformer):
        return pipe.model, config
    inline = _inline_listeners(pipe)
    blocks = [block for block in _blocks(config) if block.get("@architectures", "").startswith(INLINE)]
    if len(inline) > 1 or len(blocks) > 1:
        raise ValueError(f"{component!r} has {len(inline)} bert encoders of its own: quantize supports one a component")
    if not inline or not blocks:
        raise ValueError(f"{component!r} has no bert encoder of its own (it listens to a bert component, or has "
                         f"none)" + _where_encoders_are(nlp))
    return inline[0].get_ref("encoder"), blocks[0]


def _inline_listeners(pipe) -> List[InlineBertListener]:
    model = getattr(pipe, "model", None)
    return [node for node in model.walk() if isinstance(node, InlineBertListener)] if isinstance(model, Model) else []


def _where_encoders_are(nlp: Language) -> str:
    names = [name for name, pipe in nlp.pipeline if isinstance(pipe, BertTransformer) or _inline_listeners(pipe)]
    return f": name one with an encoder with --component ({', '.join(names)})" if names else ""


def _blocks(config) -> Iterator[Dict]:
    """Every dict inside a component's config, depth first."""
    if isinstance(config, dict):
        yield config
        for value in config.values():
            yield from _blocks(value)


def quantize_pipeline(pipeline: Union[PathLike, Language], output: Optional[PathLike], *, dtype: str,
                      data: Optional[PathLike] = None, component: str = "bert", n_texts: int = 512,
                      alpha: float = 0.5, target_cosine: float = 0.993, max_fp32_fraction: float = 0.25) -> Dict:
    """Set a pipeline's encoder to `dtype` for inference, calibrating int8 on `data`.

    pipeline: a pipeline folder (or a loaded Language, changed in place).
    output: where to save the result (atomically); None: do not save.
    dtype: "int8", "bfloat16" or "float32" (undo).
    data: text to calibrate int8 on (data.texts.read_texts: .txt, .jsonl, CoNLL, .spacy); also where the
        fidelity to fp32 is measured. Without it, int8 quantizes from the weights alone.
    n_texts: texts of `data` used.
    alpha, target_cosine, max_fp32_fraction: see pytorch.quantized.calibrate_int8.
    RETURNS: what was done ({"dtype", "fp32_layers", "mean_cosine", "warnings", ...}), also
        in meta.json under "spacy_bert_cls". "warnings": what the user should know now, not
        at first use: int8 without calibration data, a calibration that stopped under
        `target_cosine`, bf16 emulated on this CPU.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if n_texts < 1:
        raise ValueError(f"--n-texts must be at least 1 (the texts of the data to calibrate on), got {n_texts}")
    if not 0.0 < target_cosine <= 1.0:
        raise ValueError(f"--target-cosine must be in (0, 1] (a cosine to fp32's token states), got {target_cosine}")
    nlp = pipeline if isinstance(pipeline, Language) else spacy.load(pipeline)
    encoder, config = encoder_of(nlp, component)
    windowed = get_bert_shim(encoder).windowed
    if next(windowed.bert.parameters()).device.type != "cpu":
        windowed.to("cpu")
    batches = list(encoder_batches(nlp, read_texts(data, spacy.blank("en"), n_texts), component)) if data else []
    summary: Dict = {"dtype": dtype, "calibration_texts": str(Path(data).name) if data else None, "warnings": []}
    fp32 = windowed.bert.eval()
    if dtype == "int8":
        if batches:
            result = calibrate_int8(fp32, batches, alpha=alpha, target_cosine=target_cosine,
                                    max_fp32_fraction=max_fp32_fraction)
            windowed.set_int8_calibration(result["alpha"], result["fp32_layers"], result["ranges"])
            summary.update(alpha=result["alpha"], fp32_layers=result["fp32_layers"],
                           mean_cosine=round(result["mean_cosine"], 6), min_cosine=round(result["min_cosine"], 6))
            if result["mean_cosine"] < target_cosine:
                summary["warnings"].append(_under_target(result, len(quantizable_layers(fp32)), target_cosine,
                                                         max_fp32_fraction, Path(data).name))
        else:
            windowed.clear_int8_calibration()
            summary.update(alpha=None, fp32_layers=[])
            summary["warnings"].append(INT8_UNCALIBRATED)
    else:
        windowed.clear_int8_calibration()
        if batches and dtype == "bfloat16":
            measured = fidelity(fp32, _Bf16Autocast(fp32), batches)
            summary.update(mean_cosine=round(measured["mean_cosine"], 6), min_cosine=round(measured["min_cosine"], 6))
    if dtype == "bfloat16" and not bf16_native():
        summary["warnings"].append(BF16_EMULATED)
    windowed.inference_dtype = dtype
    # The setting in the config (the bert factory's, or the inline listener's), so that
    # config.cfg says it and spacy.load restores it.
    config["inference_dtype"] = dtype
    nlp.meta.setdefault("spacy_bert_cls", {})["inference"] = summary
    if output is not None:
        save_pipeline(nlp, output)
    return summary


def _under_target(result: Dict, n_layers: int, target_cosine: float, max_fp32_fraction: float, data: str) -> str:
    return (f"the int8 token states reach a mean cosine of {result['mean_cosine']:.4f} to fp32 on {data} "
            f"(min {result['min_cosine']:.4f}), under the target of {target_cosine}, with "
            f"{len(result['fp32_layers'])} of {n_layers} layers kept in fp32 (the most allowed is "
            f"{max_fp32_fraction:.0%}): compare its accuracy with the fp32 pipeline's (spacy-bert-cls evaluate) "
            f"before you use it, or serve fp32")


class _Bf16Autocast(torch.nn.Module):
    """The encoder as bf16 inference runs it (CPU autocast), for measuring its fidelity."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.bert(input_ids, attention_mask).float()
