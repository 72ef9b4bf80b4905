"""Loading opens no network connection, and a packaged pipeline names no path of the
machine that built it.

A fresh process blocks every socket (connect, connect_ex, create_connection, getaddrinfo)
and unsets HF_HUB_OFFLINE, then loads a checkpoint, initializes a pipeline from it, loads
the trained pipeline and the `spacy package` output, and runs them: any attempt to reach
the network fails the test. Without the anchors' entry points, no HTTP or hub library is
imported beyond what `import spacy` brings (its CLI imports requests). spaCy itself imports
every installed package's `spacy_factories` entry point when it builds a pipeline, so where
spacy-transformers (one of our test-only anchors) is installed, spaCy imports transformers
for it: that run checks the sockets only.
"""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from spacy_bert_cls.saving import save_pipeline
from spacy_bert_cls.testing import ANCHORS, PRELUDE, TINY_SIZES, tiny_vocab, write_tiny_checkpoint

from ..pipeline.test_heads import TRAIN, make_nlp, train

ROOT = Path(__file__).resolve().parents[2]

BLOCK_SOCKETS = '''
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args!r}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
'''

LOAD_EVERYTHING = '''
import importlib, json, sys
from pathlib import Path
args = json.loads(sys.argv[1])
import spacy
# spaCy's own CLI imports requests (spacy.cli.download): what spaCy brings is not ours.
spacy_brings = set(sys.modules)
from spacy_bert_cls.checkpoint import load_bert_checkpoint
from spacy_bert_cls.tokenization import load_piece_tokenizer
load_bert_checkpoint(args["checkpoint"])
load_piece_tokenizer(args["checkpoint"])
nlp = spacy.load(args["pipeline"])
assert nlp("john visited paris today").cats
# The `spacy package` output, unpacked and not installed: the child imports it from its folder.
sys.path.insert(0, args["package_dir"])
packaged = importlib.import_module(args["package_name"]).load()
doc = packaged("john visited paris today")
assert doc.cats == nlp("john visited paris today").cats
# initialize from the checkpoint folder (the HFLoader) with the network off too
from spacy.training import Example
fresh = spacy.blank("en").from_config(nlp.config)
fresh.config["initialize"]["components"]["bert"] = {
    "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": args["checkpoint"]}}
fresh.initialize(lambda: [Example.from_dict(fresh.make_doc("john visited paris"),
                                            {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(0, 4, "PER")]})])
net = sorted(m for m in set(sys.modules) - spacy_brings if m.split(".")[0] in
             ("transformers", "huggingface_hub", "requests", "urllib3", "http", "httpx", "aiohttp"))
print(json.dumps({"network_modules": net}))
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    checkpoint = write_tiny_checkpoint(folder / "checkpoint")
    nlp = make_nlp({"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 16, "stride": 8})
    train(nlp, checkpoint, TRAIN, n_iter=2)
    pipeline = save_pipeline(nlp, folder / "pipeline")
    packages = folder / "packages"
    packages.mkdir()
    result = subprocess.run([sys.executable, "-m", "spacy", "package", str(pipeline), str(packages),
                             "--name", "security_probe", "--version", "0.0.1", "--build", "sdist"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # What ships: the sdist, unpacked.
    sdist = next(packages.rglob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(folder / "unpacked", filter="data")
    return {"folder": folder, "checkpoint": checkpoint, "pipeline": pipeline,
            "package_dir": folder / "unpacked" / "en_security_probe-0.0.1", "package_name": "en_security_probe"}


@pytest.mark.parametrize("anchors", ["hide-anchors", "with-anchors"])
def test_loading_opens_no_network_connection(built, anchors):
    args = {k: str(v) for k, v in built.items() if k != "folder"}
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # hide-anchors: what a user without the anchors (an extra, never needed at run time) has.
    hide = PRELUDE.format(optional=ANCHORS) if anchors == "hide-anchors" else ""
    result = subprocess.run([sys.executable, "-c", hide + BLOCK_SOCKETS + LOAD_EVERYTHING, json.dumps(args)],
                            capture_output=True, text=True, env=env, cwd=built["folder"])
    # A refused socket raises inside the load: a non-zero exit.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if anchors == "hide-anchors":
        # http.* comes with the standard library's email/urllib users; no client library does.
        assert [m for m in report["network_modules"] if not m.startswith("http")] == []


def test_packaged_pipeline_names_no_path_of_this_machine(built):
    machine_paths = {str(built["folder"]), str(ROOT), str(Path.home()), sys.prefix, os.getcwd(),
                     str(built["checkpoint"]), str(Path(sys.executable).parent)}
    machine_paths = {p for p in machine_paths if len(p) > 1}
    found = []
    for path in sorted(built["package_dir"].rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(built['package_dir'])}: {p}" for p in machine_paths
                      if p.encode("utf8") in data]
    assert found == []
