"""Prediction speed of a joint pipeline on one shared encoder against the assembled pipeline of
the all-separate workflow (each head with its own encoder), on the same texts, in one run.

    python -m benchmarks.shared_vs_separate SHARED_DIR SEPARATE_DIR TEXTS.spacy [--threads 2]
        [--rounds 3] [--batch-size 64]

SHARED_DIR: e.g. training/bert_textcat_ner/model-best (`all`); SEPARATE_DIR:
training/separate/model-best (`all-separate`); TEXTS.spacy: e.g. corpus/converted/eval.spacy.
Per pipeline: the best of --rounds passes of nlp.pipe over all texts (after a warm-up pass),
words a second, and the ratio of the two. The pipelines alternate round by round, so a
machine that gets busier slows both.
"""
import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("shared", type=Path)
    parser.add_argument("separate", type=Path)
    parser.add_argument("texts", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import spacy
    import torch
    from spacy.tokens import DocBin

    torch.set_num_threads(args.threads)
    shared = spacy.load(args.shared)
    separate = spacy.load(args.separate)
    texts = [doc.text for doc in DocBin().from_disk(args.texts).get_docs(shared.vocab)]
    words = sum(len(doc) for doc in shared.tokenizer.pipe(texts))
    print(f"{len(texts)} texts, {words} words, torch threads {args.threads}")
    print(f"shared:   {args.shared}: {shared.pipe_names}")
    print(f"separate: {args.separate}: {separate.pipe_names}")
    for nlp in (shared, separate):
        list(nlp.pipe(texts[: 4 * args.batch_size], batch_size=args.batch_size))
    best = {"shared": float("inf"), "separate": float("inf")}
    for _ in range(args.rounds):
        for name, nlp in (("shared", shared), ("separate", separate)):
            start = time.perf_counter()
            for _ in nlp.pipe(texts, batch_size=args.batch_size):
                pass
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"{name:9s} {seconds:7.2f} s  {words / seconds:8.0f} words/s")
    print(f"separate / shared time: {best['separate'] / best['shared']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
