"""Write the prepared data of the accuracy benchmark (see CONTRACT.md and budget.json).

    python -m benchmarks.accuracy.prepare [DATASET ...] [--limit N] [--out DIR] [--source DIR]

For each data set (default: all five of budget.json) writes DIR/<dataset>/:

- train / dev / test as `.jsonl` (`{"text", "label"}` or `{"text", "labels"}`) or, for NER,
  `.conll` (`token<TAB>tag`, IOB2 as in the source, a blank line after each sentence);
- `meta.json`: the task, the label set (goemotions: labels.txt order; the others: sorted, from
  the full train file), the counts, the budget settings used and the source files.

How: the train file is shuffled with `random.Random(seed)`; where the data set has no dev split
(trec) the last 500 shuffled train examples become dev (and are not trained on); train is then
cut to `train_limit` (0 = all) and dev, in its file order, to `dev_limit`. Test is the whole
split, in file order. Deterministic: the same budget gives the same files, byte for byte.

`--limit N` (smoke runs only) also caps every split at N examples: the first N of train, and an
evenly spread seeded sample of N for dev and test (kept in file order), so a small test split
still holds every class. Scores of a limited run are not benchmark figures.
"""
import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUDGET = HERE / "budget.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "accuracy" / "data"
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets"
CARVED_DEV = 500  # dev examples taken from the shuffled train file where there is no dev split
TEXTCAT_TASKS = ("textcat", "textcat_multilabel")


def load_budget(path: Path = BUDGET) -> dict:
    return json.loads(Path(path).read_text(encoding="utf8"))


def split_extension(task: str) -> str:
    return "conll" if task == "ner" else "jsonl"


def read_textcat(path: Path, label_field: str) -> List[dict]:
    """The records of a JSONL file as {"text", label_field}, other keys dropped."""
    records = []
    with path.open(encoding="utf8") as file_:
        for number, line in enumerate(file_, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "text" not in record or label_field not in record:
                raise ValueError(f"{path}:{number}: needs 'text' and {label_field!r}")
            records.append({"text": record["text"], label_field: record[label_field]})
    return records


def read_ner(path: Path) -> List[Tuple[List[str], List[str]]]:
    """The sentences of a CoNLL file, read the way training reads them."""
    from spacy_bert_cls.data.conll import read_conll

    return list(read_conll(path))


def spread_sample(items: Sequence, n: int, seed: int) -> list:
    """n items chosen with random.Random(seed), kept in their order."""
    if n <= 0 or n >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in chosen]


def make_splits(
    train: list, dev: Optional[list], test: list, settings: dict, seed: int, limit: int = 0
) -> Dict[str, list]:
    """Apply the contract's shuffle / carve / cut rules (and a smoke `limit`) to the splits."""
    train = list(train)
    random.Random(seed).shuffle(train)
    if dev is None:
        if len(train) <= CARVED_DEV:
            raise ValueError(f"only {len(train)} train examples: cannot carve {CARVED_DEV} for dev")
        train, dev = train[:-CARVED_DEV], train[-CARVED_DEV:]
    if settings.get("train_limit"):
        train = train[: settings["train_limit"]]
    if settings.get("dev_limit"):
        dev = dev[: settings["dev_limit"]]
    if limit:
        train = train[:limit]
        dev = spread_sample(dev, limit, seed)
        test = spread_sample(test, limit, seed)
    return {"train": train, "dev": list(dev), "test": list(test)}


def write_jsonl(path: Path, records: List[dict]) -> None:
    with path.open("w", encoding="utf8", newline="\n") as file_:
        for record in records:
            file_.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_conll(path: Path, sentences: List[Tuple[List[str], List[str]]]) -> None:
    with path.open("w", encoding="utf8", newline="\n") as file_:
        for words, tags in sentences:
            for word, tag in zip(words, tags):
                if "\t" in word or "\n" in word:
                    raise ValueError(f"token {word!r} holds a tab or a line break")
                file_.write(f"{word}\t{tag}\n")
            file_.write("\n")


def textcat_labels(name: str, source: Path, records: List[dict], field: str) -> List[str]:
    labels_file = source / name / "labels.txt"
    if labels_file.exists():
        return [line.strip() for line in labels_file.read_text(encoding="utf8").splitlines() if line.strip()]
    seen = set()
    for record in records:
        value = record[field]
        seen.update(value if isinstance(value, list) else [value])
    return sorted(str(label) for label in seen)


def ner_labels(sentences) -> List[str]:
    from spacy_bert_cls.tags import tags_to_spans

    return sorted({label for _, tags in sentences for _, _, label in tags_to_spans(tags)})


def counts(task: str, items: list, field: str = "") -> dict:
    if task == "ner":
        from spacy_bert_cls.tags import tags_to_spans

        return {
            "sentences": len(items),
            "tokens": sum(len(words) for words, _ in items),
            "entities": sum(len(tags_to_spans(tags)) for _, tags in items),
        }
    per_label: Dict[str, int] = {}
    for record in items:
        value = record[field]
        for label in value if isinstance(value, list) else [value]:
            per_label[str(label)] = per_label.get(str(label), 0) + 1
    return {"examples": len(items), "labels": dict(sorted(per_label.items()))}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_dataset(name: str, budget: dict, source: Path, out: Path, limit: int = 0) -> dict:
    settings = budget["datasets"][name]
    task = settings["task"]
    seed = budget["seed"]
    files = {split: settings[split] for split in ("train", "dev", "test")}
    for split, rel in files.items():
        if rel is not None and not (source / rel).exists():
            raise FileNotFoundError(f"{name}: {source / rel} not found (--source)")
    if task in TEXTCAT_TASKS:
        field = settings["label_field"]
        read = lambda rel: read_textcat(source / rel, field)  # noqa: E731
    else:
        field = ""
        read = lambda rel: read_ner(source / rel)  # noqa: E731
    full_train = read(files["train"])
    dev = read(files["dev"]) if files["dev"] else None
    splits = make_splits(full_train, dev, read(files["test"]), settings, seed, limit)
    if task in TEXTCAT_TASKS:
        labels = textcat_labels(name, source, full_train, field)
    else:
        labels = ner_labels(full_train)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    ext = split_extension(task)
    for split, items in splits.items():
        path = folder / f"{split}.{ext}"
        if ext == "jsonl":
            write_jsonl(path, items)
        else:
            write_conll(path, items)
    meta = {
        "dataset": name,
        "task": task,
        "labels": labels,
        "label_field": field or None,
        "seed": seed,
        "train_limit": settings.get("train_limit", 0),
        "dev_limit": settings.get("dev_limit", 0),
        "dev_carved_from_train": files["dev"] is None,
        "limit": limit,
        "counts": {split: counts(task, items, field) for split, items in splits.items()},
        "files": {split: f"{split}.{ext}" for split in splits},
        "sources": {
            split: {"path": rel, "sha256": sha256(source / rel)} for split, rel in files.items() if rel
        },
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    return meta


def describe(meta: dict) -> str:
    parts = []
    for split, info in meta["counts"].items():
        if meta["task"] == "ner":
            parts.append(f"{split} {info['sentences']} sentences / {info['tokens']} tokens / {info['entities']} entities")
        else:
            parts.append(f"{split} {info['examples']}")
    return f"{meta['dataset']} ({meta['task']}, {len(meta['labels'])} labels): " + ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", help="data sets of budget.json (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="smoke runs: at most N examples per split")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--budget", type=Path, default=BUDGET)
    args = parser.parse_args(argv)
    budget = load_budget(args.budget)
    names = args.datasets or list(budget["datasets"])
    unknown = [name for name in names if name not in budget["datasets"]]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; budget.json has {list(budget['datasets'])}")
    if not args.source.is_dir():
        parser.error(f"no data sets folder at {args.source} (--source)")
    for name in names:
        meta = prepare_dataset(name, budget, args.source, args.out, args.limit)
        print(describe(meta), flush=True)
    print(f"written under {args.out}" + (f" (--limit {args.limit}: smoke data)" if args.limit else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
