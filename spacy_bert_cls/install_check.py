"""Check a packaged pipeline: install its wheel in a fresh virtual environment, load it there
with no network, and compare its predictions with the pipeline it was packaged from."""
import json
import os
import shutil
# subprocess: python -m venv, pip and python, run with argument lists, never through a shell.
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import spacy

from .data.readers import create_corpus_reader_v1

PathLike = Union[str, Path]

# Run inside the fresh environment: any attempt to open a network connection fails loudly.
_CHILD = r"""
import json, socket, sys
def _no_network(*args, **kwargs):
    raise RuntimeError("install-check: the installed pipeline tried to use the network")
socket.socket.connect = _no_network
socket.create_connection = _no_network
import spacy
name, texts_path, out_path = sys.argv[1:4]
nlp = spacy.load(name)
texts = json.load(open(texts_path, encoding="utf8"))
out = []
for doc in nlp.pipe(texts):
    out.append({"cats": doc.cats, "ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents]})
json.dump({"predictions": out, "pipe_names": nlp.pipe_names}, open(out_path, "w", encoding="utf8"))
"""


def predictions(nlp, texts: Sequence[str]) -> List[Dict]:
    return [{"cats": doc.cats, "ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents]}
            for doc in nlp.pipe(texts)]


def _run(command: List[str], env: Optional[dict] = None) -> None:
    # `command` is built in this module from fixed programs and the user's own paths; no shell.
    result = subprocess.run(command, capture_output=True, text=True, env=env)  # nosec B603
    if result.returncode:
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-3000:]}"
                           f"\n{result.stderr[-3000:]}")


def install_check(wheel: PathLike, pipeline: PathLike, data: Sequence[PathLike], *, venv: Optional[PathLike] = None,
                  package_source: Optional[str] = None, limit: int = 200, tolerance: float = 1e-5) -> Dict:
    """Install `wheel` in a new virtual environment and compare its predictions with `pipeline`'s.

    package_source: what pip installs for spacy_bert_cls (default: this checkout's folder
        when it is one, else spacy_bert_cls==<this version>).
    RETURNS: a summary (times, number of texts compared, mismatches); raises if any differ.
    """
    import spacy_bert_cls

    wheel, pipeline = Path(wheel), Path(pipeline)
    if not wheel.is_file():
        raise FileNotFoundError(f"{wheel}: no such wheel")
    if venv is not None and Path(venv).is_dir() and any(Path(venv).iterdir()) \
            and not (Path(venv) / "pyvenv.cfg").is_file():
        raise ValueError(f"{venv}: --venv is a folder that holds other files, not a virtual environment: give a "
                         f"new or empty folder (or an environment made before)")
    if package_source is not None and package_source.startswith((".", "/", "~")) \
            and not Path(package_source).expanduser().exists():
        raise FileNotFoundError(f"{package_source}: --package-source is a path that does not exist")
    nlp = spacy.load(pipeline)
    texts: List[str] = []
    for path in data:
        texts.extend(eg.reference.text for eg in create_corpus_reader_v1(path, limit=limit)(nlp))
    expected = predictions(nlp, texts)
    root = Path(spacy_bert_cls.__file__).resolve().parents[1]
    if package_source is None:
        package_source = str(root) if (root / "setup.py").is_file() else f"spacy_bert_cls=={spacy_bert_cls.__version__}"
    workdir = Path(tempfile.mkdtemp(prefix="install-check-"))
    try:
        return _check_in(workdir, Path(venv) if venv is not None else workdir / "venv", wheel, pipeline,
                         package_source, texts, expected, tolerance)
    finally:
        # The temporary environment (about 1.3 GB with torch) goes; one given with --venv stays.
        shutil.rmtree(workdir, ignore_errors=True)


def _check_in(workdir: Path, venv: Path, wheel: Path, pipeline: Path, package_source: str, texts: List[str],
              expected: List[Dict], tolerance: float) -> Dict:
    import torch

    timings = {}
    start = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    # torch first, the same release as here: an open requirement would fetch a CUDA build.
    _run([python, "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}"])
    _run([python, "-m", "pip", "install", "-q", package_source])
    _run([python, "-m", "pip", "install", "-q", str(wheel)])
    timings["install_seconds"] = round(time.perf_counter() - start, 1)
    texts_path = workdir / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf8")
    out_path = workdir / "predictions.json"
    name = wheel.name.split("-")[0]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_NO_INDEX="1")
    start = time.perf_counter()
    _run([python, "-c", _CHILD, name, str(texts_path), str(out_path)], env=env)
    timings["load_and_predict_seconds"] = round(time.perf_counter() - start, 1)
    got = json.loads(out_path.read_text(encoding="utf8"))["predictions"]
    mismatches = []
    for i, (a, b) in enumerate(zip(expected, got)):
        same_cats = a["cats"].keys() == b["cats"].keys() and all(
            abs(a["cats"][k] - b["cats"][k]) <= tolerance for k in a["cats"])
        if not same_cats or a["ents"] != b["ents"]:
            mismatches.append({"text": texts[i], "expected": a, "installed": b})
    summary = {"wheel": str(wheel), "pipeline": str(pipeline), "texts": len(texts),
               "venv": None if venv.is_relative_to(workdir) else str(venv),
               "mismatches": len(mismatches), **timings}
    if mismatches or len(got) != len(expected):
        raise PredictionsDiffer(f"the installed pipeline differs on {len(mismatches)} of {len(texts)} texts; "
                                f"first: {json.dumps(mismatches[:1])[:2000]}",
                                {**summary, "first_mismatches": mismatches[:20]})
    return summary


class PredictionsDiffer(AssertionError):
    """The installed pipeline predicts otherwise than the folder; `summary` is the report
    (install_check's, with the first 20 differing texts), which the command still writes."""

    def __init__(self, message: str, summary: Dict) -> None:
        super().__init__(message)
        self.summary = summary
