"""Both ways with transformers on real data: wnut17, fine-tuned in HF and imported, trained here and exported.

    python -m benchmarks.hf_wnut17 [--out benchmarks/results/hf_bridge] [--threads 1]
        [--limit N] [--epochs E] [--stages prepare,hf,ours,compare]

1. prepare: the accuracy benchmark's data preparation of wnut17 (benchmarks.accuracy.prepare).
2. hf: plain HF fine-tuning of BertForTokenClassification from all-MiniLM-L6-v2 with the
   budget of benchmarks/accuracy/budget.json (benchmarks.accuracy.run_hf, its model saved).
3. ours: our bert + bert_ner (configs/bert_ner.cfg, BILUO, constrained decoder) trained on the
   same data with the same budget (benchmarks.accuracy.run_spacy ours).
4. compare: exact-match entity P/R/F on the test split of
   - the HF model as HF evaluates it (each CoNLL word's first piece, argmax, IOB2 spans) and
     the same model imported with `import_hf`, decoded with `argmax` (the same rule on spaCy's
     tokens, which are the CoNLL words here): the entities must be identical;
   - the imported model with our default constrained decoder (agreement with HF's entities);
   - transformers.pipeline(aggregation_strategy="first") on the sentences' text against the
     imported model's `hf_first` decoder (same entities; the unaligned ones are counted);
   - our trained pipeline, exported with `export_hf` and loaded by transformers, against the
     pipeline itself, in the same three ways.
   Writes OUT/hf_wnut17.json and prints a table.

Each stage is skipped when its output exists (delete it to redo). Smoke run:
`--limit 200 --epochs 1 --out /tmp/hf_bridge_smoke`.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]

DATASET = "wnut17"


def run(cmd, log: Path) -> None:
    print("$", " ".join(str(c) for c in cmd), f"> {log}", flush=True)
    with log.open("w") as file_:
        subprocess.run([str(c) for c in cmd], check=True, stdout=file_, stderr=subprocess.STDOUT, cwd=ROOT)


def stage_prepare(args) -> None:
    if (args.data / DATASET / "test.conll").is_file():
        return
    run([sys.executable, "-m", "benchmarks.accuracy.prepare", DATASET, "--out", args.data, "--limit", args.limit],
        args.out / "prepare.log")


def stage_hf(args) -> None:
    if (args.hf_model / "config.json").is_file():
        return
    cmd = [sys.executable, "-m", "benchmarks.accuracy.run_hf", DATASET, "--data-dir", args.data,
           "--out-dir", args.out / "hf", "--threads", args.threads, "--save-model", args.hf_model]
    run(cmd + _budget_overrides(args), args.out / "hf.log")


def stage_ours(args) -> None:
    if (args.ours_model / "config.cfg").is_file():
        return
    cmd = [sys.executable, "-m", "benchmarks.accuracy.run_spacy", "ours", DATASET, "--results", args.out,
           "--data", args.data, "--threads", args.threads]
    run(cmd + _budget_overrides(args), args.out / "ours.log")


def _budget_overrides(args) -> list:
    return (["--limit", args.limit] if args.limit else []) + (["--epochs", args.epochs] if args.epochs else [])


def word_level_predictions(model, tokenizer, sentences):
    """HF's evaluation: each word's tag from its first piece's argmax; spans as seqeval reads
    IOB2 tags; an entity's score is the mean of its words' probabilities (run_hf.py's way)."""
    from benchmarks.accuracy import run_hf

    tags = [model.config.id2label[i] for i in range(model.config.num_labels)]
    encoded, _, _ = run_hf.tokenize_ner(tokenizer, [(words, ["O"] * len(words)) for words in sentences], {})
    logits = run_hf.predict(model, [e[0] for e in encoded], tokenizer.pad_token_id, 64)
    predictions = []
    for (_, first, _), lg in zip(encoded, logits):
        word_tags, word_probs = [], []
        for f in first:
            p = run_hf.softmax(lg[f]) if f is not None else None
            word_tags.append(tags[int(p.argmax())] if p is not None else "O")
            word_probs.append(float(p.max()) if p is not None else 1.0)
        predictions.append(run_hf.iob2_spans(word_tags, word_probs))
    return predictions


def our_predictions(nlp, sentences, decoder):
    from spacy.tokens import Doc

    ner = nlp.get_pipe("bert_ner")
    previous, ner.decoder = ner.decoder, decoder
    try:
        docs = nlp.pipe((Doc(nlp.vocab, words=words) for words in sentences), batch_size=64)
        return [[[e.start, e.end, e.label_, e._.confidence] for e in doc.ents] for doc in docs]
    finally:
        ner.decoder = previous


def pipeline_parity(nlp, hf_dir: Path, sentences):
    """transformers.pipeline(aggregation 'first') on the text against our hf_first decoder."""
    import transformers
    from spacy.tokens import Doc

    hf = transformers.pipeline("token-classification", model=str(hf_dir), aggregation_strategy="first",
                               device=-1)
    ner = nlp.get_pipe("bert_ner")
    previous, ner.decoder = ner.decoder, "hf_first"
    same = unaligned_docs = n_unaligned = 0
    score_diff = 0.0
    try:
        docs = list(nlp.pipe((Doc(nlp.vocab, words=words) for words in sentences), batch_size=64))
    finally:
        ner.decoder = previous
    for doc in docs:
        theirs = [(e["start"], e["end"], e["entity_group"], float(e["score"])) for e in hf(doc.text)]
        unaligned = doc.spans["bert_ner"].attrs.get("unaligned", [])
        if unaligned:
            unaligned_docs += 1
            n_unaligned += len(unaligned)
            continue
        ours = [(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents]
        if [o[:3] for o in ours] == [t[:3] for t in theirs]:
            same += 1
            score_diff = max([score_diff] + [abs(o[3] - t[3]) for o, t in zip(ours, theirs)])
    aligned = len(docs) - unaligned_docs
    return {"sentences": len(docs), "aligned_sentences": aligned, "aligned_same_entities": same,
            "sentences_with_unaligned_entities": unaligned_docs, "unaligned_entities": n_unaligned,
            "max_score_diff": score_diff}


def compare_sets(reference, other):
    """Entity-level agreement and the largest score difference over identical entities."""
    same = total = 0
    score_diff = 0.0
    identical_sentences = 0
    for a, b in zip(reference, other):
        a_spans = {tuple(e[:3]): e[3] for e in a}
        b_spans = {tuple(e[:3]): e[3] for e in b}
        common = a_spans.keys() & b_spans.keys()
        same += len(common)
        total += len(a_spans.keys() | b_spans.keys())
        identical_sentences += a_spans.keys() == b_spans.keys()
        score_diff = max([score_diff] + [abs(a_spans[k] - b_spans[k]) for k in common])
    return {"agreement": same / total if total else 1.0, "entities_same": same, "entities_union": total,
            "identical_sentences": identical_sentences, "max_score_diff": score_diff}


def both_ways(nlp, hf_dir: Path, test, gold) -> dict:
    """One pipeline and its HF twin (the folder it was imported from or exported to), scored
    and compared on the test sentences."""
    import transformers

    from benchmarks.accuracy.score import entity_prf

    t0 = time.perf_counter()
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    model = transformers.AutoModelForTokenClassification.from_pretrained(hf_dir).eval()
    hf_preds = word_level_predictions(model, tokenizer, test)
    argmax = our_predictions(nlp, test, "argmax")
    constrained = our_predictions(nlp, test, "constrained")
    return {
        "hf_word_level": entity_prf(gold, hf_preds),
        "ours_argmax": entity_prf(gold, argmax),
        "ours_constrained": entity_prf(gold, constrained),
        "argmax_vs_hf": compare_sets(hf_preds, argmax),
        "constrained_vs_hf": compare_sets(hf_preds, constrained),
        "pipeline_vs_hf_first": pipeline_parity(nlp, hf_dir, test),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def stage_compare(args) -> dict:
    import spacy
    import torch

    from benchmarks.accuracy import run_hf
    from benchmarks.accuracy.score import read_gold
    from spacy_bert_cls.interop.hf_export import export_hf
    from spacy_bert_cls.interop.hf_import import import_hf

    torch.set_num_threads(args.threads)
    test = [words for words, _ in run_hf.read_conll(args.data / DATASET / "test.conll")]
    gold = read_gold(args.data / DATASET, "test", "ner")
    result = {"n_test": len(test), "limit": args.limit or None, "epochs": args.epochs or None}
    # HF -> import: what a user gets is the saved pipeline, so that is what is scored.
    import_hf(args.hf_model, args.out / "imported", overwrite=True)
    result["import"] = both_ways(spacy.load(args.out / "imported"), args.hf_model, test, gold)
    # ours -> export
    ours = spacy.load(args.ours_model)
    export_hf(ours, args.out / "exported", overwrite=True)
    result["export"] = both_ways(ours, args.out / "exported", test, gold)
    for name in ("hf", "ours"):
        run_json = args.out / name / DATASET / "run.json"
        if run_json.is_file():
            info = json.loads(run_json.read_text())
            result[f"{name}_training"] = {k: info.get(k) for k in ("n_train", "epochs", "steps", "train_seconds")}
    return result


def table(result: dict) -> str:
    rows = [("HF fine-tuned, HF's word-level evaluation", result["import"]["hf_word_level"]),
            ("  imported, decoder argmax", result["import"]["ours_argmax"]),
            ("  imported, decoder constrained (default)", result["import"]["ours_constrained"]),
            ("ours (bert_ner), decoder constrained (default)", result["export"]["ours_constrained"]),
            ("  ours, decoder argmax", result["export"]["ours_argmax"]),
            ("  exported, HF's word-level evaluation", result["export"]["hf_word_level"])]
    lines = ["| model | P | R | F |", "|---|---|---|---|"]
    lines += [f"| {name} | {m['p']:.4f} | {m['r']:.4f} | {m['f']:.4f} |" for name, m in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hf_bridge")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="smoke runs: at most N examples per split")
    ap.add_argument("--epochs", type=int, default=0, help="smoke runs: override the budget's epochs")
    ap.add_argument("--stages", default="prepare,hf,ours,compare")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.data = args.out / "data"
    args.hf_model = args.out / "hf" / DATASET / "model"
    args.ours_model = args.out / "ours" / DATASET / "model-last"
    stages = args.stages.split(",")
    for name, stage in (("prepare", stage_prepare), ("hf", stage_hf), ("ours", stage_ours)):
        if name in stages:
            t0 = time.perf_counter()
            stage(args)
            print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "compare" in stages:
        result = stage_compare(args)
        (args.out / "hf_wnut17.json").write_text(json.dumps(result, indent=2) + "\n")
        print(table(result))
        for side in ("import", "export"):
            print(side, json.dumps({k: v for k, v in result[side].items() if "vs" in k}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
