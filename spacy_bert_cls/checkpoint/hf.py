"""HF BERT checkpoint folders <-> our BertModel: config.json, the tensor-name table, strict loading.

HF names one tensor per matrix (query, key and value apart) under `encoder.layer.N`;
our attention has one fused `qkv` matrix. `_layer_table` is the whole translation.
"""
import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..errors import CheckpointError
from ..pytorch.config import BertConfig
from ..pytorch.encoder import BertModel
from .io import find_weights, read_json, read_tensors, write_json, write_tensors

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
# config.json fields without which the encoder's shape is unknown: no silent defaults.
REQUIRED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)
# Tensors that a BERT checkpoint may hold for heads on top of the encoder; the encoder
# loader leaves them for the heads (MLM/NSP: cls.*, classification: classifier.*).
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.", "lm_head.")
# Buffers HF saves with the weights that are not parameters of ours.
IGNORED_KEYS = ("embeddings.position_ids",)
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")


def is_pipeline_folder(folder: Union[str, Path]) -> bool:
    """Whether `folder` is a saved spaCy pipeline (config.cfg and meta.json), not an HF folder."""
    return (Path(folder) / "config.cfg").is_file() and (Path(folder) / "meta.json").is_file()


def read_hf_config(folder: Union[str, Path]) -> BertConfig:
    """Read config.json of an HF BERT folder into a BertConfig, checking every field."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        hint = (" (this folder is a spaCy pipeline: `spacy-bert-cls export-hf PIPELINE OUT` writes its "
                "encoder as one)") if is_pipeline_folder(folder) else ""
        raise CheckpointError(path, f"missing: an HF checkpoint folder needs its config.json{hint}")
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(path, "expected a JSON object")
    model_type = data.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(path, f"model_type is {model_type!r}; only 'bert' checkpoints are supported")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise CheckpointError(path, f"missing field(s): {', '.join(missing)}")
    position_type = data.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise CheckpointError(path, f"position_embedding_type {position_type!r} is not supported (only 'absolute')")
    if data.get("is_decoder") or data.get("add_cross_attention"):
        raise CheckpointError(path, "decoder / cross-attention BERT models are not supported")
    try:
        return BertConfig.from_dict(data)
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None


def _layer_table(i: int) -> List[Tuple[str, Tuple[str, ...]]]:
    """(our name, HF names) for layer i; several HF names are stacked along dim 0."""
    hf = f"encoder.layer.{i}."
    ours = f"layers.{i}."
    table = []
    for kind in ("weight", "bias"):
        table += [
            (ours + f"attention.qkv.{kind}",
             tuple(hf + f"attention.self.{m}.{kind}" for m in ("query", "key", "value"))),
            (ours + f"attention.output.{kind}", (hf + f"attention.output.dense.{kind}",)),
            (ours + f"attention_norm.{kind}", (hf + f"attention.output.LayerNorm.{kind}",)),
            (ours + f"ffn.intermediate.{kind}", (hf + f"intermediate.dense.{kind}",)),
            (ours + f"ffn.output.{kind}", (hf + f"output.dense.{kind}",)),
            (ours + f"ffn_norm.{kind}", (hf + f"output.LayerNorm.{kind}",)),
        ]
    return table


def name_table(config: BertConfig) -> List[Tuple[str, Tuple[str, ...]]]:
    """The ordered table of our tensor names and the HF names they come from."""
    table = [
        ("embeddings.piece_embeddings.weight", ("embeddings.word_embeddings.weight",)),
        ("embeddings.position_embeddings.weight", ("embeddings.position_embeddings.weight",)),
        ("embeddings.type_embeddings.weight", ("embeddings.token_type_embeddings.weight",)),
        ("embeddings.layer_norm.weight", ("embeddings.LayerNorm.weight",)),
        ("embeddings.layer_norm.bias", ("embeddings.LayerNorm.bias",)),
    ]
    for i in range(config.num_hidden_layers):
        table += _layer_table(i)
    table += [("pooler.dense.weight", ("pooler.dense.weight",)), ("pooler.dense.bias", ("pooler.dense.bias",))]
    return table


def _normalise_key(key: str) -> str:
    # TF-converted checkpoints name LayerNorm parameters gamma/beta.
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key))


def split_checkpoint(
    tensors: Dict[str, torch.Tensor], source: Path
) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Split HF tensors into (encoder tensors without the `bert.` prefix, head tensors).

    A tensor that is neither (for instance another architecture's) is an error.
    """
    prefixed = any(k.startswith("bert.") for k in tensors)
    encoder: Dict[str, torch.Tensor] = {}
    heads: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in tensors.items():
        key = _normalise_key(key)
        if key.startswith(HEAD_PREFIXES):
            heads[key] = tensor
        elif prefixed and key.startswith("bert."):
            encoder[key[len("bert."):]] = tensor
        elif not prefixed and key.startswith(("embeddings.", "encoder.", "pooler.")):
            encoder[key] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            source,
            f"unexpected tensor(s) that are neither BERT encoder nor known head weights: "
            f"{_names(unknown)}",
        )
    return encoder, heads


def hf_to_ours(encoder: Dict[str, torch.Tensor], config: BertConfig, source: Path) -> Dict[str, torch.Tensor]:
    """Translate and check HF encoder tensors: every one present, none extra, shapes exact."""
    expected_shapes = _expected_shapes(config)
    table = name_table(config)
    used = set(IGNORED_KEYS)
    missing = [hf for ours, hfs in table for hf in hfs if hf not in encoder]
    pooler_missing = all(k in missing for k in POOLER_KEYS)
    if pooler_missing:
        # Checkpoints saved from BertForMaskedLM have no pooler; HF starts it fresh too.
        missing = [k for k in missing if k not in POOLER_KEYS]
    if missing:
        raise CheckpointError(source, f"missing tensor(s): {_names(missing)}")
    state: Dict[str, torch.Tensor] = {}
    for ours, hfs in table:
        if pooler_missing and hfs[0] in POOLER_KEYS:
            continue
        parts = []
        for hf in hfs:
            tensor = encoder[hf]
            used.add(hf)
            want = expected_shapes[ours]
            want = (want[0] // len(hfs),) + want[1:]
            if tuple(tensor.shape) != want:
                raise CheckpointError(
                    source,
                    f"tensor {hf} has shape {list(tensor.shape)}, expected {list(want)} "
                    f"for the sizes in config.json",
                )
            if not tensor.dtype.is_floating_point:
                raise CheckpointError(source, f"tensor {hf} has dtype {tensor.dtype}, expected a float type")
            not_finite = int((~torch.isfinite(tensor)).sum())
            if not_finite:
                raise CheckpointError(source, f"tensor {hf} has {not_finite} value(s) that are NaN or infinite: "
                                              f"the file is corrupted, or the training that wrote it diverged")
            parts.append(tensor.to(torch.float32))
        state[ours] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
    extra = [k for k in encoder if k not in used]
    if extra:
        raise CheckpointError(
            source, f"unexpected tensor(s) for a {config.num_hidden_layers}-layer BERT: {_names(extra)}"
        )
    if pooler_missing:
        logger.warning("%s has no pooler weights; the pooler starts from random weights", source)
    return state


def ours_to_hf(state: Dict[str, torch.Tensor], config: BertConfig, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Our state dict -> HF tensor names (the fused qkv split again)."""
    tensors = {}
    for ours, hfs in name_table(config):
        for hf, part in zip(hfs, state[ours].chunk(len(hfs), dim=0)):
            tensors[prefix + hf] = part.contiguous()
    return tensors


def _expected_shapes(config: BertConfig) -> Dict[str, Tuple[int, ...]]:
    # Shapes straight from the module, built on the meta device: no memory, no drift.
    with torch.device("meta"):
        module = BertModel(config)
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def _names(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def load_bert_checkpoint(
    folder: Union[str, Path], config: Optional[BertConfig] = None
) -> Tuple[BertConfig, Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Read an HF BERT folder strictly.

    folder: the folder with config.json and model.safetensors (or pytorch_model.bin).
    config: when given, the checkpoint's config.json must agree with it on every size.
    RETURNS: (config, our encoder state dict, HF head tensors such as cls.* or classifier.*).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(folder, "not a folder (expected an HF checkpoint folder)")
    found = read_hf_config(folder)
    if config is not None:
        check_same_sizes(found, config, folder / CONFIG_FILE)
    weights = find_weights(folder)
    encoder, heads = split_checkpoint(read_tensors(weights), weights)
    state = hf_to_ours(encoder, found, weights)
    return found, state, heads


# Sizes that fix the shapes of tensors: the pipeline's config must name the same.
SHAPE_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "max_position_embeddings", "type_vocab_size",
)
BEHAVIOUR_FIELDS = ("hidden_act", "layer_norm_eps", "pad_token_id")


def check_same_sizes(found: BertConfig, expected: BertConfig, source: Path) -> None:
    """Raise if a checkpoint's config differs from the pipeline's on a field that matters."""
    diffs = [
        (name, getattr(found, name), getattr(expected, name))
        for name in SHAPE_FIELDS + BEHAVIOUR_FIELDS
        if getattr(found, name) != getattr(expected, name)
    ]
    if diffs:
        listed = "; ".join(f"{n} is {a!r} there, {b!r} in the pipeline" for n, a, b in diffs)
        overrides = " ".join(f"--components.bert.model.{n} {a}" for n, a, _ in diffs)
        raise CheckpointError(
            source,
            f"does not match the pipeline's encoder config: {listed}. Set the model's sizes to "
            f"the checkpoint's in the config (for a component named 'bert': {overrides}).",
        )


def save_bert_checkpoint(
    folder: Union[str, Path], config: BertConfig, state: Dict[str, torch.Tensor],
    extra_config: Optional[dict] = None,
) -> None:
    """Write our encoder as an HF `BertModel` folder: config.json and model.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf_config = {"architectures": ["BertModel"], "model_type": "bert",
                 "position_embedding_type": "absolute", **config.to_dict(), **(extra_config or {})}
    write_tensors(folder / "model.safetensors", ours_to_hf(state, config))
    write_json(folder / CONFIG_FILE, hf_config)


def describe_checkpoint(folder: Union[str, Path]) -> dict:
    """Load a checkpoint folder strictly (weights and tokenizer) and summarise it."""
    from ..tokenization import load_piece_tokenizer
    from ..tokenization.wordpiece import TOKENIZER_JSON, VOCAB_TXT

    folder = Path(folder)
    config, state, heads = load_bert_checkpoint(folder)
    tokenizer = load_piece_tokenizer(folder)
    tokenizer_file = folder / (TOKENIZER_JSON if (folder / TOKENIZER_JSON).is_file() else VOCAB_TXT)
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            tokenizer_file,
            f"the tokenizer has {tokenizer.vocab_size} entries but config.json says "
            f"vocab_size = {config.vocab_size}",
        )
    return {
        "sizes": {name: getattr(config, name) for name in SHAPE_FIELDS + BEHAVIOUR_FIELDS},
        "n_tensors": len(state),
        "n_parameters": sum(t.numel() for t in state.values()),
        "head_tensors": sorted(heads),
        "tokenizer_file": str(tokenizer_file),
        "tokenizer_vocab": tokenizer.vocab_size,
    }


# Pretraining heads: our BertForPreTraining names <-> HF's. The MLM decoder is tied to the
# piece embeddings (HF saves neither cls.predictions.decoder.weight nor its bias, the same
# tensor as cls.predictions.bias; a checkpoint that does is read and checked).
MLM_TABLE = [
    ("mlm.dense.weight", "cls.predictions.transform.dense.weight"),
    ("mlm.dense.bias", "cls.predictions.transform.dense.bias"),
    ("mlm.layer_norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm.layer_norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm.bias", "cls.predictions.bias"),
]
NSP_TABLE = [
    ("nsp.weight", "cls.seq_relationship.weight"),
    ("nsp.bias", "cls.seq_relationship.bias"),
]
TIED_KEYS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def heads_to_ours(heads: Dict[str, torch.Tensor], config: BertConfig, embeddings: torch.Tensor,
                  source: Path) -> Dict[str, Dict[str, torch.Tensor]]:
    """The MLM and NSP head tensors of a checkpoint, by head; a head is there whole or not at all.

    RETURNS: {"mlm": {...}, "nsp": {...}} with our names, for the heads present.
    """
    with torch.device("meta"):
        from ..pytorch.heads import BertForPreTraining

        shapes = {k: tuple(v.shape) for k, v in BertForPreTraining(config).state_dict().items()}
    found: Dict[str, Dict[str, torch.Tensor]] = {}
    for head, table in (("mlm", MLM_TABLE), ("nsp", NSP_TABLE)):
        present = [hf for _, hf in table if hf in heads]
        if not present:
            continue
        missing = [hf for _, hf in table if hf not in heads]
        if missing:
            raise CheckpointError(source, f"incomplete {head.upper()} head: missing tensor(s) {_names(missing)}")
        state = {}
        for ours, hf in table:
            tensor = heads[hf]
            if tuple(tensor.shape) != shapes[ours]:
                raise CheckpointError(source, f"tensor {hf} has shape {list(tensor.shape)}, expected {list(shapes[ours])}")
            if not tensor.dtype.is_floating_point:
                raise CheckpointError(source, f"tensor {hf} has dtype {tensor.dtype}, expected a float type")
            state[ours] = tensor.to(torch.float32)
        found[head] = state
    decoder = heads.get(TIED_KEYS[0])
    if decoder is not None and (decoder.shape != embeddings.shape or not torch.allclose(decoder.float(), embeddings)):
        raise CheckpointError(source, f"{TIED_KEYS[0]} differs from the word embeddings: only tied MLM decoders are supported")
    return found


def save_pretraining_checkpoint(
    folder: Union[str, Path], config: BertConfig, state: Dict[str, torch.Tensor], extra_config: Optional[dict] = None
) -> None:
    """Write our BertForPreTraining state as an HF BertForPreTraining folder (bert.* and cls.*)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = {k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")}
    tensors = ours_to_hf(encoder, config, prefix="bert.")
    for ours, hf in MLM_TABLE + NSP_TABLE:
        tensors[hf] = state[ours].contiguous()
    hf_config = {"architectures": ["BertForPreTraining"], "model_type": "bert",
                 "position_embedding_type": "absolute", "tie_word_embeddings": True,
                 **config.to_dict(), **(extra_config or {})}
    write_tensors(folder / "model.safetensors", tensors)
    write_json(folder / CONFIG_FILE, hf_config)
