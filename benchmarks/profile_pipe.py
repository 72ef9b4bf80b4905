"""Where `nlp.pipe`'s time goes, stage by stage, from text in to doc.cats and doc.ents out
(issue 23): py-spy samples of our pipeline on the speed benchmark's texts.

    python -m benchmarks.profile_pipe PIPELINE [--py-spy PATH] [--threads 2] [--passes 3]

PIPELINE: a pipeline folder, e.g. the `ours-fp32` or `ours-int8` that
`python -m benchmarks.speed_cpu --child build --work DIR --result DIR/build.json --bert MINILM`
writes (bert + bert_textcat + bert_ner, configs/bert_textcat_ner.cfg). The texts are
speed_cpu's (1,000 rotten_tomatoes + 1,000 goemotions test lines, batch 64); one untimed pass,
then --passes timed passes under py-spy (250 samples a second, no hook on any call, so the
shares are the run's own: cProfile inflates spaCy's per-token Cython many times over).

Each sample counts for the first stage of STAGES whose marker is on its stack (the most
specific first: a linear layer inside the encoder counts as "linear layers", not "encoder").
Prints the table (stage, share, ms per 1,000 words) and writes the raw samples beside the
JSON under benchmarks/results/.
"""
import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

from benchmarks import host_profile
from benchmarks.speed_cpu import DEFAULT_TEXTS, RESULTS
from benchmarks.speed_pipeline import DEFAULT_DATASETS, read_texts

# (stage, markers): a marker is a substring of py-spy's "function (file:line)" frame.
STAGES: List[Tuple[str, Tuple[str, ...]]] = [
    ("encoder: linear layers (matmuls)", ("Linear.forward (", "Int8Linear.forward", "OneDNNLinear.forward")),
    ("encoder: attention (scaled_dot_product_attention)", ("SelfAttention._heads", "SelfAttention.attend")),
    ("encoder: packing (gathers to and from the padded layout)", ("packing.py", "SelfAttention.forward_packed")),
    # Prediction's GELU runs in place, from activate_in_place (no GELU.forward frame).
    ("encoder: GELU", ("GELU.forward", "activate_in_place")),
    ("encoder: LayerNorm, residual adds", ("EncoderLayer._residuals", "_SmoothedLayer._residuals", "layer_norm")),
    ("encoder: embeddings", ("BertEmbeddings.forward",)),
    ("window planning, bucket tensors", ("plan_for", "bucket_tensors", "windows.py")),
    ("word pieces (tokenizers) and alignment", ("piece_encoder_forward",)),
    ("encoder: windows combined, [CLS] pooler, thinc glue", ("WindowedBert.forward", "models/encoder.py")),
    ("spaCy tokenizer", ("make_doc", "tokenizer.pyx", "safe_tokenizer.py")),
    ("bert: outputs to the listeners", ("BertTransformer.set_annotations", "output_table.py")),
    ("listeners: pooling", ("listener_forward", "pool_tokens", "pool_docs")),
    ("bert_textcat: head and doc.cats", ("BertTextCategorizer",)),
    ("bert_ner: head, decoding, doc.ents", ("BertEntityRecognizer",)),
]
OTHER = "spaCy's pipe loop, Python, other"


def stage_of(stack: str) -> str:
    for name, markers in STAGES:
        if any(marker in stack for marker in markers):
            return name
    return OTHER


def shares(samples: Counter) -> Dict[str, float]:
    total = sum(samples.values()) or 1
    by_stage: Counter = Counter()
    for stack, count in samples.items():
        by_stage[stage_of(stack)] += count
    return {name: by_stage[name] / total for name in [s for s, _ in STAGES] + [OTHER]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy binary (pip install py-spy)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    if not args.py_spy:
        raise SystemExit("py-spy not found: pip install py-spy, or give --py-spy PATH")
    import spacy
    import torch

    torch.set_num_threads(args.threads)
    texts = read_texts(Path(DEFAULT_DATASETS), DEFAULT_TEXTS)
    nlp = spacy.load(args.pipeline)
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=args.batch_size))  # warm-up pass

    def step(_):  # host_profile.sample keeps the samples under a frame named `step`
        for _doc in nlp.pipe(texts, batch_size=args.batch_size):
            pass

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = RESULTS / f"profile_pipe-{stamp}.pyspy.txt"
    samples, wall = host_profile.sample(step, list(range(args.passes)), args.py_spy, raw)
    seconds = wall / args.passes
    result = {"pipeline": str(args.pipeline), "threads": args.threads, "words": words, "seconds_per_pass": seconds,
              "words_per_s": words / seconds, "samples": sum(samples.values()), "shares": shares(samples)}
    (RESULTS / f"profile_pipe-{stamp}.json").write_text(json.dumps(result, indent=1))
    print(f"{args.pipeline}: {words:,} words, {seconds:.2f} s a pass under py-spy ({words / seconds:,.0f} words/s), "
          f"{result['samples']:,} samples")
    print("| stage | share | ms per 1,000 words |\n|---|---|---|")
    for name, share in result["shares"].items():
        print(f"| {name} | {share:.1%} | {1000 * share * seconds / words * 1000:.1f} |")
    print(f"raw samples: {raw.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
