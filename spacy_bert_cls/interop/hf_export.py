"""export-hf: a pipeline's bert_textcat / bert_ner (with its encoder) -> an HF folder.

`export_hf` writes a trained `bert_textcat` as a `BertForSequenceClassification` folder, a
`bert_ner` as a `BertForTokenClassification` one, optionally with model.onnx
(interop/onnx.py). Files only: config.json, model.safetensors and the tokenizer files are
written by our own code; `transformers` is never imported. The other direction, and how
the two heads correspond, is hf_import.py.
"""
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..checkpoint.hf import CONFIG_FILE, ours_to_hf
from ..checkpoint.io import write_json, write_tensors
from ..decoding import hf_tag_names
from ..errors import CheckpointError
from ..pytorch.config import BertConfig
from ..pytorch.heads import ClassificationHead
from .hf_format import (SEQUENCE_CLASSIFIER, TAGS_KEY, THRESHOLDS_KEY, TOKEN_CLASSIFIER, WINDOWS_KEY, atomic_folder,
                        check_output, classifier_tensors)


def export_hf(pipeline, output_dir: Union[str, Path], component: Optional[str] = None,
              overwrite: bool = False, onnx: bool = False) -> Path:
    """A trained bert_textcat or bert_ner (with its encoder) -> an HF folder.

    The folder (config.json, model.safetensors, tokenizer.json, vocab.txt,
    tokenizer_config.json, special_tokens_map.json) loads with
    AutoModelForSequenceClassification / AutoModelForTokenClassification, AutoTokenizer and
    transformers.pipeline. A multi-label classifier's thresholds go to config.json under
    "spacy_bert_cls_thresholds"; a BILUO tagger's rows are named as HF's pipeline reads
    them (U- as B-, L- as I-), with the real tags under "spacy_bert_cls_tags"; the encoder's
    windows go under "spacy_bert_cls_windows", for import-hf to give them back.

    pipeline (Union[str, Path, Language]): a pipeline or its folder.
    output_dir: the folder to write, whole or not at all.
    component (Optional[str]): the head to export; None: the pipeline's only one.
    onnx (bool): also write model.onnx, the same model for ONNX Runtime (interop/onnx.py).
    RETURNS (Path): output_dir.
    """
    import spacy

    from ..models.pieces import get_piece_tokenizer
    from ..models.encoder import get_bert_shim
    from ..pipeline.ner import BertEntityRecognizer
    from ..tokenization.wordpiece import save_piece_tokenizer, tokenizer_lowercases

    source = str(pipeline) if isinstance(pipeline, (str, Path)) else "the pipeline"
    check_output(output_dir, [pipeline] if isinstance(pipeline, (str, Path)) else [], overwrite)
    if isinstance(pipeline, (str, Path)) and Path(pipeline).is_dir() and not (Path(pipeline) / "config.cfg").is_file():
        hf = (Path(pipeline) / CONFIG_FILE).is_file()
        raise CheckpointError(source, "is an HF folder (config.json), not a spaCy pipeline: import-hf turns it into "
                                      "one" if hf else "not a spaCy pipeline folder (no config.cfg)")
    nlp = spacy.load(pipeline) if isinstance(pipeline, (str, Path)) else pipeline
    component, head = _export_head(nlp, component, source)
    listener = head.model.get_ref("tok2vec")
    encoder_model = _head_encoder(nlp, component, listener, source)
    bert = get_bert_shim(encoder_model).windowed.bert
    config = bert.config
    state = {k: v.detach().float() for k, v in bert.state_dict().items()}
    classifier = _classifier_head(head)
    extra, tensors = _hf_config(head, component, listener, config, state, source)
    windowed = encoder_model.get_ref("encoder")
    extra[WINDOWS_KEY] = {key: windowed.attrs[key] for key in ("window_size", "stride", "overlap")}
    tensors.update(classifier_tensors(classifier))
    tokenizer = get_piece_tokenizer(encoder_model.get_ref("pieces"))
    with atomic_folder(output_dir, overwrite=overwrite) as tmp:
        write_tensors(tmp / "model.safetensors", tensors)
        write_json(tmp / CONFIG_FILE, extra)
        save_piece_tokenizer(tokenizer, tmp, tokenizer_lowercases(tokenizer),
                             model_max_length=config.max_position_embeddings)
        if onnx:
            from .onnx import ONNX_FILE, write_onnx

            write_onnx(tmp / ONNX_FILE, bert, classifier, token_level=isinstance(head, BertEntityRecognizer))
    return Path(output_dir)


def _export_head(nlp, component: Optional[str], source: str):
    """(name, component) of the bert_textcat / bert_ner to export: the one named, or the
    pipeline's only one; a CheckpointError that says what the pipeline has otherwise."""
    from ..pipeline.ner import BertEntityRecognizer
    from ..pipeline.textcat import BertTextCategorizer

    heads = {n: p for n, p in nlp.pipeline if isinstance(p, (BertTextCategorizer, BertEntityRecognizer))}
    if not heads:
        found = ", ".join(f"{n} ({nlp.get_pipe_meta(n).factory})" for n in nlp.pipe_names) or "no components"
        raise CheckpointError(source, f"export-hf writes a bert_textcat (as BertForSequenceClassification) or a "
                                      f"bert_ner (as BertForTokenClassification) with its encoder; this pipeline has "
                                      f"{found}. spaCy's own textcat and ner heads have no transformers counterpart: "
                                      f"train a bert_textcat / bert_ner (configs/bert_textcat.cfg, configs/bert_ner.cfg)")
    if component is None:
        if len(heads) != 1:
            raise CheckpointError(source, f"{len(heads)} bert_textcat/bert_ner components "
                                          f"({', '.join(heads)}): name one with --component")
        component = next(iter(heads))
    if component not in heads:
        raise CheckpointError(source, f"no bert_textcat or bert_ner component named {component!r} "
                                      f"(there are: {', '.join(heads)})")
    return component, heads[component]


def _head_encoder(nlp, component: str, listener, source: str):
    """The encoder (thinc Model) whose states `component`'s listener reads: its own copy
    (replace_listeners, spacy assemble) or the pipeline's bert component it listens to."""
    from ..models.inline_listener import InlineBertListener
    from ..pipeline.bert import BertTransformer

    if isinstance(listener, InlineBertListener):
        return listener.get_ref("encoder")
    encoders = {n: p for n, p in nlp.pipeline if isinstance(p, BertTransformer)}
    upstream = listener.upstream_name
    if upstream == "*" and len(encoders) == 1:
        upstream = next(iter(encoders))
    if upstream not in encoders:
        raise CheckpointError(source, f"'{component}' listens to {listener.upstream_name!r}; "
                                      f"bert components: {', '.join(encoders) or 'none'}")
    return encoders[upstream].model


def _classifier_head(head) -> ClassificationHead:
    """The head's dropout and output layer (thinc's Linear: W [n_rows, hidden], b) as the torch
    head that HF's classifier.weight / classifier.bias and model.onnx hold."""
    output_layer = head.model.get_ref("output_layer")
    weight = torch.as_tensor(output_layer.ops.to_numpy(output_layer.get_param("W")), dtype=torch.float32)
    bias = torch.as_tensor(output_layer.ops.to_numpy(output_layer.get_param("b")), dtype=torch.float32)
    return ClassificationHead.from_weights(weight, bias, dropout=_dropout(head.model))


def _hf_config(head, component: str, listener, config: BertConfig, state: Dict[str, torch.Tensor],
               source: str) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """(config.json's contents, the encoder's tensors by HF name) for `head`; a
    CheckpointError if the head computes what the HF architecture does not."""
    from ..pipeline.textcat import BertTextCategorizer

    extra = {"model_type": "bert", "position_embedding_type": "absolute", **config.to_dict(),
             "classifier_dropout": _dropout(head.model)}
    if isinstance(head, BertTextCategorizer):
        names = _textcat_fields(head, component, listener, source, extra)
        tensors = ours_to_hf(state, config, prefix="bert.")
    else:
        names = _ner_fields(head, component, listener, source, extra)
        # BertForTokenClassification has no pooler.
        tensors = {k: v for k, v in ours_to_hf(state, config, prefix="bert.").items()
                   if not k.startswith("bert.pooler.")}
    extra["id2label"] = {str(i): n for i, n in enumerate(names)}
    extra["label2id"] = {n: i for i, n in reversed(list(enumerate(names)))}  # first row of a name
    return extra, tensors


def _textcat_fields(head, component: str, listener, source: str, extra: dict) -> List[str]:
    """Add a bert_textcat's BertForSequenceClassification keys to `extra`; RETURNS its row names."""
    if listener.attrs.get("output") != "pooler":
        raise CheckpointError(source, f"'{component}' classifies the {listener.attrs.get('output')!r} "
                                      f"vector; BertForSequenceClassification classifies the pooled [CLS] "
                                      f"(BertDocListener reduce = \"pooler\")")
    extra["architectures"] = [SEQUENCE_CLASSIFIER]
    extra["problem_type"] = "single_label_classification" if head.exclusive else "multi_label_classification"
    if not head.exclusive:
        extra[THRESHOLDS_KEY] = head.thresholds
    return list(head.labels)


def _ner_fields(head, component: str, listener, source: str, extra: dict) -> List[str]:
    """Add a bert_ner's BertForTokenClassification keys to `extra`; RETURNS its rows' HF tag names."""
    pooling = listener.layers[0].name
    if pooling != "reduce_first":
        raise CheckpointError(source, f"'{component}' pools each token's pieces with {pooling}; "
                                      f"BertForTokenClassification reads each word's first piece "
                                      f"(BertListener pooling = reduce_first.v1, as configs/bert_ner.cfg)")
    names = hf_tag_names(head.scheme)
    extra["architectures"] = [TOKEN_CLASSIFIER]
    if names != head.scheme.tags:
        extra[TAGS_KEY] = list(head.scheme.tags)
    return names


def _dropout(model) -> float:
    for node in model.walk():
        if node.name == "dropout":
            return float(node.attrs["dropout_rate"])
    return 0.0
