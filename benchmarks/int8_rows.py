"""int8 activations per token (Int8Linear now) against per tensor (before), in one process.

    python -m benchmarks.int8_rows --pipeline benchmarks/results/accuracy/ours/wnut17/model-last \
        [--dataset wnut17] [--alpha 0.5] [--rounds 4]

For the accuracy benchmark's trained pipeline (`python -m benchmarks.accuracy.run_spacy ours
DATASET`): the mean cosine of the int8 token states to fp32 on held-out test texts for alphas
0.5, 0.65, 0.8 (no layer in fp32); then `quantize_pipeline` as the command runs it, calibrated
on 512 training texts, in each mode: the layers it keeps in fp32, the test score, how many of
600 test docs get other entities (or another top class) alone than inside `nlp.pipe`'s
batches; and `nlp.pipe` words/s of both modes and of the fp32 pipeline, timed in turns. Per
tensor is the engine's dynamic linear on the rows as they come: what Int8Linear did before,
and what torch's and ONNX Runtime's dynamic quantization do.
"""
import argparse
import copy
import time
from pathlib import Path

import spacy
import torch

from benchmarks.distill import prepared, test_inputs, test_score
from spacy_bert_cls.data.texts import read_texts
from spacy_bert_cls.models.encoder import get_bert_shim
from spacy_bert_cls.pytorch.quantized import Int8Linear, activation_ranges, fidelity, quantize_bert
from spacy_bert_cls.quantize import encoder_batches, quantize_pipeline

ROOT = Path(__file__).resolve().parents[1]


def per_tensor_forward(self, x):
    """Int8Linear's forward before: the engine's range from all the call's rows."""
    shape = x.shape
    y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).float().contiguous(), self._packed, False)
    y = y + self.bias if self.bias is not None else y
    return y.reshape(*shape[:-1], self.out_features)


MODES = {"per token": Int8Linear.forward, "per tensor": per_tensor_forward}


def fidelity_by_alpha(nlp, data: dict) -> None:
    bert = get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.eval()
    blank = spacy.blank("en")
    ranges = activation_ranges(bert, list(encoder_batches(nlp, read_texts(data["files"]["train"], blank, 512))))
    held = list(encoder_batches(nlp, read_texts(data["files"]["test"], blank, 512)))
    for alpha in (0.5, 0.65, 0.8):
        for mode, forward in MODES.items():
            Int8Linear.forward = forward
            f = fidelity(bert, quantize_bert(bert, ranges, alpha=alpha), held)
            print(f"alpha {alpha}, {mode}: mean cosine {f['mean_cosine']:.5f}, min {f['min_cosine']:.4f}", flush=True)


def outcome(doc) -> list:
    return [(e.start, e.end, e.label_) for e in doc.ents] or ([max(doc.cats, key=doc.cats.get)] if doc.cats else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", type=Path, required=True)
    parser.add_argument("--dataset", default="wnut17")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy" / "data")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = prepared(args.data, args.dataset)
    nlp = spacy.load(args.pipeline)
    docs, pipes = test_inputs(nlp, data), {}
    try:
        fidelity_by_alpha(nlp, data)
        print(f"fp32: test score {test_score(nlp, data):.4f}", flush=True)
        for mode, forward in MODES.items():
            Int8Linear.forward = forward
            pipes[mode] = spacy.load(args.pipeline)
            summary = quantize_pipeline(pipes[mode], None, dtype="int8", data=data["files"]["train"], alpha=args.alpha)
            batch = [outcome(d) for d in pipes[mode].pipe([copy.copy(d) for d in docs[:600]], batch_size=64)]
            alone = [outcome(pipes[mode](copy.copy(d))) for d in docs[:600]]
            print(f"{mode}, alpha {args.alpha}: fp32 layers {summary['fp32_layers']}, calibration cosine "
                  f"{summary['mean_cosine']}, test score {test_score(pipes[mode], data):.4f}, docs predicted otherwise "
                  f"alone than in a batch {sum(a != b for a, b in zip(alone, batch))} of {len(alone)}", flush=True)
        pipes["fp32"] = nlp
        words, times = sum(len(d) for d in docs), {mode: [] for mode in pipes}
        for _ in range(args.rounds):
            for mode, pipe in pipes.items():
                Int8Linear.forward = MODES.get(mode, Int8Linear.forward)
                start = time.perf_counter()
                list(pipe.pipe([copy.copy(d) for d in docs], batch_size=64))
                times[mode].append(time.perf_counter() - start)
        for mode, spent in times.items():
            rounds = [round(words / t) for t in spent]
            print(f"{mode}: nlp.pipe words/s by round {rounds}, best {max(rounds)}")
    finally:
        Int8Linear.forward = MODES["per token"]


if __name__ == "__main__":
    main()
