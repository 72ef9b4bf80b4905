"""Reading and writing tensor files: safetensors, and pytorch_model.bin without pickled code."""
import ctypes
import errno
import json
import math
import os
# pickle: only for pickle.UnpicklingError; nothing here unpickles (torch.load has weights_only=True).
import pickle  # nosec B403
import shutil
import struct
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

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


# safetensors' dtype names (its format's specification)
_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool}
_LITTLE_ENDIAN = sys.byteorder == "little"  # safetensors' byte order


def tensor_views(data: bytes) -> Dict[str, torch.Tensor]:
    """The tensors of safetensors bytes as read-only views of `data`, for copying into a
    module (load_state_dict). safetensors' own `load` copies every tensor out of the bytes
    first: one more copy of the model in memory while a pipeline loads (+86 MiB of a 907
    MiB peak for MiniLM). Bytes that are not well-formed safetensors go to that loader,
    whose errors say what is wrong; so does everything on a big-endian machine (safetensors
    stores little-endian, and its loader swaps the bytes)."""
    if _LITTLE_ENDIAN:
        try:
            return _views(memoryview(data))
        except (ValueError, KeyError, TypeError, struct.error):
            pass  # not chained to safetensors' own error below: that one says what is wrong
    return load_safetensors(data)


def _views(data: memoryview) -> Dict[str, torch.Tensor]:
    """safetensors' layout: an 8-byte little-endian header length, a JSON header of
    {name: {dtype, shape, data_offsets}}, then the tensors' bytes."""
    (size,) = struct.unpack("<Q", data[:8])
    if 8 + size > len(data):
        raise ValueError("header past the end")
    header = json.loads(bytes(data[8:8 + size]))
    header.pop("__metadata__", None)
    body = data[8 + size:]
    views = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not writable": nothing writes to them
        for name, entry in header.items():
            dtype, shape = _SAFETENSORS_DTYPES[entry["dtype"]], [int(n) for n in entry["shape"]]
            start, end = (int(n) for n in entry["data_offsets"])
            numel = math.prod(shape)
            if not 0 <= start <= end <= len(body) or end - start != numel * dtype.itemsize:
                raise ValueError(f"{name}: offsets do not match its shape")
            views[name] = (torch.frombuffer(body[start:end], dtype=dtype).view(shape) if numel
                           else torch.empty(shape, dtype=dtype))
    return views


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


# Fault injection for the stress suite only: when set, every atomic write sleeps this many
# seconds just before its file or folder is moved into place, so that a test can kill the
# process while a write is under way. Unset, it costs one dictionary look-up.
WRITE_DELAY_ENV = "SPACY_BERT_CLS_TEST_WRITE_DELAY"


def _test_write_delay() -> None:
    delay = os.environ.get(WRITE_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def _plain_permissions(path: Path, mode: int) -> None:
    # mkstemp / mkdtemp make private entries (0600 / 0700); give the permissions a plain
    # open / mkdir would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


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
        _plain_permissions(tmp_path, 0o666)
        _test_write_delay()
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE).

    RETURNS (bool): False where the system or file system cannot (then nothing changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _previous(path: Path) -> Path:
    return path.with_name(f".{path.name}.previous")


def recover_dir(path: Union[str, Path]) -> None:
    """Finish or undo a folder swap that a killed process left half done (the two-rename
    fallback of `atomic_dir`), and remove the temporary folders of dead writers."""
    path = Path(path)
    previous = _previous(path)
    if previous.exists():
        if path.exists():
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(previous, path)
    for stale in path.parent.glob(f".{path.name}.pid*.tmp"):
        pid = stale.name[len(path.name) + 5:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


@contextmanager
def atomic_dir(path: Union[str, Path]) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; when the block succeeds, the folder
    takes the place of `path` in one step, and whatever was there before is removed.

    An error inside the block, or the process being killed at any moment, leaves `path` as
    it was: the old folder whole, or the new one whole, never a mix. On Linux the swap is
    one renameat2(RENAME_EXCHANGE); elsewhere it is two renames, and a kill between them
    leaves the old folder at `.NAME.previous`, which the next `atomic_dir` (or
    `recover_dir`) puts back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        _plain_permissions(tmp, 0o777)
        _test_write_delay()
        if not path.exists():
            os.replace(tmp, path)
        elif not exchange_paths(tmp, path):
            previous = _previous(path)
            os.replace(path, previous)
            os.replace(tmp, path)
            shutil.rmtree(previous, ignore_errors=True)
        # After an exchange, `tmp` holds the old folder (or file): removed below.
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink(missing_ok=True)


def write_tensors(path: Path, tensors: Dict[str, torch.Tensor]) -> None:
    """Write tensors to a safetensors file atomically."""
    data = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata={"format": "pt"})
    write_bytes(path, data)


def write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to a file atomically. Serialized in memory first, so that a full disk is
    an OSError (ENOSPC) from Python's own write, not a library's garbled message."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf8")


read_json = _read_json
