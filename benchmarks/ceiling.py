"""What this CPU's matrix units do on the encoder's own shapes: the ceiling the speed
benchmark states its figures against (issue 23).

    python -m benchmarks.ceiling [--bert CHECKPOINT_DIR] [--threads 2] [--rows 4096]

The ceiling: the encoder's linear layers (per layer: query, key, value and output of
width hidden -> hidden, then hidden -> intermediate and intermediate -> hidden), each on
`rows` pieces at once, through the kernels our pipeline runs them with: fp32 through the
backend `pytorch/quantized.fp32_backend` picks for the shape (torch's linear, MKL, or a
oneDNN-packed weight), int8 through our `Int8Linear` (torch's dynamic quantized linear, on
the engine `int8_engine` picks for the shape: fbgemm or oneDNN). The rate of the mix,
weighted as one layer has them, in GFLOP/s.

Useful work: a piece costs 2 x the encoder's linear weights per layer (a multiply and an
add each) plus attention's two products (QK^T and AV, 2 x 2 x L x hidden per layer for a
window of L pieces): `flops_per_piece`. A system's useful GFLOP/s is its pieces a second
times that, whatever it spends on padding, Python or the heads; its fraction of the
ceiling is what the rest of the step leaves of the hardware's rate.
"""
import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple


def linear_shapes(config: Dict) -> List[Tuple[int, int, int]]:
    """(in, out, count per layer) of the encoder's linear layers."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    return [(hidden, hidden, 4), (hidden, inter, 1), (inter, hidden, 1)]


def flops_per_piece(config: Dict, mean_window: float) -> float:
    """Useful FLOPs of one piece through the encoder in a window of `mean_window` pieces."""
    hidden = config["hidden_size"]
    linear = sum(2 * i * o * n for i, o, n in linear_shapes(config))
    attention = 2 * 2 * mean_window * hidden
    return config["num_hidden_layers"] * (linear + attention)


def _best_seconds(fn, repeat: int) -> float:
    """The fastest of `repeat` calls after three warm-up calls: a ceiling is what the
    hardware can do, so the best run (a median would fold in the machine's noise)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(config: Dict, threads: int, rows: int = 4096, repeat: int = 20, passes: int = 3) -> Dict:
    """The fp32 and int8 ceilings in GFLOP/s, and each shape's own rate: the best of
    `passes` passes over all shapes (a slow stretch of the machine, another VM's load, can
    outlast one shape's `repeat` calls: a single pass once read 111 GFLOP/s for a shape that
    runs at 208)."""
    import torch

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    entries, calls = [], []
    with torch.no_grad():
        for n_in, n_out, count in linear_shapes(config):
            linear = torch.nn.Linear(n_in, n_out)
            x = torch.randn(rows, n_in, generator=generator)
            entry, runs = _kernels(linear, rows)
            entry["per_layer"] = count
            entries.append((entry, count, 2.0 * rows * n_in * n_out))
            calls.append({kind: (lambda fn=fn, x=x: fn(x)) for kind, fn in runs.items()})
        best = [{kind: float("inf") for kind in runs} for runs in calls]
        for _ in range(passes):
            for shape_best, runs in zip(best, calls):
                for kind, fn in runs.items():
                    shape_best[kind] = min(shape_best[kind], _best_seconds(fn, repeat))
    totals = {"fp32": [0.0, 0.0], "int8": [0.0, 0.0]}
    for (entry, count, flops), shape_best in zip(entries, best):
        for kind, seconds in shape_best.items():
            entry[f"{kind}_gflops"] = round(flops / seconds / 1e9, 1)
            totals[kind][0] += flops * count
            totals[kind][1] += seconds * count
    result = {"rows": rows, "threads": threads, "passes": passes, "shapes": [e for e, _, _ in entries]}
    for kind, (flops, seconds) in totals.items():
        result[f"{kind}_gflops"] = round(flops / seconds / 1e9, 1) if seconds else None
    return result


def _kernels(linear, rows: int):
    """(description, {"fp32": fn, "int8": fn}) of one shape, on the kernels our pipeline
    picks for it (pytorch/quantized.fp32_backend, int8_engine)."""
    import torch.nn.functional as F

    from spacy_bert_cls.pytorch.quantized import Int8Linear, OneDNNLinear, fp32_backend, int8_engine, int8_supported

    backend = fp32_backend(linear)
    fp32 = OneDNNLinear(linear, rows) if backend == "onednn" else (lambda t: F.linear(t, linear.weight, linear.bias))
    entry = {"in": linear.in_features, "out": linear.out_features, "fp32_backend": backend}
    runs = {"fp32": fp32}
    if int8_supported():
        runs["int8"] = Int8Linear(linear, None)
        entry["int8_engine"] = int8_engine(linear)
    return entry, runs


def mean_window(texts: Sequence[str], bert: Path, window_size: int = 256) -> Tuple[float, float]:
    """(pieces of all texts, mean window length with [CLS] and [SEP]) as our pipeline cuts them."""
    from spacy_bert_cls.tokenization import load_piece_tokenizer

    tokenizer = load_piece_tokenizer(bert)
    lengths = [len(ids) for ids, _ in tokenizer.encode_batch(list(texts))]
    content = window_size - 2
    windows = [min(n, content) + 2 for n in lengths]  # texts this short take one window
    return float(sum(lengths)), statistics.mean(windows) if windows else 0.0


def main(argv=None) -> int:
    from benchmarks.speed_pipeline import default_bert

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bert", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", type=int, default=4096)
    args = p.parse_args(argv)
    bert = Path(args.bert) if args.bert else default_bert()
    config = json.loads((bert / "config.json").read_text(encoding="utf8"))
    print(json.dumps(measure(config, args.threads, args.rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
