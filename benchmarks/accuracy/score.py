"""Score every system of the accuracy benchmark the same way (see CONTRACT.md).

    python -m benchmarks.accuracy.score [--results DIR] [--data DIR] [--output FILE]

Reads RESULTS/<system>/<dataset>/{test,dev}.predictions.jsonl and run.json, and the prepared
gold files under --data (default RESULTS/data), computes

- accuracy (the top-scoring label = the gold label) for single-label sets, and the ECE of the
  top label's probability;
- for multi-label sets (goemotions): macro F1 over all labels with per-label thresholds tuned
  on the system's own dev predictions (each label's threshold maximises that label's dev F1),
  and with every threshold 0.5; micro F1 (tuned); the ECE of every label probability;
- for NER: exact-match entity precision, recall and F over (sentence, start, end, label), and
  the ECE of entity confidences where a system gives them (the 4th item of an entity);

prints markdown tables (rows: data sets; columns: systems, with train minutes), and writes
them with every figure to RESULTS/results.json (or --output).

The metric functions (accuracy, expected_calibration_error, label_f1, macro_f1,
tune_thresholds, entity_prf, ...) need nothing but the standard library.
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUDGET = HERE / "budget.json"
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "accuracy"
SYSTEM_ORDER = ("ours", "spacy_listener", "spacy_transformers", "hf")
NOT_SYSTEMS = ("data", "logs")
N_BINS = 15
DEFAULT_THRESHOLD = 0.5

Span = Tuple[int, int, str]


# Metric functions


def argmax_label(cats: Mapping[str, float]) -> Optional[str]:
    """The label with the highest score (the first one of a tie, in the dict's order)."""
    best, best_score = None, -math.inf
    for label, score in cats.items():
        if score > best_score:
            best, best_score = label, score
    return best


def accuracy(gold: Sequence[str], cats: Sequence[Mapping[str, float]]) -> float:
    """Share of examples whose top-scoring label is the gold label."""
    _same_length(gold, cats)
    if not gold:
        return 0.0
    return sum(argmax_label(c) == g for g, c in zip(gold, cats)) / len(gold)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[Union[bool, int]], n_bins: int = N_BINS
) -> Optional[float]:
    """ECE with `n_bins` equal-width bins over [0, 1]: sum over bins of
    |bin| / n * |share correct in the bin - mean confidence in the bin|.

    Bin i holds confidences in [i / n_bins, (i + 1) / n_bins); 1.0 goes to the last bin.
    Confidences are clipped to [0, 1]. None for no confidences.
    """
    _same_length(confidences, correct)
    n = len(confidences)
    if n == 0:
        return None
    totals = [0] * n_bins
    conf_sums = [0.0] * n_bins
    right_sums = [0.0] * n_bins
    for confidence, right in zip(confidences, correct):
        c = min(1.0, max(0.0, float(confidence)))
        index = min(int(c * n_bins), n_bins - 1)
        totals[index] += 1
        conf_sums[index] += c
        right_sums[index] += 1.0 if right else 0.0
    return sum(
        abs(right_sums[i] - conf_sums[i]) / n for i in range(n_bins) if totals[i]
    )


def top_label_ece(gold: Sequence[str], cats: Sequence[Mapping[str, float]], n_bins: int = N_BINS) -> Optional[float]:
    """ECE of the top label's probability against whether it is the gold label."""
    _same_length(gold, cats)
    confidences = [max(c.values()) if c else 0.0 for c in cats]
    correct = [argmax_label(c) == g for g, c in zip(gold, cats)]
    return expected_calibration_error(confidences, correct, n_bins)


def multilabel_ece(
    gold: Sequence[Iterable[str]], cats: Sequence[Mapping[str, float]], labels: Sequence[str], n_bins: int = N_BINS
) -> Optional[float]:
    """ECE of every (example, label) probability against whether the label is gold."""
    _same_length(gold, cats)
    confidences, correct = [], []
    for g, c in zip(gold, cats):
        g = set(g)
        for label in labels:
            confidences.append(float(c.get(label, 0.0)))
            correct.append(label in g)
    return expected_calibration_error(confidences, correct, n_bins)


def prf(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
    """Precision, recall and F1; a 0 / 0 gives 0 (as scikit-learn's default)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return p, r, f


def label_counts(
    gold: Sequence[Iterable[str]], cats: Sequence[Mapping[str, float]], label: str, threshold: float
) -> Tuple[int, int, int]:
    """(tp, fp, fn) of one label, predicted where its probability >= threshold."""
    tp = fp = fn = 0
    for g, c in zip(gold, cats):
        predicted = float(c.get(label, 0.0)) >= threshold
        actual = label in g
        tp += predicted and actual
        fp += predicted and not actual
        fn += actual and not predicted
    return tp, fp, fn


def label_f1(gold: Sequence[Iterable[str]], cats: Sequence[Mapping[str, float]], label: str, threshold: float) -> float:
    return prf(*label_counts(gold, cats, label, threshold))[2]


def _thresholds_for(labels: Sequence[str], thresholds: Union[float, Mapping[str, float]]) -> Dict[str, float]:
    if isinstance(thresholds, Mapping):
        return {label: float(thresholds.get(label, DEFAULT_THRESHOLD)) for label in labels}
    return {label: float(thresholds) for label in labels}


def macro_f1(
    gold: Sequence[Iterable[str]],
    cats: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    thresholds: Union[float, Mapping[str, float]] = DEFAULT_THRESHOLD,
) -> float:
    """Mean over `labels` of each label's F1 (a label predicted where its probability
    >= its threshold; a number is one threshold for all labels)."""
    _same_length(gold, cats)
    gold = [set(g) for g in gold]
    per_label = _thresholds_for(labels, thresholds)
    if not labels:
        return 0.0
    return sum(label_f1(gold, cats, label, per_label[label]) for label in labels) / len(labels)


def micro_f1(
    gold: Sequence[Iterable[str]],
    cats: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    thresholds: Union[float, Mapping[str, float]] = DEFAULT_THRESHOLD,
) -> float:
    """F1 of all (example, label) decisions pooled."""
    _same_length(gold, cats)
    gold = [set(g) for g in gold]
    per_label = _thresholds_for(labels, thresholds)
    tp = fp = fn = 0
    for label in labels:
        t, f, n = label_counts(gold, cats, label, per_label[label])
        tp, fp, fn = tp + t, fp + f, fn + n
    return prf(tp, fp, fn)[2]


def tune_threshold(probs: Sequence[float], actual: Sequence[bool], default: float = DEFAULT_THRESHOLD) -> float:
    """The threshold that maximises F1 on (probs, actual), predicting where p >= threshold.

    Every cut between two distinct probabilities is tried (exactly, in one sorted pass); the
    threshold is put halfway between the lowest probability kept and the next lower one (the
    lowest kept itself where none is lower). Of equal F1s the highest threshold wins. With no
    positive example the default is returned.
    """
    _same_length(probs, actual)
    positives = sum(1 for a in actual if a)
    if positives == 0:
        return default
    ranked = sorted(zip((float(p) for p in probs), (bool(a) for a in actual)), key=lambda pa: -pa[0])
    best_f, best_index = -1.0, None
    tp = 0
    for i, (p, a) in enumerate(ranked):
        tp += a
        if i + 1 < len(ranked) and ranked[i + 1][0] == p:
            continue  # a cut only between distinct probabilities
        kept = i + 1
        f = 2 * tp / (kept + positives)
        if f > best_f:
            best_f, best_index = f, i
    low = ranked[best_index][0]
    if best_index + 1 < len(ranked):
        return (low + ranked[best_index + 1][0]) / 2
    return low


def tune_thresholds(
    gold: Sequence[Iterable[str]], cats: Sequence[Mapping[str, float]], labels: Sequence[str]
) -> Dict[str, float]:
    """Per-label thresholds, each maximising that label's F1 on (gold, cats)."""
    _same_length(gold, cats)
    gold = [set(g) for g in gold]
    return {
        label: tune_threshold([float(c.get(label, 0.0)) for c in cats], [label in g for g in gold])
        for label in labels
    }


def entity_prf(gold: Sequence[Iterable[Sequence]], predicted: Sequence[Iterable[Sequence]]) -> Dict[str, float]:
    """Exact-match entity precision, recall and F over the sentences.

    gold / predicted: per sentence, the entities as (start, end, label[, confidence]) items;
    an entity is right where (start, end, label) is a gold entity of the same sentence.
    """
    _same_length(gold, predicted)
    tp = fp = fn = 0
    for g, p in zip(gold, predicted):
        g_set = {_span(e) for e in g}
        p_set = {_span(e) for e in p}
        tp += len(g_set & p_set)
        fp += len(p_set - g_set)
        fn += len(g_set - p_set)
    precision, recall, f = prf(tp, fp, fn)
    return {"p": precision, "r": recall, "f": f, "tp": tp, "fp": fp, "fn": fn}


def entity_ece(
    gold: Sequence[Iterable[Sequence]], predicted: Sequence[Iterable[Sequence]], n_bins: int = N_BINS
) -> Optional[float]:
    """ECE of the predicted entities' confidences (their 4th item) against whether each is a
    gold entity. None where no predicted entity has a confidence."""
    _same_length(gold, predicted)
    confidences, correct = [], []
    for g, p in zip(gold, predicted):
        g_set = {_span(e) for e in g}
        for entity in p:
            if len(entity) > 3 and entity[3] is not None:
                confidences.append(float(entity[3]))
                correct.append(_span(entity) in g_set)
    return expected_calibration_error(confidences, correct, n_bins)


def _span(entity: Sequence) -> Span:
    return int(entity[0]), int(entity[1]), str(entity[2])


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} gold items but {len(b)} predictions")


# Files


def read_jsonl(path: Path) -> List[dict]:
    with Path(path).open(encoding="utf8") as file_:
        return [json.loads(line) for line in file_ if line.strip()]


def read_gold(data: Path, split: str, task: str) -> list:
    """The gold of a prepared split: labels (textcat), label lists (multi-label) or entity
    lists (NER, (start, end, label) over the CoNLL tokens)."""
    if task == "ner":
        from spacy_bert_cls.data.conll import read_conll
        from spacy_bert_cls.tags import tags_to_spans

        return [tags_to_spans(tags) for _, tags in read_conll(data / f"{split}.conll")]
    records = read_jsonl(data / f"{split}.jsonl")
    if task == "textcat":
        return [str(r["label"]) for r in records]
    return [[str(label) for label in r["labels"]] for r in records]


def score_run(run_dir: Path, data: Path, task: str, labels: Sequence[str]) -> dict:
    """Every metric of one system on one data set."""
    test_pred = read_jsonl(run_dir / "test.predictions.jsonl")
    test_gold = read_gold(data, "test", task)
    if len(test_pred) != len(test_gold):
        raise ValueError(f"{run_dir}: {len(test_pred)} test predictions for {len(test_gold)} gold examples")
    result: dict = {"n_test": len(test_gold)}
    if task == "textcat":
        cats = [p["cats"] for p in test_pred]
        result["accuracy"] = accuracy(test_gold, cats)
        result["ece"] = top_label_ece(test_gold, cats)
        result["main"] = result["accuracy"]
    elif task == "textcat_multilabel":
        cats = [p["cats"] for p in test_pred]
        result["macro_f1_at_0.5"] = macro_f1(test_gold, cats, labels, DEFAULT_THRESHOLD)
        result["micro_f1_at_0.5"] = micro_f1(test_gold, cats, labels, DEFAULT_THRESHOLD)
        result["ece"] = multilabel_ece(test_gold, cats, labels)
        dev_path = run_dir / "dev.predictions.jsonl"
        if dev_path.exists():
            dev_pred = [p["cats"] for p in read_jsonl(dev_path)]
            dev_gold = read_gold(data, "dev", task)
            if len(dev_pred) != len(dev_gold):
                raise ValueError(f"{run_dir}: {len(dev_pred)} dev predictions for {len(dev_gold)} gold examples")
            thresholds = tune_thresholds(dev_gold, dev_pred, labels)
            result["thresholds"] = thresholds
            result["macro_f1_tuned"] = macro_f1(test_gold, cats, labels, thresholds)
            result["micro_f1_tuned"] = micro_f1(test_gold, cats, labels, thresholds)
        else:
            result["macro_f1_tuned"] = None
            result["note"] = "no dev.predictions.jsonl: thresholds not tuned"
        result["main"] = result["macro_f1_tuned"]
    else:
        ents = [p["ents"] for p in test_pred]
        result.update({f"ents_{k}": v for k, v in entity_prf(test_gold, ents).items()})
        result["ece"] = entity_ece(test_gold, ents)
        result["main"] = result["ents_f"]
    return result


def find_systems(results: Path) -> List[str]:
    found = [
        d.name for d in sorted(results.iterdir())
        if d.is_dir() and d.name not in NOT_SYSTEMS and not d.name.startswith(".")
    ] if results.is_dir() else []
    return [s for s in SYSTEM_ORDER if s in found] + [s for s in found if s not in SYSTEM_ORDER]


def score_all(results: Path, data_root: Path, budget: dict) -> dict:
    systems = find_systems(results)
    runs: Dict[str, Dict[str, dict]] = {}
    for system in systems:
        for dataset, settings in budget["datasets"].items():
            run_dir = results / system / dataset
            if not (run_dir / "test.predictions.jsonl").exists():
                continue
            data = data_root / dataset
            meta_path = data / "meta.json"
            meta = json.loads(meta_path.read_text(encoding="utf8")) if meta_path.exists() else {}
            entry: dict = {}
            try:
                entry.update(score_run(run_dir, data, settings["task"], meta.get("labels", [])))
            except (ValueError, KeyError, OSError) as err:
                entry["error"] = f"{type(err).__name__}: {err}"
            run_json = run_dir / "run.json"
            if run_json.exists():
                info = json.loads(run_json.read_text(encoding="utf8"))
                for key in ("train_seconds", "predict_seconds", "n_train", "epochs", "steps", "limit", "data_limit"):
                    if key in info:
                        entry[key] = info[key]
            entry["limited"] = bool(entry.get("limit") or entry.get("data_limit") or meta.get("limit"))
            runs.setdefault(system, {})[dataset] = entry
    return {"systems": systems, "runs": runs}


# Tables


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _minutes(entry: dict) -> Optional[str]:
    seconds = entry.get("train_seconds")
    if seconds is None:
        return None
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"


def _cell(entry: Optional[dict], key: str, details: str = "", with_time: bool = True) -> str:
    """"0.850 (details; 14 min)", "–" for no run or no value, "error"; * marks limited data."""
    if entry is None or ("error" not in entry and entry.get(key) is None):
        return "–"
    if "error" in entry:
        return "error"
    brackets = [part for part in (details, _minutes(entry) if with_time else None) if part]
    text = _fmt(entry[key]) + (f" ({'; '.join(brackets)})" if brackets else "")
    return text + ("*" if entry.get("limited") else "")


METRIC_NAMES = {
    "textcat": "accuracy",
    "textcat_multilabel": "macro F1, thresholds tuned on dev",
    "ner": "entity F",
}


def markdown_tables(scores: dict, budget: dict) -> str:
    systems = scores["systems"]
    runs = scores["runs"]
    header = "| data set (test split) | metric | " + " | ".join(systems) + " |"
    rule = "|---|---|" + "---|" * len(systems)
    lines = [
        "Test-split scores (train minutes in brackets):",
        "",
        header,
        rule,
    ]
    for dataset, settings in budget["datasets"].items():
        task = settings["task"]
        row = [dataset, METRIC_NAMES[task]]
        for system in systems:
            entry = runs.get(system, {}).get(dataset)
            details = ""
            if task == "ner" and entry and "error" not in entry and entry.get("ents_p") is not None:
                details = f"P {entry['ents_p']:.3f}, R {entry['ents_r']:.3f}"
            row.append(_cell(entry, "main", details))
        lines.append("| " + " | ".join(row) + " |")
        if task == "textcat_multilabel":
            row = [dataset, "macro F1, every threshold 0.5"]
            row += [_cell(runs.get(s, {}).get(dataset), "macro_f1_at_0.5", with_time=False) for s in systems]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Expected calibration error (15 bins; lower is better):", "", header, rule]
    ece_names = {
        "textcat": "ECE, top label",
        "textcat_multilabel": "ECE, every label",
        "ner": "ECE, entity confidence",
    }
    for dataset, settings in budget["datasets"].items():
        row = [dataset, ece_names[settings["task"]]]
        row += [_cell(runs.get(s, {}).get(dataset), "ece", with_time=False) for s in systems]
        lines.append("| " + " | ".join(row) + " |")
    if any(e.get("limited") for r in runs.values() for e in r.values()):
        lines += ["", "\\* trained or scored on limited data (--limit): a smoke run, not a benchmark figure."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--data", type=Path, default=None, help="prepared data (default: RESULTS/data)")
    parser.add_argument("--budget", type=Path, default=BUDGET)
    parser.add_argument("--output", type=Path, default=None, help="default: RESULTS/results.json")
    args = parser.parse_args(argv)
    budget = json.loads(args.budget.read_text(encoding="utf8"))
    data_root = args.data or args.results / "data"
    scores = score_all(args.results, data_root, budget)
    table = markdown_tables(scores, budget)
    print(table)
    for system, entries in scores["runs"].items():
        for dataset, entry in entries.items():
            if "error" in entry:
                print(f"ERROR {system}/{dataset}: {entry['error']}", file=sys.stderr)
    output = args.output or args.results / "results.json"
    payload = {"results": str(args.results), "data": str(data_root), **scores, "table": table}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf8")
    print(f"\nwritten {output}")
    return 1 if any("error" in e for r in scores["runs"].values() for e in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
