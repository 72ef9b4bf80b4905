"""The student: a copy of the teacher pipeline whose `bert` encoder keeps N of its layers.

The student has the teacher's components, labels, tokenizer and heads (their weights
copied); its encoder is a BertModel of `layers` layers whose embeddings, pooler and layers
are copied from the teacher's. Student layer i (0-based) of N starts as teacher layer
floor(i * (L - 1) / (N - 1)): the teacher's first and last layers and evenly spaced ones
between (6 -> 3: teacher layers 0, 2, 5). The last is the one the heads were trained on; the
first kept the student 1.1 points of entity F closer to its wnut17 teacher than 1, 3, 5 (the
last layer of each block, DistilBERT's every other layer; docs/distillation.md). The same map
pairs the layers in the hidden-state loss.
"""
from pathlib import Path
from typing import List, Optional, Tuple

import spacy
from spacy.language import Language

from ..models.encoder import get_bert_shim
from ..pipeline.bert import BertTransformer
from ..pytorch.config import BertConfig
from ..pytorch.encoder import BertModel

ENCODER = "bert"


def layer_map(teacher_layers: int, student_layers: int) -> List[int]:
    """The teacher layer each student layer starts from (and is compared with), 0-based: the
    first, the last, and evenly spaced ones between; a one-layer student gets the last."""
    if student_layers == 1:
        return [teacher_layers - 1]
    return [i * (teacher_layers - 1) // (student_layers - 1) for i in range(student_layers)]


def load_teacher(path: Path) -> Language:
    """The teacher pipeline; a ValueError when it is no pipeline folder or has no `bert`
    component of this package (the one encoder that distillation knows how to shrink)."""
    path = Path(path)
    if not path.is_dir() or not (path / "config.cfg").is_file():
        raise ValueError(f"{path}: no such pipeline folder (a trained pipeline with config.cfg)")
    nlp = spacy.load(path)
    encoder_name(nlp, path)
    return nlp


def encoder_name(nlp: Language, source: object) -> str:
    """The name of the pipeline's one `bert` component, which its heads listen to."""
    encoders = [name for name, pipe in nlp.pipeline if isinstance(pipe, BertTransformer)]
    if len(encoders) != 1:
        found = "none" if not encoders else ", ".join(encoders)
        raise ValueError(f"{source}: distillation needs a pipeline with one spacy_bert_cls `bert` encoder "
                         f"(found {found}; its components: {', '.join(nlp.pipe_names) or 'none'})")
    if not nlp.get_pipe(encoders[0]).listening_components:
        raise ValueError(f"{source}: no component listens to '{encoders[0]}': there is nothing to distil")
    return encoders[0]


def teacher_bert(nlp: Language) -> BertModel:
    return get_bert_shim(nlp.get_pipe(encoder_name(nlp, "the pipeline")).model).windowed.bert


def check_sizes(teacher: BertModel, layers: int, width: Optional[int], source: object) -> None:
    """--layers fewer than the teacher's and at least 1; --width the teacher's (no other yet)."""
    have = teacher.config.num_hidden_layers
    if not 1 <= layers < have:
        raise ValueError(f"--layers {layers}: the student needs at least 1 layer and fewer than the teacher's "
                         f"{have} ({source})")
    if width is not None and width != teacher.config.hidden_size:
        raise ValueError(f"--width {width}: a student narrower than the teacher (hidden_size "
                         f"{teacher.config.hidden_size}) is not supported yet (it needs learned projections for the "
                         f"hidden-state loss, as TinyBERT); leave --width out to keep the teacher's")


def shrunk_bert(teacher: BertModel, layers: int) -> Tuple[BertModel, List[int]]:
    """A BertModel of `layers` layers initialised from `teacher` (embeddings, pooler, and the
    layers of layer_map), on its device. RETURNS (it, the map)."""
    mapping = layer_map(teacher.config.num_hidden_layers, layers)
    student = BertModel(BertConfig.from_dict({**teacher.config.to_dict(), "num_hidden_layers": layers}))
    student.embeddings.load_state_dict(teacher.embeddings.state_dict())
    student.pooler.load_state_dict(teacher.pooler.state_dict())
    for i, source in enumerate(mapping):
        student.layers[i].load_state_dict(teacher.layers[source].state_dict())
    return student.to(next(teacher.parameters()).device).train(teacher.training), mapping


def shrink_encoder(nlp: Language, layers: int) -> List[int]:
    """Replace the pipeline's encoder by shrunk_bert of it, in place; its config.cfg then
    says num_hidden_layers = layers. RETURNS the layer map."""
    name = encoder_name(nlp, "the pipeline")
    windowed = get_bert_shim(nlp.get_pipe(name).model).windowed
    windowed.bert, mapping = shrunk_bert(windowed.bert, layers)
    # An int8 calibration is the teacher's layers' own: the student starts in fp32.
    windowed.clear_int8_calibration()
    nlp.get_pipe(name).inference_dtype = "float32"
    pipe_config = nlp.get_pipe_config(name)
    pipe_config["inference_dtype"] = "float32"
    pipe_config["model"]["num_hidden_layers"] = layers
    return mapping


def make_student(teacher_path: Path, layers: int) -> Tuple[Language, List[int]]:
    """The teacher pipeline loaded afresh, its encoder shrunk (see shrink_encoder)."""
    nlp = spacy.load(teacher_path)
    return nlp, shrink_encoder(nlp, layers)
