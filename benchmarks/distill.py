"""Distillation (issue 24): the accuracy benchmark's teachers into smaller students, and what
distillation adds over fine-tuning the same small encoder directly.

    python -m benchmarks.distill \
        --textcat-teacher benchmarks/results/accuracy/ours/rotten_tomatoes/model-last \
        --ner-teacher benchmarks/results/accuracy/ours/wnut17/model-last [--layers 3] [--steps N | --budget-factor K]
        [--temperature T] [--hidden-weight W] [--attention-weight A] [--augment P] [--gold] [--retime] [--threads 2]
        [--rounds 3] [--data DIR] [--out DIR] [--no-direct]

The teachers are `python -m benchmarks.accuracy.run_spacy ours rotten_tomatoes` and `... ours
wnut17` (6-layer MiniLM, bert_textcat and bert_ner); either may be left out. For each:

1. student: `spacy_bert_cls.distill` into --layers layers on the data set's own training texts
   (labels unused; with --gold the training split's gold labels too), dev agreement with the
   teacher on the dev split; --steps optimizer steps of 32 texts (default: --budget-factor times
   the accuracy budget's, epochs x ceil(n_train / 32)).
2. int8 student: `quantize_pipeline(student, dtype="int8")`, calibrated on the training texts.
3. direct (unless --no-direct): the same student shape fine-tuned on the gold labels without a
   teacher, from MiniLM itself (its embeddings, pooler and the layers of the same layer map,
   written as a checkpoint), by the accuracy benchmark's own run (run_spacy ours, same config
   and budget) for the same number of steps.
4. the test split's accuracy / entity F of each (benchmarks/accuracy/score.py's functions), and
   nlp.pipe words/s on the test texts of teacher, student and int8 student in interleaved
   rounds after a warm-up (the median of --rounds), in a child process that loads the three
   and does nothing else first (--retime's): in the process that had just distilled and
   calibrated, the int8 student ran 10-20% slower than in a fresh one (docs/distillation.md).

Writes OUT/distill-<time>.json and prints a table with the issue's targets: student within
1.0 point of the teacher's accuracy and 2.0 of its entity F, >= 1.8x its words/s, int8 >= 3x.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = {"rotten_tomatoes": "textcat_teacher", "wnut17": "ner_teacher"}
TARGETS = {"accuracy_drop": 0.010, "ents_f_drop": 0.020, "student_speedup": 1.8, "int8_speedup": 3.0}


def prepared(data_root: Path, dataset: str) -> dict:
    """The prepared split files, task and labels of a data set (benchmarks.accuracy.prepare)."""
    folder = data_root / dataset
    if not (folder / "meta.json").is_file():
        raise SystemExit(f"{folder}: not prepared; run python -m benchmarks.accuracy.prepare {dataset}")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf8"))
    return {"folder": folder, "task": meta["task"], "labels": meta.get("labels"),
            "files": {split: folder / name for split, name in meta["files"].items()}}


def budget_steps(data: dict, dataset: str) -> Tuple[int, int]:
    """(steps per epoch, total steps) of the accuracy benchmark's budget for the data set."""
    from benchmarks.accuracy.run_spacy import count_examples, load_json, schedule

    budget = load_json(ROOT / "benchmarks" / "accuracy" / "budget.json")
    n_train = count_examples(data["files"]["train"], data["task"])
    per_epoch, total, _ = schedule(n_train, budget["datasets"][dataset]["epochs"], budget)
    return per_epoch, total


def test_score(nlp, data: dict, predictions: Optional[List[dict]] = None) -> float:
    """Accuracy (text classification) or entity F (NER) on the test split."""
    from benchmarks.accuracy.run_spacy import predict_ner, predict_textcat
    from benchmarks.accuracy.score import accuracy, entity_prf, read_gold

    gold = read_gold(data["folder"], "test", data["task"])
    if data["task"] == "ner":
        predictions = predictions or predict_ner(nlp, data["files"]["test"])
        return entity_prf(gold, [p["ents"] for p in predictions])["f"]
    predictions = predictions or predict_textcat(nlp, data["files"]["test"], data["labels"])
    return accuracy(gold, [p["cats"] for p in predictions])


def test_inputs(nlp, data: dict) -> list:
    """What nlp.pipe is timed on: the test texts, or the CoNLL sentences as Docs."""
    from benchmarks.accuracy.run_spacy import conll_doc
    from spacy_bert_cls.data.conll import read_conll

    if data["task"] == "ner":
        return [conll_doc(nlp.vocab, words) for words, _ in read_conll(data["files"]["test"])]
    with data["files"]["test"].open(encoding="utf8") as file_:
        return [json.loads(line)["text"] for line in file_ if line.strip()]


def words_per_second(pipelines: Dict[str, object], data: dict, rounds: int) -> Dict[str, List[float]]:
    """nlp.pipe words/s of each pipeline, in interleaved rounds after a warm-up: each round's."""
    timings: Dict[str, List[float]] = {name: [] for name in pipelines}
    for nlp in pipelines.values():
        list(nlp.pipe(test_inputs(nlp, data)[:64], batch_size=64))
    for _ in range(rounds):
        for name, nlp in pipelines.items():
            inputs = test_inputs(nlp, data)  # NER: fresh Docs each round
            started = time.perf_counter()
            n_words = sum(len(doc) for doc in nlp.pipe(inputs, batch_size=64))
            timings[name].append(n_words / (time.perf_counter() - started))
    return {name: [round(v, 1) for v in values] for name, values in timings.items()}


def direct_checkpoint(layers: int, folder: Path) -> Path:
    """MiniLM shrunk to `layers` layers as the student is (student.shrunk_bert), written as an
    HF folder with MiniLM's tokenizer files."""
    from benchmarks.accuracy.run_spacy import default_bert
    from spacy_bert_cls.checkpoint import load_bert_checkpoint, save_bert_checkpoint
    from spacy_bert_cls.distill.student import shrunk_bert
    from spacy_bert_cls.pytorch import BertModel

    source = Path(default_bert())
    config, state, _ = load_bert_checkpoint(source)
    full = BertModel(config)
    full.load_state_dict(state)
    small, _ = shrunk_bert(full, layers)
    save_bert_checkpoint(folder, small.config, small.state_dict())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)
    return folder


def run_direct(dataset: str, data: dict, layers: int, steps: int, out: Path, threads: int) -> float:
    """Fine-tune the shrunk MiniLM on the gold labels for `steps` steps with the accuracy
    benchmark's own run; RETURNS its test score."""
    from benchmarks.accuracy.run_spacy import CONFIGS
    from benchmarks.accuracy.score import read_jsonl
    from spacy_bert_cls.checkpoint.fit_config import fit_config

    checkpoint = direct_checkpoint(layers, out / f"minilm-L{layers}")
    config = out / f"direct-{dataset}.cfg"
    fit_config(ROOT / CONFIGS["ours"][data["task"]], checkpoint, config)
    per_epoch, _ = budget_steps(data, dataset)
    # The same number of steps of 32 examples: part of one epoch, or whole epochs.
    epochs, limit = (1, steps * 32) if steps < per_epoch else (max(1, round(steps / per_epoch)), 0)
    command = [sys.executable, "-m", "benchmarks.accuracy.run_spacy", "ours", dataset, "--config", str(config),
               "--bert", str(checkpoint), "--results", str(out / "direct"), "--data", str(data["folder"].parent),
               "--epochs", str(epochs), "--limit", str(limit), "--threads", str(threads)]
    subprocess.run(command, check=True, cwd=ROOT)
    predictions = read_jsonl(out / "direct" / "ours" / dataset / "test.predictions.jsonl")
    return test_score(None, data, predictions)


def run_dataset(dataset: str, teacher: Path, args: argparse.Namespace, out: Path) -> dict:
    import spacy

    from spacy_bert_cls.distill import Settings, distill
    from spacy_bert_cls.pytorch import quantized
    from spacy_bert_cls.quantize import quantize_pipeline

    data = prepared(args.data, dataset)
    steps = args.steps or budget_steps(data, dataset)[1] * args.budget_factor
    started = time.perf_counter()
    gold = data["files"]["train"] if args.gold else None
    student = distill(Settings(teacher=teacher, output=out / dataset, layers=args.layers, data=data["files"]["train"],
                               gold=gold, dev=data["files"]["dev"], steps=steps, batch_size=32, seed=args.seed,
                               learn_rate=args.learn_rate, temperature=args.temperature, hidden_weight=args.hidden_weight,
                               attention_weight=args.attention_weight, augment=args.augment,
                               checkpoint_every=max(steps, 1), eval_every=max(steps // 4, 1), resume=True))
    distill_seconds = time.perf_counter() - started
    quantize_pipeline(student, out / dataset / "student-int8", dtype="int8", data=data["files"]["train"])
    pipelines = {"teacher": spacy.load(teacher), "student": spacy.load(student),
                 "int8_student": spacy.load(out / dataset / "student-int8")}
    result = {"dataset": dataset, "task": data["task"], "teacher": str(teacher), "steps": steps, "gold": args.gold,
              "distill_seconds": round(distill_seconds, 1),
              "distillation": pipelines["student"].meta["spacy_bert_cls"]["distillation"],
              "score": {name: round(test_score(nlp, data), 4) for name, nlp in pipelines.items()},
              "words_per_second_rounds": fresh_process_rounds(dataset, teacher, args, out),
              "int8_engines": quantized.chosen_int8_engines()}
    result["words_per_second"] = {name: statistics.median(values)
                                  for name, values in result["words_per_second_rounds"].items()}
    if not args.no_direct:
        result["score"]["direct"] = round(run_direct(dataset, data, args.layers, steps, out, args.threads), 4)
    return result


def check_targets(result: dict) -> Dict[str, bool]:
    score, wps = result["score"], result["words_per_second"]
    drop = TARGETS["ents_f_drop" if result["task"] == "ner" else "accuracy_drop"]
    return {"student_within_drop": score["teacher"] - score["student"] <= drop,
            "student_speedup": wps["student"] / wps["teacher"] >= TARGETS["student_speedup"],
            "int8_speedup": wps["int8_student"] / wps["teacher"] >= TARGETS["int8_speedup"]}


def show(results: List[dict]) -> None:
    for r in results:
        metric = "entity F" if r["task"] == "ner" else "accuracy"
        wps = r["words_per_second"]
        gold = ", with --gold" if r["gold"] else ""
        print(f"\n{r['dataset']} ({metric}, test), {r['steps']} steps{gold}, distilled in {r['distill_seconds']:.0f} s")
        for name, value in r["score"].items():
            speed = f"{wps[name]:>10,.0f} words/s ({wps[name] / wps['teacher']:.2f}x)" if name in wps else ""
            print(f"  {name:<14} {value:.4f}  {speed}")
        print("  targets:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in r["targets"].items()))


def retime(teachers: Dict[str, Path], args: argparse.Namespace) -> int:
    """words/s of each teacher, its student and int8 student from an earlier run's --out, in
    a process that did nothing else first (a run times its pipelines this way too, in a child:
    fresh_process_rounds). With --rounds-json, the rounds by data set are also written there."""
    import spacy

    by_dataset = {}
    for dataset, teacher in teachers.items():
        folder = args.out / dataset
        pipelines = {"teacher": spacy.load(teacher), "student": spacy.load(folder / "model-last"),
                     "int8_student": spacy.load(folder / "student-int8")}
        rounds = by_dataset[dataset] = words_per_second(pipelines, prepared(args.data, dataset), args.rounds)
        median = {name: statistics.median(values) for name, values in rounds.items()}
        print(f"{dataset}: " + ", ".join(f"{name} {median[name]:,.0f} words/s ({median[name] / median['teacher']:.2f}x)"
                                         for name in rounds))
        print(f"  each round: {json.dumps(rounds)}")
    if args.rounds_json:
        args.rounds_json.write_text(json.dumps(by_dataset), encoding="utf8")
    return 0


def fresh_process_rounds(dataset: str, teacher: Path, args: argparse.Namespace, out: Path) -> Dict[str, List[float]]:
    """words_per_second's rounds for the teacher and the students in `out`, timed by --retime in
    a child process."""
    flag = "--" + DATASETS[dataset].replace("_", "-")
    with tempfile.TemporaryDirectory(prefix="distill-timing-") as tmp:
        result = Path(tmp) / "rounds.json"
        paths = [str(Path(path).resolve()) for path in (teacher, out, args.data)]  # the child runs in ROOT
        subprocess.run([sys.executable, "-m", "benchmarks.distill", "--retime", flag, paths[0], "--out", paths[1],
                        "--data", paths[2], "--rounds", str(args.rounds), "--threads", str(args.threads),
                        "--rounds-json", str(result)], check=True, cwd=str(ROOT))
        return json.loads(result.read_text(encoding="utf8"))[dataset]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textcat-teacher", type=Path, help="rotten_tomatoes' trained pipeline (bert_textcat)")
    parser.add_argument("--ner-teacher", type=Path, help="wnut17's trained pipeline (bert_ner)")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="default: the accuracy budget's steps")
    parser.add_argument("--budget-factor", type=int, default=1,
                        help="without --steps: this many times the accuracy budget's steps (distillation and direct)")
    parser.add_argument("--learn-rate", type=float, default=3e-4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--hidden-weight", type=float, default=1.0, help="weight of the hidden-state loss")
    parser.add_argument("--attention-weight", type=float, default=4.0, help="weight of the attention loss")
    parser.add_argument("--augment", type=float, default=0.0, help="word replacement rate (distill --augment)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gold", action="store_true", help="also the gold labels of the training split (--gold)")
    parser.add_argument("--no-direct", action="store_true", help="skip the direct fine-tune of the small encoder")
    parser.add_argument("--data", type=Path, default=RESULTS / "accuracy" / "data")
    parser.add_argument("--out", type=Path, default=RESULTS / "distill")
    parser.add_argument("--retime", action="store_true",
                        help="only time the pipelines an earlier run left in --out, in this fresh process")
    parser.add_argument("--rounds-json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    teachers = {ds: getattr(args, attr) for ds, attr in DATASETS.items() if getattr(args, attr)}
    if not teachers:
        parser.error("give --textcat-teacher and/or --ner-teacher")
    if args.budget_factor < 1:
        parser.error(f"--budget-factor must be at least 1, got {args.budget_factor}")
    import torch

    torch.set_num_threads(args.threads)
    if args.retime:
        return retime(teachers, args)
    results = []
    for dataset, teacher in teachers.items():
        result = run_dataset(dataset, teacher, args, args.out)
        result["targets"] = check_targets(result)
        results.append(result)
    show(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"distill-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "threads": args.threads, "results": results,
              "cpu_count": os.cpu_count(), "loadavg_at_end": list(os.getloadavg())}
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
