"""Calibration on dev data: are bert_textcat's probabilities and bert_ner's entity confidences
right as often as they say?

    python -m benchmarks.calibration PIPELINE DEV [--output calibration.json]

DEV: JSONL ({"text", "label"} / {"text", "labels"}) or CoNLL, read by spacy-bert-cls.Corpus.v1.
Prints the expected calibration error (15 equal-width bins) and the reliability table:
- exclusive classes: the top class's probability against "the top class is the gold one";
- multi-label: every label's probability against "the label is gold";
- entities: each predicted entity's confidence against "exactly this span and label is gold".
"""
import argparse
import json
from pathlib import Path

import spacy

from benchmarks.accuracy.score import expected_calibration_error
from spacy_bert_cls.data.readers import create_corpus_reader_v1

N_BINS = 15


def reliability(confidences, correct, n_bins=N_BINS):
    rows = []
    for i in range(n_bins):
        low, high = i / n_bins, (i + 1) / n_bins
        members = [(c, r) for c, r in zip(confidences, correct)
                   if low <= c < high or (i == n_bins - 1 and c == 1.0)]
        if members:
            rows.append({"bin": f"[{low:.2f}, {high:.2f})", "n": len(members),
                         "mean_confidence": sum(c for c, _ in members) / len(members),
                         "accuracy": sum(r for _, r in members) / len(members)})
    return {"ece": expected_calibration_error(confidences, correct, n_bins), "n": len(confidences), "bins": rows}


def calibration(pipeline: Path, data: Path) -> dict:
    nlp = spacy.load(pipeline)
    result = {"pipeline": str(pipeline), "data": str(data)}
    textcat = nlp.get_pipe("bert_textcat") if "bert_textcat" in nlp.pipe_names else None
    examples = list(create_corpus_reader_v1(data, labels=list(textcat.labels) if textcat else None)(nlp))
    docs = list(nlp.pipe(eg.predicted for eg in examples))
    if textcat is not None:
        confidences, correct = [], []
        for eg, doc in zip(examples, docs):
            gold = eg.reference.cats
            if not gold:
                continue
            if textcat.exclusive:
                top = max(doc.cats, key=doc.cats.get)
                confidences.append(doc.cats[top])
                correct.append(gold.get(top, 0.0) >= 0.5 and max(gold, key=gold.get) == top)
            else:
                for label in textcat.labels:
                    confidences.append(doc.cats[label])
                    correct.append(gold.get(label, 0.0) >= 0.5)
        result["classes"] = reliability(confidences, correct)
    if "bert_ner" in nlp.pipe_names:
        confidences, correct = [], []
        for eg, doc in zip(examples, docs):
            gold = {(e.start, e.end, e.label_) for e in eg.reference.ents}
            for ent in doc.ents:
                confidences.append(ent._.confidence)
                correct.append((ent.start, ent.end, ent.label_) in gold)
        result["entities"] = reliability(confidences, correct)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    result = calibration(args.pipeline, args.data)
    for part in ("classes", "entities"):
        if part in result:
            r = result[part]
            print(f"{part}: ECE {r['ece']:.4f} over {r['n']} predictions")
            for row in r["bins"]:
                print(f"  {row['bin']}  n={row['n']:6d}  confidence {row['mean_confidence']:.3f}  accuracy {row['accuracy']:.3f}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
