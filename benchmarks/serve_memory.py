"""Memory of a pipeline that serves requests of every size: RSS as requests come in.

    python -m benchmarks.serve_memory PIPELINE [--requests 500] [--most 16] [--onednn]

Loads PIPELINE (a folder from `spacy-bert-cls quantize` or `spacy train`), then runs
`nlp.pipe` on --requests requests of 1 to --most texts each, drawn at random (seed 0) from
speed_cpu's 2,000 texts, 2 torch threads, and prints the process's RSS every 100 requests.
A server's batches have every size, so the encoder's packed rows take many counts; a kernel
that keeps something per row count grows the process with each new one.

--onednn puts every linear layer on oneDNN's kernels (fp32: OneDNNLinear; int8: the oneDNN
engine), as `fp32_backend` and `int8_engine` choose where oneDNN is faster, so that the
check runs on any CPU. It sets their per-process choice after loading, before the first
prediction builds the encoder's inference copy.
"""
import argparse
import random
import sys
from pathlib import Path

from benchmarks.speed_pipeline import DEFAULT_DATASETS, _rss_mib_now, read_texts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--most", type=int, default=16)
    p.add_argument("--onednn", action="store_true")
    p.add_argument("--datasets", default=str(DEFAULT_DATASETS))
    args = p.parse_args(argv)
    if not (args.pipeline / "config.cfg").is_file():
        print(f"{args.pipeline}: not a pipeline folder (no config.cfg); give the folder of a saved pipeline")
        return 1
    import torch

    torch.set_num_threads(2)
    import spacy

    from benchmarks import speed_cpu
    from spacy_bert_cls.models.encoder import get_bert_shim
    from spacy_bert_cls.pytorch import quantized

    nlp = spacy.load(args.pipeline)
    if args.onednn:
        bert = get_bert_shim(nlp.get_pipe("bert").model).windowed.bert
        for name in quantized.quantizable_layers(bert):
            linear = bert.get_submodule(name)
            for kind in ("fp32", "int8"):
                quantized._BACKENDS[(kind, linear.in_features, linear.out_features)] = "onednn"
    texts = read_texts(Path(args.datasets), speed_cpu.DEFAULT_TEXTS)
    rng = random.Random(0)
    print(f"{args.pipeline}: loaded, RSS {_rss_mib_now():.0f} MiB", flush=True)
    for i in range(args.requests):
        for _ in nlp.pipe(rng.sample(texts, rng.randint(1, args.most))):
            pass
        if (i + 1) % 100 == 0:
            print(f"{i + 1} requests: RSS {_rss_mib_now():.0f} MiB", flush=True)
    chosen = sorted({(k[0], v) for k, v in quantized._BACKENDS.items()})
    print("kernels:", ", ".join(f"{kind} {engine}" for kind, engine in chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
