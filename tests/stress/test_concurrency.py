"""Concurrency on hostile generated text, for both pipelines: n_process=2 == n_process=1
and two threads == one, exactly (same floats, same entities, same confidences)."""
import os

import pytest

from ..pipeline.test_concurrency import predictions, run_in_threads
from . import harness

pytestmark = pytest.mark.stress
N_TEXTS = int(os.environ.get("STRESS_CONCURRENCY_DOCS", "2000"))


@pytest.mark.parametrize("kind", ["heads", "spacy"])
def test_n_process_and_threads_agree(pipelines, figures, kind):
    nlp = pipelines[kind]
    texts = list(harness.edge_cases()) + list(harness.text_stream(seed=11, n=N_TEXTS))
    texts = [t for t in texts if len(t) < 5_000]  # the giants are in test_text_fuzz
    single = predictions(nlp.pipe(texts, batch_size=32))
    multi = predictions(nlp.pipe(texts, batch_size=32, n_process=2))
    assert multi == single
    threaded = run_in_threads(nlp, texts, n_threads=2, batch_size=32)
    assert threaded[0] == single and threaded[1] == single
    figures[f"concurrency_{kind}"] = {"docs": len(texts), "n_process_2_equal": multi == single,
                                      "two_threads_equal": threaded == [single, single]}
