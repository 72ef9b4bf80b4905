"""spaCy imports every installed plugin's factories whenever it makes a Language (even
spacy.blank("en")), so importing ours must be cheap, change nothing global, and need no
optional dependency: a missing one fails only when its feature is used, saying what to
install. (The timing of a plain pipeline with and without this package is in
tests/stress/test_plugin_timing.py.)"""
import json
import subprocess
import sys

# ANCHORS, and PRELUDE: the code that hides packages from a fresh process, as on a machine
# without them (the benchmarks, tests/security and tests/stress use them too).
from spacy_bert_cls.testing import ANCHORS, PRELUDE  # noqa: F401  (ANCHORS: tests/stress imports it from here)

OPTIONAL = ["matplotlib", "transformers", "spacy_transformers", "onnx", "onnxruntime", "playwright",
            "huggingface_hub"]

IMPORT_EVERYTHING = """
import importlib, logging, pkgutil, tempfile
from importlib.metadata import distribution
from pathlib import Path
import spacy
from spacy.tokens import Doc, Span, Token
nlp = spacy.blank("en")  # spaCy imports every plugin's spacy_factories entry point here
report = {"factories_imported": "spacy_bert_cls.pipeline.bert" in sys.modules,
          "span_extensions": [n for n in ("confidence",) if Span.has_extension(n)]}
import spacy_bert_cls.forking as forking
report["fork_hooks_at_import"] = forking.fork_hooks_installed()
for ep in distribution("spacy_bert_cls").entry_points:
    ep.load()
import spacy_bert_cls
modules = [m.name for m in pkgutil.walk_packages(spacy_bert_cls.__path__, "spacy_bert_cls.")]
for name in modules:
    importlib.import_module(name)
report["modules_imported"] = len(modules)
report["optional_loaded"] = sorted(n for n in OPTIONAL_NAMES if sys.modules.get(n) is not None)
# The features that need them fail only now, saying what to install.
messages = {}
from spacy_bert_cls.evaluate import _pyplot
try:
    _pyplot()
except ImportError as err:
    messages["evaluate --html"] = str(err)
from spacy_bert_cls.interop.onnx import write_onnx
try:
    write_onnx(Path(tempfile.mkdtemp()) / "model.onnx", None, None, token_level=False)
except ImportError as err:
    messages["export-hf --onnx"] = str(err)
from spacy_bert_cls.pretraining.train import plot_curves
records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("spacy_bert_cls.pretraining.train").addHandler(handler)
plot_curves(Path(tempfile.mkdtemp()) / "log.csv", Path(tempfile.mkdtemp()) / "curves.png")
messages["pretrain curves"] = " ".join(r.getMessage() for r in records)
report["messages"] = messages
print(json.dumps(report))
"""


def _run(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_changes_nothing_global_and_needs_no_optional_dependency():
    report = _run(PRELUDE.format(optional=OPTIONAL) + IMPORT_EVERYTHING.replace("OPTIONAL_NAMES", repr(OPTIONAL)))
    assert report["factories_imported"]  # spaCy did import us, for a blank pipeline
    assert report["span_extensions"] == [] and report["fork_hooks_at_import"] is False
    assert report["modules_imported"] > 30 and report["optional_loaded"] == []
    messages = report["messages"]
    assert "pip install matplotlib" in messages["evaluate --html"]
    assert "pip install" in messages["export-hf --onnx"] and "onnx" in messages["export-hf --onnx"]
    assert "pip install matplotlib" in messages["pretrain curves"]


def test_a_plain_spacy_pipeline_runs_with_every_optional_dependency_missing():
    code = PRELUDE.format(optional=OPTIONAL) + """
import spacy
from spacy.training import Example
nlp = spacy.blank("en")
nlp.add_pipe("textcat")
examples = [Example.from_dict(nlp.make_doc(t), {"cats": {"A": float(i % 2), "B": float(1 - i % 2)}})
            for i, t in enumerate(["good", "bad", "fine film", "awful"])]
nlp.initialize(lambda: examples)
print(json.dumps({"cats": nlp("good").cats}))
"""
    assert set(_run(code)["cats"]) == {"A", "B"}
