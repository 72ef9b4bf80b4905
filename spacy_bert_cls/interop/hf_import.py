"""import-hf: an HF BERT classifier folder -> a spaCy pipeline.

`import_hf` turns an HF folder holding a `BertForSequenceClassification` or a
`BertForTokenClassification` into a pipeline of `bert` + `bert_textcat` / `bert_ner` with
the same labels and weights. Files only: config.json, model.safetensors and the tokenizer
files are read by our own code; `transformers` is never imported.

The heads are the same computation on both sides: HF's pooler -> dropout -> classifier is
our pooled [CLS] -> Dropout -> Linear (W [n_labels, hidden] = classifier.weight; read into
pytorch/heads.ClassificationHead, the head export-hf and model.onnx use too), and HF's
token classifier on each word's first piece is our tagger on each token's first piece
(reduce_first). Windows: an imported pipeline's window covers max_position_embeddings, so a
text that HF takes whole (up to 512 pieces) is one window here, with the same numbers; a
folder that export-hf wrote keeps the windows of the pipeline it came from.
The other direction is hf_export.py.
"""
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import torch

from ..checkpoint.hf import CONFIG_FILE, load_bert_checkpoint, read_hf_config
from ..checkpoint.io import read_json
from ..decoding import TagScheme
from ..errors import CheckpointError, blank_language
from ..pytorch.config import BertConfig
from ..pytorch.heads import ClassificationHead
from ..tags import TAG_ACTIONS
from .hf_format import (CLASSIFIER_KEYS, SEQUENCE_CLASSIFIER, TAGS_KEY, TASKS, THRESHOLDS_KEY, TOKEN_CLASSIFIER,
                        WINDOWS_KEY, atomic_folder, check_output)

logger = logging.getLogger(__name__)

_TAG = re.compile(r"^([BILUES])-(.+)$")
# The logit bias of a tag that the HF model does not have (never predicted).
_ABSENT_BIAS = -1.0e4


@dataclass
class HFHead:
    """The classification head of an HF folder, in our terms.

    task (str): "textcat" or "ner".
    labels (List[str]): class labels (textcat) or entity types (ner), in our order.
    classifier (ClassificationHead): dropout and our output layer's rows (weight
        [n_rows, hidden], bias [n_rows]): one per label (textcat) or per tag of
        TagScheme(labels, scheme).tags (ner).
    exclusive (bool): softmax (True) or a sigmoid per label.
    scheme (str): "BIO" or "BILUO" (ner).
    thresholds (Dict[str, float]): per-label decision thresholds (multi-label).
    dropout (float): the classifier's dropout.
    absent_tags (List[str]): our tags that the HF model lacks (never predicted).
    """

    task: str
    labels: List[str]
    classifier: ClassificationHead
    exclusive: bool = True
    scheme: str = "BIO"
    thresholds: Dict[str, float] = field(default_factory=dict)
    dropout: float = 0.1
    absent_tags: List[str] = field(default_factory=list)


def read_hf_head(folder: Union[str, Path], heads: Dict[str, torch.Tensor], config: BertConfig,
                 task: Optional[str] = None) -> HFHead:
    """Read the classifier of an HF BERT folder: its task, labels and weights.

    heads (Dict[str, Tensor]): the head tensors of the folder (load_bert_checkpoint).
    task (Optional[str]): "textcat" or "ner"; None: from config.json's architectures.
    """
    path = Path(folder) / CONFIG_FILE
    data = read_json(path)
    task = task or _task(data, path)
    missing = [k for k in CLASSIFIER_KEYS if k not in heads]
    if missing:
        raise CheckpointError(path.parent, f"no classifier weights ({', '.join(missing)} missing): "
                                           f"not a fine-tuned classification checkpoint")
    weight, bias = heads["classifier.weight"].float(), heads["classifier.bias"].float()
    names = _id2label(data, path)
    if tuple(weight.shape) != (len(names), config.hidden_size) or tuple(bias.shape) != (len(names),):
        raise CheckpointError(
            path.parent, f"classifier.weight has shape {list(weight.shape)} and classifier.bias "
                         f"{list(bias.shape)}, expected [{len(names)}, {config.hidden_size}] and "
                         f"[{len(names)}] for the {len(names)} labels of id2label in {CONFIG_FILE}")
    dropout = data.get("classifier_dropout")
    dropout = float(config.hidden_dropout_prob if dropout is None else dropout)
    if task == "textcat":
        return _textcat_head(data, path, names, weight, bias, dropout)
    return _ner_head(data, path, names, weight, bias, dropout)


def _task(data: dict, path: Path) -> str:
    architectures = data.get("architectures") or []
    found = [TASKS[a] for a in architectures if a in TASKS]
    if len(set(found)) != 1:
        raise CheckpointError(
            path, f"architectures is {architectures!r}: expected {SEQUENCE_CLASSIFIER} or "
                  f"{TOKEN_CLASSIFIER} (or say which with --task textcat / --task ner)")
    return found[0]


def _id2label(data: dict, path: Path) -> List[str]:
    id2label = data.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise CheckpointError(path, "no id2label: the labels of the classifier's rows are unknown")
    try:
        by_id = {int(k): v for k, v in id2label.items()}
    except ValueError:
        raise CheckpointError(path, f"id2label keys must be row numbers, got {sorted(id2label)!r}") from None
    if sorted(by_id) != list(range(len(by_id))) or not all(isinstance(v, str) and v for v in by_id.values()):
        raise CheckpointError(path, "id2label must name every row 0..n-1 with a non-empty string")
    return [by_id[i] for i in range(len(by_id))]


def _textcat_head(data, path, names, weight, bias, dropout) -> HFHead:
    problem = data.get("problem_type")
    if problem == "regression" or (problem is None and len(names) == 1):
        raise CheckpointError(path, "a regression (single-output) model: only classifiers can be imported")
    if problem not in (None, "single_label_classification", "multi_label_classification"):
        raise CheckpointError(path, f"unknown problem_type {problem!r}")
    if len(set(names)) != len(names):
        raise CheckpointError(path, f"id2label names a label twice: {names}")
    exclusive = problem != "multi_label_classification"
    thresholds = data.get(THRESHOLDS_KEY) or {}
    if not exclusive and thresholds:
        unknown = set(thresholds) - set(names)
        if unknown or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in thresholds.values()):
            raise CheckpointError(path, f"{THRESHOLDS_KEY} must map labels of id2label to numbers in [0, 1]")
    return HFHead("textcat", names, ClassificationHead.from_weights(weight, bias, dropout), exclusive=exclusive,
                  thresholds={k: float(v) for k, v in thresholds.items()} if not exclusive else {},
                  dropout=dropout)


def parse_tags(names: List[str], path: Union[str, Path]) -> Tuple[str, List[str], Dict[str, int]]:
    """HF tag names (IOB2/BIO, BIOES or BILUO) -> (our scheme, entity labels, our tag -> HF row).

    Entity labels keep the order of their first tag in id2label.
    """
    labels: List[str] = []
    rows: Dict[str, int] = {}
    prefixes = set()
    unreadable = []
    for row, name in enumerate(names):
        if name == "O":
            tag = "O"
        else:
            match = _TAG.match(name)
            if match is None:
                unreadable.append(name)
                continue
            prefix, label = TAG_ACTIONS[match.group(1)], match.group(2)  # BIOES's E-/S- are L-/U-
            prefixes.add(prefix)
            if label not in labels:
                labels.append(label)
            tag = f"{prefix}-{label}"
        if tag in rows:
            raise CheckpointError(path, f"id2label has tag {name!r} twice (rows {rows[tag]} and {row})")
        rows[tag] = row
    if unreadable:
        raise CheckpointError(path, f"id2label has tags that are neither 'O' nor B-/I-/L-/U-/E-/S- "
                                    f"plus a type: {unreadable[:8]}")
    if "O" not in rows:
        raise CheckpointError(path, "id2label has no 'O' tag")
    if not labels:
        raise CheckpointError(path, "id2label has no entity tags (B-X, I-X, ...)")
    scheme = "BILUO" if prefixes & {"L", "U"} else "BIO"
    return scheme, labels, rows


def _ner_head(data, path, names, weight, bias, dropout) -> HFHead:
    own_tags = data.get(TAGS_KEY)
    if own_tags is not None:
        # Our own export: the rows' real tags (BILUO rows are named B-/I- for HF's pipeline).
        if not isinstance(own_tags, list) or len(own_tags) != len(names):
            raise CheckpointError(path, f"{TAGS_KEY} must list one tag per row of id2label")
        names = own_tags
    scheme, labels, rows = parse_tags(names, path)
    tags = TagScheme(labels, scheme).tags
    our_weight = torch.zeros((len(tags), weight.shape[1]))
    our_bias = torch.full((len(tags),), _ABSENT_BIAS)
    absent = []
    for i, tag in enumerate(tags):
        if tag in rows:
            our_weight[i], our_bias[i] = weight[rows[tag]], bias[rows[tag]]
        else:
            absent.append(tag)
    if absent:
        logger.warning("%s: id2label has no %s; those tags are never predicted", path, ", ".join(absent))
    return HFHead("ner", labels, ClassificationHead.from_weights(our_weight, our_bias, dropout), scheme=scheme,
                  dropout=dropout, absent_tags=absent)


def import_hf(model_dir: Union[str, Path], output_dir: Optional[Union[str, Path]] = None, *, lang: str = "en",
              task: Optional[str] = None, decoder: str = "constrained", tokenizer: Optional[Union[str, Path]] = None,
              overwrite: bool = False):
    """An HF BertForSequenceClassification / BertForTokenClassification folder -> a spaCy pipeline.

    model_dir: the HF folder (config.json with id2label, model.safetensors or pytorch_model.bin,
        tokenizer.json or vocab.txt).
    output_dir: where to save the pipeline (written whole or not at all); None: not saved.
    lang (str): the spaCy language of the pipeline's tokenizer.
    task (Optional[str]): "textcat" or "ner"; None: from config.json's architectures.
    decoder (str): bert_ner's decoder, "constrained" or "hf_first".
    tokenizer: a tokenizer.json / vocab.txt (or a folder with one) to use instead of
        model_dir's own.
    RETURNS (Language): the pipeline, `bert` + `bert_textcat` or `bert` + `bert_ner`.
    """
    model_dir = Path(model_dir)
    if task not in (None, "textcat", "ner"):
        raise ValueError(f"task must be 'textcat' or 'ner', got {task!r}")
    from ..pipeline.ner import DECODERS

    if decoder not in DECODERS:
        raise ValueError(f"--decoder {decoder!r}: bert_ner's decoder is one of {', '.join(DECODERS)}")
    if output_dir is not None:
        check_output(output_dir, [model_dir] + ([tokenizer] if tokenizer is not None else []), overwrite)
    read_hf_config(model_dir)  # config.json first: its errors are the clearest
    data = read_json(model_dir / CONFIG_FILE)
    task = task or _task(data, model_dir / CONFIG_FILE)
    with _no_pooler_warning(task == "ner"):
        config, state, heads = load_bert_checkpoint(model_dir)
        if task == "textcat" and "pooler.dense.weight" not in state:
            raise CheckpointError(model_dir, "no pooler weights (bert.pooler.*): BertForSequenceClassification "
                                             "classifies the pooled [CLS], so they are needed")
        head = read_hf_head(model_dir, heads, config, task)
        windows = _windows(data, config, model_dir / CONFIG_FILE)
        nlp = _build_pipeline(head, config, windows, lang, decoder, model_dir, tokenizer)
    nlp.meta["description"] = f"Imported from {model_dir.name} ({head.task}, spacy-bert-cls import-hf)"
    if output_dir is not None:
        with atomic_folder(output_dir, overwrite=overwrite) as tmp:
            nlp.to_disk(tmp)
    return nlp


def _windows(data: dict, config: BertConfig, path: Path) -> Dict[str, object]:
    """The bert component's window settings: those our export wrote (WINDOWS_KEY), else one
    window of everything HF's tokenizer keeps (it truncates at max_position_embeddings)."""
    window = config.max_position_embeddings
    default = {"window_size": window, "stride": max(1, (window - 2) * 3 // 4)}
    saved = data.get(WINDOWS_KEY)
    if saved is None:
        return default
    if (not isinstance(saved, dict) or not set(saved) <= {"window_size", "stride", "overlap"}
            or not all(isinstance(saved.get(k), int) for k in ("window_size", "stride"))):
        raise CheckpointError(path, f"{WINDOWS_KEY} is not {{\"window_size\": int, \"stride\": int, \"overlap\": "
                                    f"str}} (export-hf writes it): remove it to use one window of {window} pieces")
    return dict(saved)


def _build_pipeline(head: HFHead, config: BertConfig, windows: Dict[str, object], lang: str, decoder: str,
                    model_dir: Path, tokenizer: Optional[Union[str, Path]]):
    from spacy.training import Example

    nlp = blank_language(lang)
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1",
                                           **config.to_dict(), **windows}})
    width = config.hidden_size
    if head.task == "textcat":
        name = "bert_textcat"
        nlp.add_pipe(name, config={"model": {
            "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": head.exclusive,
            "dropout": head.dropout,
            "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": width, "reduce": "pooler"}}})
        init = {"labels": head.labels, **({"thresholds": head.thresholds} if head.thresholds else {})}
    else:
        name = "bert_ner"
        nlp.add_pipe(name, config={"scheme": head.scheme, "decoder": decoder, "model": {
            "@architectures": "spacy-bert-cls.BertTagger.v1", "dropout": head.dropout,
            "tok2vec": {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width,
                        "pooling": {"@layers": "reduce_first.v1"}}}})
        init = {"labels": head.labels}
    components = nlp.config["initialize"]["components"]
    components["bert"] = {"loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(model_dir),
                                     "vocab": str(tokenizer) if tokenizer is not None else None}}
    components[name] = init
    sample = nlp.make_doc("a")
    nlp.initialize(lambda: [Example(sample, sample)])
    output_layer = nlp.get_pipe(name).model.get_ref("output_layer")
    output_layer.set_param("W", output_layer.ops.asarray2f(head.classifier.weight.detach().numpy()))
    output_layer.set_param("b", output_layer.ops.asarray1f(head.classifier.bias.detach().numpy()))
    # The pipeline holds its weights now; its config no longer points at the folder.
    components["bert"]["loader"]["path"] = None
    components["bert"]["loader"]["vocab"] = None
    return nlp


@contextmanager
def _no_pooler_warning(active: bool) -> Iterator[None]:
    # BertForTokenClassification has no pooler, and a tagger does not use it: the
    # checkpoint reader's warning about it would only mislead.
    def keep(record: logging.LogRecord) -> bool:
        return "no pooler weights" not in record.getMessage()

    checkpoint_logger = logging.getLogger("spacy_bert_cls.checkpoint.hf")
    if active:
        checkpoint_logger.addFilter(keep)
    try:
        yield
    finally:
        checkpoint_logger.removeFilter(keep)

