"""Knowledge distillation: a trained pipeline's encoder into a smaller student (`spacy-bert-cls distill`).

A command with its own loop rather than a config for `spacy train`: distillation runs a
second pipeline, the teacher, on every batch and compares intermediate layers, and neither
fits spaCy's loop, which updates one pipeline from gold Examples and sees only its
components' losses. (A `spacy train` config would need a custom component holding the
teacher inside the student, which would then be saved and packaged with it.) The loop is
pretraining's pattern: settings checked before anything is written, checkpoints that a
killed run resumes from (--resume), a progress line per window, model-last at the end.

The parts: settings.py (what was asked), student.py (the student pipeline and the layer
map), data.py (texts, gold examples, batches), losses.py (soft targets, hidden states),
step.py (one step: teacher, student, update), resume.py (optimizer and random state in a
checkpoint), agreement.py (dev agreement with the teacher), progress.py (what is printed),
runner.py (the loop).
"""
import logging
from pathlib import Path
from typing import List, Optional

import spacy
from thinc.api import fix_random_seed

from ..data.texts import read_texts
from ..errors import DataError
from ..outputs import check_apart, check_folder_output
from ..pretraining.checkpoints import clean_temporary, latest_checkpoint, read_state
from ..pytorch.quantized import pin_fp32_backends
from .agreement import Agreement
from .data import read_gold
from .resume import resumed_layer_map
from .runner import Runner
from .settings import Settings
from .step import Distiller
from .student import check_sizes, encoder_name, layer_map, load_teacher, make_student, teacher_bert

__all__ = ["distill", "Settings", "layer_map"]

logger = logging.getLogger("spacy_bert_cls.distill")


def distill(settings: Settings, stop_after: Optional[int] = None) -> Optional[Path]:
    """Distil settings.teacher into a student of settings.layers layers; RETURNS the
    OUTPUT/model-last folder (None when `stop_after` stopped the run after that step, as
    a kill would: for tests).

    Every input is checked before anything is written: a bad one stops the run with a
    ValueError (or OSError) that says what is wrong, and leaves no output.
    """
    s = settings
    _check_output(s.output, s.teacher, [path for path in (s.data, s.gold, s.dev) if path], s.resume)
    teacher = load_teacher(s.teacher)
    check_sizes(teacher_bert(teacher), s.layers, s.width, s.teacher)
    checkpoint = _checkpoint_to_resume(s.output, s.resume)
    texts = read_texts(s.data, teacher)
    dev = read_texts(s.dev, teacher) if s.dev else None
    fix_random_seed(s.seed)
    if checkpoint is not None:
        state = read_state(checkpoint, 1)  # read once: the optimizer's moments are the size of the model
        # Before the teacher first predicts: its layers compute on the backends the run began with.
        pin_fp32_backends(state.get("fp32_backends", {}))
        student = spacy.load(checkpoint)
        mapping = resumed_layer_map(state, teacher_bert(teacher).config.num_hidden_layers, s.layers)
    else:
        student, mapping = make_student(s.teacher, s.layers)
    # The gold examples' docs share the student's vocab (its string store).
    gold = read_gold(s.gold, student) if s.gold else None
    if gold:
        _check_gold_labels(gold, student, s.gold)
    distiller = Distiller(teacher, student, mapping, temperature=s.temperature, hidden_weight=s.hidden_weight,
                          attention_weight=s.attention_weight, dropout=s.dropout)
    agreement = Agreement(teacher, dev, exclusive=_exclusive(student)) if dev else None
    runner = Runner(s, distiller, texts, gold, agreement)
    if checkpoint is not None:
        runner.load_state(checkpoint, state)
    s.output.mkdir(parents=True, exist_ok=True)
    return runner.run(stop_after=stop_after)


def _check_output(output: Path, teacher: Path, data: List[Path], resume: bool) -> None:
    """OUTPUT is a folder of its own: not a file, apart from every input (outputs.check_apart),
    not inside the teacher's folder either (the run's digest of the teacher would change with
    its own checkpoints), and without a model-last of some other run (one this run would replace)."""
    option = "OUTPUT (the folder for the checkpoints and model-last)"
    check_folder_output(output, option)
    check_apart(output, [teacher, *data], option)
    if Path(teacher).resolve() in output.resolve().parents:
        raise ValueError(f"{output}: OUTPUT would mix the student's files with the teacher's ({teacher}); "
                         f"choose a folder outside it")
    if (output / "model-last").exists() and latest_checkpoint(output) is None and not resume:
        raise ValueError(f"{output} already holds a model-last that no checkpoint of this command goes with: "
                         f"choose another output folder, or move it away")


def _check_gold_labels(examples, nlp, path: Path) -> None:
    """Gold examples none of whose labels (cats set to 1, entity labels) is one a head of the
    student predicts would add a loss of 0 at every step: an error, not a silent no-op."""
    encoder = nlp.get_pipe(encoder_name(nlp, "the student"))
    predicted = {label for name in encoder.listening_components for label in getattr(nlp.get_pipe(name), "labels", ())}
    found = {label for eg in examples for label, value in eg.reference.cats.items() if value}
    found |= {ent.label_ for eg in examples for ent in eg.reference.ents}
    if predicted and not found & predicted:
        raise DataError(path, None, f"none of its labels ({', '.join(sorted(found)[:10]) or 'none'}) is one the "
                                    f"student's heads predict ({', '.join(sorted(predicted))}): its losses would be 0; "
                                    f"give the gold data of the teacher's task")


def _checkpoint_to_resume(output: Path, resume: bool) -> Optional[Path]:
    """pretrain's convention: the newest checkpoint with `resume` (after cleaning up what a
    killed run left); an error without it when the folder holds checkpoints."""
    if resume:
        clean_temporary(output)
        found = latest_checkpoint(output)
        if found is None:
            logger.warning("--resume: no checkpoint in %s, starting from the beginning", output)
        return found
    if latest_checkpoint(output) is not None:
        raise ValueError(f"{output} already holds checkpoints: pass --resume to continue that run, or choose "
                         f"another output folder")
    return None


def _exclusive(nlp) -> bool:
    """False when a text classifier of the pipeline is multi-label."""
    from ..pipeline.textcat import BertTextCategorizer

    return not any(isinstance(p, BertTextCategorizer) and not p.exclusive for _, p in nlp.pipeline)
