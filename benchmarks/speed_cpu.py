"""CPU inference and training speed, memory and start-up: our pipeline in fp32, bf16 and int8
against spacy-transformers, HF's BertModel and ONNX Runtime, in one run.

    python -m benchmarks.speed_cpu --rounds 3                       # everything below
    python -m benchmarks.speed_cpu --rounds 3 --skip training,startup
    python -m benchmarks.speed_cpu --accuracy RT_PIPELINE WNUT_PIPELINE   # fp32 vs bf16 vs int8 accuracy

Same texts (default 1,000 rotten_tomatoes test + 1,000 goemotions test lines) and the same
all-MiniLM-L6-v2 checkpoint for every system:

  ours-fp32 / ours-bf16 / ours-int8   nlp.pipe of bert + bert_textcat + bert_ner
                                      (configs/bert_textcat_ner.cfg); bf16 and int8 made by
                                      `spacy-bert-cls quantize` (int8 calibrated on 256
                                      rotten_tomatoes train texts)
  st                                  nlp.pipe of spacy-transformers' transformer + textcat +
                                      ner (benchmarks/configs/st_textcat_ner.cfg, quickstart)
  hf                                  transformers.BertModel forward alone, batches padded to
                                      their longest (tokenization done before timing)
  ort-fp32 / ort-int8                 ONNX Runtime on the same encoder alone: torch.onnx.export
                                      of HF's BertModel, onnxruntime.transformers.optimizer
                                      (fused attention, LayerNorm, GELU), and its
                                      quantize_dynamic int8 (tokenization done before timing)

The ceiling first (benchmarks/ceiling.py): what this CPU does on the encoder's own linear
shapes through the kernels our pipeline uses, fp32 and int8, at the same thread count. Each
system's words/s is then also given as pieces/s, useful GFLOP/s (pieces x the encoder's FLOPs
per piece, counted from config.json) and its share of that ceiling (int8's for int8
systems, fp32's for the others).

Each system runs in a fresh process per round, rounds alternate; one untimed warm-up pass,
then the timed pass. Words: spaCy tokens of the texts, whitespace excluded, one count for
all. Peak memory: VmHWM from after loading to the end of the timed pass (reset after loading)
and over the whole process (ru_maxrss); ours with the anchors hidden, as for start-up below
(with spacy-transformers installed, spaCy imports it and transformers into any pipeline's
process: our RSS after loading was 477 MiB that way, 389 with them hidden).

Training: nlp.update words/s of ours (bert + bert_textcat + bert_ner) and st (transformer +
textcat + ner) on the same batches of 32 examples (rotten_tomatoes texts with cats, wnut17
sentences with entities, alternating), after two untimed updates, with peak memory.
Start-up: wall seconds of `import spacy` + `spacy.load` in a fresh process; ours with the
anchors' entry points hidden (as installed without spacy-transformers, which spaCy would
otherwise import for any pipeline).

The heads of the speed runs have random weights (speed only). Accuracy (--accuracy) takes
trained pipelines (benchmarks/accuracy's `ours` runs on rotten_tomatoes and wnut17), converts
each to int8 (calibrated on its own training file) and bf16, and scores all three on the test
split. Raw figures: benchmarks/results/speed_cpu-<time>.json.
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from benchmarks import ceiling
from benchmarks.speed_pipeline import (
    DEFAULT_DATASETS, _hwm_mib, _offline_env, _peak_rss_mib, _reset_hwm, _rss_mib_now, count_words, default_bert,
    init_examples, read_texts,
)
from spacy_bert_cls.testing import ANCHORS, PRELUDE

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

RESULTS = HERE / "results"
DEFAULT_TEXTS = "rotten_tomatoes/test.jsonl:1000,goemotions/test.jsonl:1000"
PIPELINES = {"ours-fp32": "float32", "ours-bf16": "bfloat16", "ours-int8": "int8", "st": None}
ENCODERS = ("hf", "ort-fp32", "ort-int8")
ORDER = ["ours-fp32", "ours-bf16", "ours-int8", "st", "hf", "ort-fp32", "ort-int8"]
CALIBRATION = ("rotten_tomatoes/train.jsonl", 256)


# ---------------------------------------------------------------- children

def _optimizer(nlp):
    """The config's optimizer, from the interpolated config: spaCy's create_optimizer (what
    initialize and resume_training call without sgd) reads nlp.config uninterpolated, and
    our configs tie the schedule to ${training.max_steps}."""
    import spacy

    return spacy.util.registry.resolve(nlp.config.interpolate()["training"])["optimizer"]


def build(args, overrides: Optional[Dict[str, Dict]] = None, examples: Optional[Callable] = None) -> None:
    """Build and save every pipeline and the ONNX files under --work; overrides: config
    overrides by system name (benchmarks/host_overhead.py gives ours a tiny encoder's sizes);
    examples: examples(nlp, datasets) -> the examples to initialize with (init_examples)."""
    import spacy

    work, datasets, bert = Path(args.work), Path(args.datasets), Path(args.bert)
    info = {}
    for name, config_path in (("ours-fp32", REPO / "configs" / "bert_textcat_ner.cfg"),
                              ("st", HERE / "configs" / "st_textcat_ner.cfg")):
        config = spacy.util.load_config(config_path, overrides={"paths.bert": str(bert), **(overrides or {}).get(name, {})},
                                        interpolate=False)
        if name == "st":
            # transformer, textcat, ner crashes in nlp.update (spaCy #9221): ner first.
            config["nlp"]["pipeline"] = ["transformer", "ner", "textcat"]
        nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
        nlp.initialize(lambda: (examples or init_examples)(nlp, datasets), sgd=_optimizer(nlp))
        nlp.to_disk(work / name)
        info[name] = nlp.pipe_names
    from spacy_bert_cls.quantize import quantize_pipeline

    calibration = work / "calibration.txt"
    calibration.write_text("\n".join(read_texts(datasets, f"{CALIBRATION[0]}:{CALIBRATION[1]}")) + "\n")
    for name, dtype in (("ours-int8", "int8"), ("ours-bf16", "bfloat16")):
        info[name] = quantize_pipeline(work / "ours-fp32", work / name, dtype=dtype, data=calibration)
    if "onnx" not in args.skip:
        info["onnx"] = export_onnx(bert, work)
    Path(args.result).write_text(json.dumps(info, default=str))


def export_onnx(bert: Path, work: Path) -> Dict:
    """HF BertModel -> ONNX, optimized (fused) fp32, and its dynamic int8."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import BertModel

    model = BertModel.from_pretrained(str(bert)).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    raw = work / "encoder.onnx"
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(raw), dynamo=False,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids",
                                                                          "last_hidden_state")}, opset_version=17)
    optimized = optimize_model(str(raw), model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size)
    optimized.save_model_to_file(str(work / "encoder-opt.onnx"))
    # The fused operators (com.microsoft domain) defeat ONNX shape inference: give the type.
    quantize_dynamic(str(work / "encoder-opt.onnx"), str(work / "encoder-int8.onnx"), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"fused_operators": optimized.get_fused_operator_statistics()}


def time_pipeline(args) -> None:
    if args.system.startswith("ours"):
        # As installed from our wheel, without the anchors: spaCy would otherwise import
        # spacy-transformers and transformers (~90 MiB here) for any pipeline. As for start-up.
        exec(PRELUDE.format(optional=ANCHORS), {})
    import torch

    torch.set_num_threads(args.threads)
    import spacy

    texts = json.loads(Path(args.texts_file).read_text(encoding="utf8"))
    nlp = spacy.load(Path(args.work) / args.system)
    rss_loaded, peak_loaded, reset = _rss_mib_now(), _peak_rss_mib(), _reset_hwm()
    for _ in nlp.pipe(texts[:args.warmup], batch_size=args.batch_size):
        pass
    gc.collect()
    n_docs = n_tokens = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=args.batch_size):
        n_docs += 1
        n_tokens += len(doc)
    seconds = time.perf_counter() - t0
    write(args, seconds=seconds, cpu_seconds=time.process_time() - cpu0, docs=n_docs, tokens=n_tokens,
          rss_after_load_mib=rss_loaded, peak_rss_run_mib=_hwm_mib() if reset else None,
          peak_rss_mib=max(peak_loaded, _peak_rss_mib()))


def time_encoder(args) -> None:
    """HF BertModel or ONNX Runtime on the encoder alone; tokenization before timing."""
    import numpy
    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    texts = json.loads(Path(args.texts_file).read_text(encoding="utf8"))
    tokenizer = AutoTokenizer.from_pretrained(args.bert)
    batches = [dict(tokenizer(texts[i:i + args.batch_size], padding=True, truncation=True, max_length=512,
                              return_tensors="np")) for i in range(0, len(texts), args.batch_size)]
    warm = batches[: max(1, args.warmup // args.batch_size)]
    if args.system == "hf":
        from transformers import BertModel

        model = BertModel.from_pretrained(args.bert).eval()

        def run(batch):
            with torch.inference_mode():
                return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    else:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        name = "encoder-opt.onnx" if args.system == "ort-fp32" else "encoder-int8.onnx"
        session = onnxruntime.InferenceSession(str(Path(args.work) / name), options, providers=["CPUExecutionProvider"])
        inputs = {i.name for i in session.get_inputs()}

        def run(batch):
            return session.run(None, {k: v.astype(numpy.int64) for k, v in batch.items() if k in inputs})[0]
    rss_loaded, peak_loaded, reset = _rss_mib_now(), _peak_rss_mib(), _reset_hwm()
    for batch in warm:
        run(batch)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for batch in batches:
        run(batch)
    seconds = time.perf_counter() - t0
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["attention_mask"].size for b in batches)
    write(args, seconds=seconds, cpu_seconds=time.process_time() - cpu0, docs=len(texts), pad_efficiency=real / padded,
          rss_after_load_mib=rss_loaded, peak_rss_run_mib=_hwm_mib() if reset else None,
          peak_rss_mib=max(peak_loaded, _peak_rss_mib()))


def time_training(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import spacy
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = spacy.load(Path(args.work) / args.system)
    batches = training_batches(nlp, Path(args.datasets), args.train_batches + 2)
    optimizer = nlp.resume_training(sgd=_optimizer(nlp))
    rss_loaded, reset = _rss_mib_now(), _reset_hwm()
    for batch in batches[:2]:
        nlp.update(batch, sgd=optimizer, drop=0.1)
    words = sum(len(eg.predicted) for batch in batches[2:] for eg in batch)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for batch in batches[2:]:
        nlp.update(batch, sgd=optimizer, drop=0.1)
    seconds = time.perf_counter() - t0
    write(args, seconds=seconds, cpu_seconds=time.process_time() - cpu0, words=words, updates=len(batches) - 2,
          rss_after_load_mib=rss_loaded, peak_rss_run_mib=_hwm_mib() if reset else None)


def training_batches(nlp, datasets: Path, n: int, examples: Optional[list] = None) -> List[list]:
    """Up to n batches of 32 examples: rotten_tomatoes texts with cats and wnut17 sentences
    with entities (or the entities' examples of `examples`), alternating."""
    examples = examples or init_examples(nlp, datasets)
    cats = [eg for eg in examples if eg.reference.cats]
    ents = [eg for eg in examples if not eg.reference.cats]
    mixed = [eg for pair in zip(cats, ents) for eg in pair]
    return [mixed[i:i + 32] for i in range(0, len(mixed) - 31, 32)][:n]


def write(args, **result) -> None:
    result.update(system=args.system, round=args.round, threads=args.threads, loadavg=os.getloadavg()[0])
    Path(args.result).write_text(json.dumps(result))


def run_child(mode: str, result: Path, extra: List[str], module: str = "benchmarks.speed_cpu") -> dict:
    cmd = [sys.executable, "-m", module, "--child", mode, "--result", str(result)] + extra
    proc = subprocess.run(cmd, env=_offline_env(), cwd=str(REPO))
    if proc.returncode != 0 or not result.is_file():
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(result.read_text(encoding="utf8"))


# spaCy imports every installed package's spacy_factories entry point whenever it builds a
# pipeline, so in this benchmark's environment (the anchors installed beside us) loading our
# pipeline would also import spacy-transformers and transformers (several seconds). A user of
# ours has no reason to install them: our systems start with the anchors hidden, as the
# plugin-hygiene tests hide them (spacy_bert_cls.testing's PRELUDE).


def startup_seconds(path: Path, system: str) -> float:
    hide = PRELUDE.format(optional=ANCHORS) if system.startswith("ours") else ""
    code = hide + ("import time; t = time.perf_counter(); import spacy; spacy.load(%r); "
                   "print(time.perf_counter() - t)" % str(path))
    out = subprocess.run([sys.executable, "-c", code], env=_offline_env(), capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- accuracy

def accuracy(args) -> int:
    """fp32, bf16 and int8 of trained pipelines, scored on their test splits."""
    from spacy_bert_cls.evaluate import evaluate
    from spacy_bert_cls.quantize import quantize_pipeline

    data = REPO / "benchmarks" / "results" / "accuracy" / "data"
    rows = []
    with tempfile.TemporaryDirectory(prefix="speed_cpu-acc-") as tmp:
        for pipeline in args.accuracy:
            pipeline = Path(pipeline)
            dataset = next((d for d in ("rotten_tomatoes", "wnut17", "trec", "bc5cdr", "goemotions")
                            if d in str(pipeline)), None)
            if dataset is None:
                raise SystemExit(f"{pipeline}: cannot tell its data set from the path")
            suffix = ".jsonl" if (data / dataset / "test.jsonl").is_file() else ".conll"
            train, test = data / dataset / f"train{suffix}", data / dataset / f"test{suffix}"
            for dtype in ("float32", "bfloat16", "int8"):
                target = Path(tmp) / f"{dataset}-{dtype}"
                summary = quantize_pipeline(pipeline, target, dtype=dtype, data=train)
                scores = evaluate(target, [test])["files"][str(test)]
                metric = scores.get("accuracy") if suffix == ".jsonl" else scores["scores"]["ents_f"]
                rows.append({"dataset": dataset, "dtype": dtype, "metric": metric,
                             "mean_cosine": summary.get("mean_cosine"), "fp32_layers": summary.get("fp32_layers")})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| data set (test) | metric | fp32 | bf16 | int8 | int8 - fp32 (points) | int8 layers kept in fp32 |")
    print("|---|---|---|---|---|---|---|")
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["dtype"]: r for r in rows if r["dataset"] == dataset}
        name = "accuracy" if dataset != "wnut17" and dataset != "bc5cdr" else "entity F"
        diff = 100 * (by["int8"]["metric"] - by["float32"]["metric"])
        print(f"| {dataset} | {name} | {by['float32']['metric']:.4f} | {by['bfloat16']['metric']:.4f} | "
              f"{by['int8']['metric']:.4f} | {diff:+.2f} | {len(by['int8']['fp32_layers'] or [])} |")
    out = RESULTS / f"speed_cpu-accuracy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return 0


# ---------------------------------------------------------------- parent

def main(args) -> int:
    if args.accuracy:
        return accuracy(args)
    datasets = Path(args.datasets)
    if not datasets.is_dir():
        print(f"SKIPPED: no datasets folder at {datasets}; nothing measured.")
        return 0
    bert = Path(args.bert) if args.bert else default_bert()
    skip = set(args.skip.split(",")) if args.skip else set()
    texts = read_texts(datasets, args.texts)
    words = count_words(texts)["words"]
    systems = [s for s in ORDER if not (s.startswith("ort") and "onnx" in skip) and not (s == "ours-bf16" and "bf16" in skip)]
    print(f"{len(texts)} texts, {words:,} words, batch size {args.batch_size}, {args.threads} threads, "
          f"{args.rounds} rounds; checkpoint {bert}", flush=True)
    record = {"command": " ".join(sys.argv), "texts": args.texts, "words": words, "runs": [], "training": [],
              "startup": []}
    record["ceiling"] = _ceiling(bert, texts, args.threads)
    with tempfile.TemporaryDirectory(prefix="speed_cpu-") as work:
        work = Path(work)
        (work / "texts.json").write_text(json.dumps(texts))
        common = ["--work", str(work), "--bert", str(bert), "--datasets", str(datasets), "--threads", str(args.threads),
                  "--batch-size", str(args.batch_size), "--warmup", str(args.warmup), "--skip", args.skip or ""]
        record["build"] = run_child("build", work / "build.json", common + ["--system", "all"])
        print("int8 calibration:", {k: record["build"]["ours-int8"].get(k) for k in ("mean_cosine", "fp32_layers")})
        for r in range(args.rounds):
            for system in systems:
                mode = "encoder" if system in ENCODERS else "pipeline"
                res = run_child(mode, work / f"{system}-{r}.json", common + [
                    "--system", system, "--round", str(r), "--texts-file", str(work / "texts.json")])
                res["words_per_s"] = words / res["seconds"]
                record["runs"].append(res)
                print(f"round {r + 1} {system:>9}: {res['words_per_s']:>8,.0f} words/s, peak RSS "
                      f"{res['peak_rss_run_mib'] or 0:,.0f} MiB (load avg {res['loadavg']:.1f})", flush=True)
            if "training" not in skip:
                for system in ("ours-fp32", "st"):
                    res = run_child("training", work / f"train-{system}-{r}.json", common + [
                        "--system", system, "--round", str(r), "--train-batches", str(args.train_batches)])
                    res["words_per_s"] = res["words"] / res["seconds"]
                    record["training"].append(res)
                    print(f"round {r + 1} training {system:>9}: {res['words_per_s']:>7,.0f} words/s, peak RSS "
                          f"{res['peak_rss_run_mib'] or 0:,.0f} MiB", flush=True)
            if "startup" not in skip:
                for system in ("ours-fp32", "ours-int8", "st"):
                    record["startup"].append({"system": system, "round": r,
                                              "seconds": startup_seconds(work / system, system)})
    summary = report(record, systems)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"speed_cpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({**record, "summary": summary}, indent=2, default=str))
    print(f"raw figures: {out.relative_to(REPO)}")
    return 0


def _ceiling(bert: Path, texts: List[str], threads: int) -> Dict:
    """The CPU's rate on the encoder's own linear shapes (benchmarks/ceiling.py), and the
    useful FLOPs of a piece of these texts."""
    config = json.loads((bert / "config.json").read_text(encoding="utf8"))
    pieces, window = ceiling.mean_window(texts, bert)
    measured = ceiling.measure(config, threads)
    measured.update(pieces=pieces, mean_window=round(window, 1),
                    flops_per_piece=ceiling.flops_per_piece(config, window))
    print(f"ceiling on the encoder's linear shapes, {threads} threads: fp32 {measured['fp32_gflops']} GFLOP/s, "
          f"int8 {measured['int8_gflops']} GOP/s; {pieces:,.0f} pieces, mean window {window:.1f}, "
          f"{measured['flops_per_piece'] / 1e6:.1f} MFLOP a piece", flush=True)
    return measured


def _useful(record: dict, system: str, words_per_s: float) -> Tuple[float, float, float]:
    """(pieces/s, useful GFLOP/s, fraction of the ceiling: int8's for int8 systems, else fp32's)."""
    top = record["ceiling"]
    pieces_per_s = words_per_s * top["pieces"] / record["words"]
    gflops = pieces_per_s * top["flops_per_piece"] / 1e9
    limit = top["int8_gflops"] if system.endswith("int8") and top.get("int8_gflops") else top["fp32_gflops"]
    return pieces_per_s, gflops, gflops / limit


def report(record: dict, systems: List[str]) -> Dict:
    med = {s: statistics.median(r["words_per_s"] for r in record["runs"] if r["system"] == s) for s in systems}
    peak = {s: max(r["peak_rss_run_mib"] or 0 for r in record["runs"] if r["system"] == s) for s in systems}
    whole = {s: max(r["peak_rss_mib"] or 0 for r in record["runs"] if r["system"] == s) for s in systems}
    print("\n| system | words/s (median) | pieces/s | useful GFLOP/s | of the ceiling | x spacy-transformers "
          "| peak RSS of the run (MiB) | peak RSS of the process (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    useful = {s: _useful(record, s, med[s]) for s in systems}
    for s in systems:
        pieces_per_s, gflops, share = useful[s]
        print(f"| {s} | {med[s]:,.0f} | {pieces_per_s:,.0f} | {gflops:.1f} | {share:.0%} | {med[s] / med['st']:.2f}x "
              f"| {peak[s]:,.0f} | {whole[s]:,.0f} |")
    fastest = max((s for s in ("ours-bf16", "ours-int8") if s in med), key=med.get)
    summary = {"words_per_s": med, "peak_rss_run_mib": peak, "peak_rss_mib": whole, "fastest_low": fastest,
               "useful_gflops": {s: useful[s][1] for s in systems}, "ceiling_share": {s: useful[s][2] for s in systems},
               "fp32_over_st": med["ours-fp32"] / med["st"], "low_over_st": med[fastest] / med["st"],
               "memory_ours_over_st": peak["ours-fp32"] / peak["st"]}
    # issue 23's acceptance
    lines = [("ours fp32, share of the fp32 ceiling in useful GFLOP/s", useful["ours-fp32"][2], 0.75),
             ("ours fp32 / spacy-transformers", summary["fp32_over_st"], 2.5),
             ("peak memory of inference, ours fp32 / spacy-transformers", summary["memory_ours_over_st"], 0.6)]
    if "ours-int8" in med:
        summary["int8_over_fp32"] = med["ours-int8"] / med["ours-fp32"]
        lines.append(("ours int8 / ours fp32", summary["int8_over_fp32"], 1.4))
    if "ort-fp32" in med:
        summary["fp32_over_ort"] = med["ours-fp32"] / med["ort-fp32"]
        summary["low_over_ort_int8"] = med[fastest] / med["ort-int8"]
        lines += [("ours fp32 pipeline / ORT optimized fp32 encoder alone", summary["fp32_over_ort"], 1.0),
                  (f"ours {fastest[5:]} pipeline / ORT int8 encoder alone", summary["low_over_ort_int8"], 1.2)]
    if record["training"]:
        train = {s: statistics.median(r["words_per_s"] for r in record["training"] if r["system"] == s)
                 for s in ("ours-fp32", "st")}
        summary["training_words_per_s"] = train
        summary["training_over_st"] = train["ours-fp32"] / train["st"]
        summary["training_peak_rss_mib"] = {s: max(r["peak_rss_run_mib"] or 0 for r in record["training"]
                                                   if r["system"] == s) for s in ("ours-fp32", "st")}
        lines.append(("nlp.update words/s, ours / spacy-transformers", summary["training_over_st"], 2.0))
        print(f"\ntraining: ours {train['ours-fp32']:,.0f} words/s, st {train['st']:,.0f} words/s; peak RSS "
              f"{summary['training_peak_rss_mib']}")
    if record["startup"]:
        start = {s: statistics.median(r["seconds"] for r in record["startup"] if r["system"] == s)
                 for s in ("ours-fp32", "ours-int8", "st")}
        summary["startup_seconds"] = start
        lines.append(("start-up (import spacy + spacy.load), st / ours fp32", start["st"] / start["ours-fp32"], 1.0))
        print(f"start-up seconds: {start}")
    print("\n| ratio | measured | target |")
    print("|---|---|---|")
    for name, value, target in lines:
        ok = value <= target if "memory" in name else value >= target
        print(f"| {name} | {value:.2f} | {'>=' if 'memory' not in name else '<='} {target} ({'met' if ok else 'NOT met'}) |")
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--train-batches", type=int, default=10)
    p.add_argument("--texts", default=DEFAULT_TEXTS)
    p.add_argument("--datasets", default=str(DEFAULT_DATASETS))
    p.add_argument("--bert", default=None)
    p.add_argument("--skip", default="", help="comma-separated: onnx, bf16, training, startup")
    p.add_argument("--accuracy", nargs="+", default=None, help="trained pipelines to score in fp32, bf16, int8")
    p.add_argument("--child", choices=["build", "pipeline", "encoder", "training"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--texts-file", help=argparse.SUPPRESS)
    p.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    arguments = parse_args()
    child = {"build": build, "pipeline": time_pipeline, "encoder": time_encoder, "training": time_training}
    if arguments.child:
        child[arguments.child](arguments)
    else:
        sys.exit(main(arguments))
