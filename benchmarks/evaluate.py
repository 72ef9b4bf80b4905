"""Score a trained pipeline on a data file that spacy-bert-cls.Corpus.v1 reads.

    python benchmarks/evaluate.py PIPELINE DATA [--output metrics.json]

DATA: .spacy, JSONL ({"text", "label"} / {"text", "labels"}) or CoNLL (token<TAB>tag).
Prints accuracy (cats_score), macro F, entity P/R/F and speed as JSON.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import spacy
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer

from spacy_bert_cls.corpus import create_corpus_reader_v1


def evaluate(pipeline: Path, data: Path, labels=None) -> dict:
    nlp = spacy.load(pipeline)
    textcat = next((nlp.get_pipe(n) for n in nlp.pipe_names if n.startswith("textcat")), None)
    if labels is None and textcat is not None:
        labels = list(textcat.labels)
    reader = create_corpus_reader_v1(data, labels=labels)
    examples = list(reader(nlp))
    start = time.perf_counter()
    scores = nlp.evaluate(examples)
    seconds = time.perf_counter() - start
    if textcat is not None and not isinstance(textcat, MultiLabel_TextCategorizer):
        # Exclusive classes: accuracy = the top predicted class is the gold one.
        gold = [eg.reference.cats for eg in examples if eg.reference.cats]
        docs = nlp.pipe(eg.reference.text for eg in examples if eg.reference.cats)
        right = sum(max(doc.cats, key=doc.cats.get) == max(cats, key=cats.get) for doc, cats in zip(docs, gold))
        scores["accuracy"] = right / max(1, len(gold))
    keep = ("accuracy", "cats_score", "cats_macro_f", "cats_micro_f", "cats_macro_auc", "ents_p", "ents_r", "ents_f")
    result = {k: scores[k] for k in keep if scores.get(k) is not None}
    if "ents_per_type" in scores and scores["ents_per_type"]:
        result["ents_per_type"] = scores["ents_per_type"]
    result.update(pipeline=str(pipeline), data=str(data), n_examples=len(examples),
                  seconds=round(seconds, 1))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    result = evaluate(args.pipeline, args.data)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
