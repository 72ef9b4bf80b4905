"""What a distillation checkpoint holds besides the student pipeline: the optimizer's
moments and the random state, so that a resumed run goes on as the killed one would have.

The checkpoint folders are pretraining's (pretraining.checkpoints: OUTPUT/checkpoint-NNNNNNNN
written atomically, the newest few kept, training_state.pt beside the model); here the
model is the student pipeline itself (nlp.to_disk), loadable with spacy.load.

thinc's optimizer keys its moments by (model node id, parameter name), and node ids are
handed out per process: they are saved under names that say where the node is in the
pipeline ("<component>/<index in model.walk()>"), the same in the process that resumes.
"""
import hashlib
import math
import random
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy
import torch
from spacy.language import Language
from thinc.api import Model, Optimizer, get_current_ops
from thinc.backends import get_array_ops

def input_digests(teacher: Path, data: Path, gold: Optional[Path]) -> Dict[str, Optional[str]]:
    """A SHA-256 of the teacher's folder (its files' names and bytes) and of the data files:
    a checkpoint records them, so that a run resumed after the teacher was retrained at the
    same path is refused (it went on from the old teacher's student, and `project.yml`'s
    all-distill packaged that, silently)."""
    return {"teacher": _digest(sorted(p for p in Path(teacher).rglob("*") if p.is_file()), Path(teacher)),
            "data": _digest([Path(data)], Path(data).parent),
            "gold": _digest([Path(gold)], Path(gold).parent) if gold is not None else None}


def _digest(files: List[Path], root: Path) -> str:
    sha = hashlib.sha256()
    for path in files:
        sha.update(str(path.relative_to(root)).encode("utf8") + b"\0")
        with path.open("rb") as file_:
            for block in iter(lambda: file_.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


STATS = ("mom1", "mom2")
COUNTS = ("nr_update", "last_seen")


def stable_keys(nlp: Language) -> Dict[int, str]:
    """{node or shim id: its place in the pipeline}, for every model node of every component."""
    keys: Dict[int, str] = {}
    for name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        for i, node in enumerate(model.walk()):
            keys.setdefault(node.id, f"{name}/{i}")
            for j, shim in enumerate(node.shims):
                keys.setdefault(shim.id, f"{name}/{i}/shim{j}")
    return keys


def optimizer_state(optimizer: Optimizer, nlp: Language) -> Dict[str, Any]:
    """The optimizer's moments and counts under stable names (tensors and ints only, which
    torch.load reads with weights_only=True). A moment is a numpy array (thinc's own step)
    or a torch tensor (models/adam.py's step of the encoder); "torch" names the latter."""
    keys = stable_keys(nlp)
    state: Dict[str, Any] = {"torch": []}
    for field in STATS:
        state[field] = {}
        for (node, param), value in getattr(optimizer, field).items():
            if node in keys:
                name = f"{keys[node]}|{param}"
                if isinstance(value, torch.Tensor):
                    state["torch"].append(name)
                    state[field][name] = value.detach().cpu().clone()
                else:
                    state[field][name] = torch.from_numpy(numpy.array(get_array_ops(value).to_numpy(value)))
    for field in COUNTS:
        state[field] = {f"{keys[node]}|{param}": int(v)
                        for (node, param), v in getattr(optimizer, field).items() if node in keys}
    return state


def load_optimizer_state(optimizer: Optimizer, nlp: Language, state: Dict[str, Any], device: torch.device) -> None:
    """Put a saved optimizer_state back, keyed by the ids of this process's `nlp`; torch
    moments on `device` (the encoder's), the others as the pipeline's arrays."""
    ids = {place: node for node, place in stable_keys(nlp).items()}
    as_torch = set(state.get("torch", ()))
    ops = get_current_ops()

    def key(name: str):
        place, _, param = name.rpartition("|")
        return ids[place], param

    for field in STATS:
        values = getattr(optimizer, field)
        for name, tensor in state[field].items():
            values[key(name)] = tensor.to(device) if name in as_torch else ops.asarray(tensor.numpy())
    for field in COUNTS:
        for name, count in state[field].items():
            getattr(optimizer, field)[key(name)] = count


def random_state() -> Dict[str, Any]:
    """torch's, Python's and numpy's random state (thinc's dropout draws from numpy's)."""
    name, keys, position, has_gauss, cached = numpy.random.get_state()
    return {"torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
            "numpy_rng": [name, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached],
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_random_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    random.setstate(state["python_rng"])
    name, keys, position, has_gauss, cached = state["numpy_rng"]
    numpy.random.set_state((name, keys.numpy().astype("uint32"), position, has_gauss, cached))


def resumed_layer_map(state: Dict[str, Any], teacher_layers: int, layers: int) -> List[int]:
    """The layer map a checkpoint's run (its training state: pretraining.checkpoints.read_state)
    started its student from and pairs the hidden states by, so that a resumed run keeps it.
    Checkpoints from before the map was saved used the last teacher layer of each of N equal
    blocks (1, 3, 5 for 6 -> 3)."""
    if "layer_map" in state:
        return [int(i) for i in state["layer_map"]]
    return [math.ceil((i + 1) * teacher_layers / layers) - 1 for i in range(layers)]
