"""A plain spaCy pipeline (no component of ours) loads and runs no slower with this package
installed: fresh processes, alternating, with our distribution visible and hidden (the
anchors, spacy-transformers and transformers, hidden in both, as on a machine without them)."""
import json
import os
import statistics
import subprocess
import sys

import pytest
import spacy
from spacy.training import Example

from ..test_plugin_hygiene import ANCHORS, PRELUDE

pytestmark = pytest.mark.stress
ROUNDS = int(os.environ.get("STRESS_TIMING_ROUNDS", "5"))

MEASURE = """
import time
started, cpu_started = time.perf_counter(), time.process_time()
import spacy
nlp = spacy.load(sys.argv[1])
loaded, cpu_loaded = time.perf_counter(), time.process_time()
texts = [f"text number {i} is a good or a bad film" for i in range(2000)]
docs = list(nlp.pipe(texts))
done, cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({"import_and_load": loaded - started, "pipe": done - loaded, "total": done - started,
                  "cpu_import_and_load": cpu_loaded - cpu_started, "cpu_pipe": cpu_done - cpu_loaded,
                  "cpu_total": cpu_done - cpu_started, "ours_imported": sys.modules.get("spacy_bert_cls") is not None}))
"""


def _plain_pipeline(folder):
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat")
    nlp.add_pipe("tagger")
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": {"A": float(i % 2), "B": float(1 - i % 2)},
                                                    "tags": ["N"] * len(t.split())})
                for i, t in enumerate(["good film", "bad film", "fine", "awful one"])]
    nlp.initialize(lambda: examples)
    nlp.to_disk(folder)
    return folder


def _time(pipeline, hidden):
    result = subprocess.run([sys.executable, "-c", PRELUDE.format(optional=hidden) + MEASURE, str(pipeline)],
                            capture_output=True, text=True, cwd=pipeline.parent,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plain_pipeline_is_no_slower_with_the_plugin_installed(tmp_path, figures):
    pipeline = _plain_pipeline(tmp_path / "plain")
    with_us, without_us = [], []
    for _ in range(ROUNDS):
        with_us.append(_time(pipeline, ANCHORS))
        without_us.append(_time(pipeline, ANCHORS + ["spacy_bert_cls"]))
    assert all(r["ours_imported"] for r in with_us) and not any(r["ours_imported"] for r in without_us)
    parts = [k for k in with_us[0] if k != "ours_imported"]
    median = {name: {part: statistics.median(r[part] for r in runs) for part in parts}
              for name, runs in (("with", with_us), ("without", without_us))}
    figures["plugin_timing_seconds"] = {name: {k: round(v, 3) for k, v in parts.items()}
                                        for name, parts in median.items()}
    figures["plugin_timing_seconds"]["rounds"] = ROUNDS
    # spaCy imports our factory modules for any Language (a few hundredths of a second of
    # our own code; torch comes with thinc either way). CPU time, which other jobs on the
    # machine disturb far less than wall time; allowed: 10% + 0.25 s of noise.
    assert median["with"]["cpu_total"] <= median["without"]["cpu_total"] * 1.10 + 0.25, median
