"""Reading and writing tensor files: safetensors, and pytorch_model.bin without pickled code."""
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"


def find_weights(folder: Path) -> Path:
    """The weights file (or shard index) of an HF folder, safetensors first."""
    for name in (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        folder,
        f"no weights found: expected {SAFETENSORS} or {TORCH_BIN} (or a sharded "
        f"*.index.json) in this folder",
    )


def read_tensors(path: Path) -> Dict[str, torch.Tensor]:
    """Read every tensor of a weights file (or of the shards an index names) onto the CPU."""
    if path.name.endswith(".index.json"):
        index = _read_json(path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(path, "shard index has no 'weight_map' object")
        tensors: Dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = path.parent / shard
            if not shard_path.is_file():
                raise CheckpointError(shard_path, f"shard named in {path.name} is missing")
            tensors.update(read_tensors(shard_path))
        return tensors
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(path, f"not a readable safetensors file ({err})") from None
    return _read_torch_bin(path)


def _read_torch_bin(path: Path) -> Dict[str, torch.Tensor]:
    # weights_only=True: the unpickler accepts tensors and plain containers only,
    # so a file that would run code on load is refused before anything runs.
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            path,
            "refusing to unpickle: the file holds objects other than tensors "
            f"(torch.load with weights_only=True said: {str(err).splitlines()[0]}). "
            "Convert it to model.safetensors from a trusted environment.",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(path, f"not a readable PyTorch weights file ({err})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(path, "expected a dict of tensors (a state dict)")
    return state


def _read_json(path: Path):
    try:
        with path.open(encoding="utf8") as file_:
            return json.load(file_)
    except UnicodeDecodeError as err:
        raise CheckpointError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(path, f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None


@contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    A crash or an error inside the block leaves whatever was at `path` before untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with tmp_path.open("rb") as file_:
            os.fsync(file_.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_tensors(path: Path, tensors: Dict[str, torch.Tensor]) -> None:
    """Write tensors to a safetensors file atomically."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={"format": "pt"})


def write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf8")


read_json = _read_json
