"""GPU check of a joint pipeline's training: summed step, per_listener_optimizer, fp16.

    python -m benchmarks.gpu_check [--steps N] [--size tiny|minilm]

Builds `bert` + `bert_textcat` + `bert_ner` on a randomly initialised encoder (tiny, or
all-MiniLM-L6-v2's sizes with the tests' small vocabulary), moves it to the GPU with
spacy.require_gpu, and trains each variant on the same synthetic batches: per variant it
prints the first and last losses of both heads, the mean step time after a warm-up, the
device of the encoder's weights, and whether the saved pipeline predicts the same on reload.
Exits non-zero if a variant fails to learn or errs. Needs a CUDA GPU and cupy.
"""
import argparse
import random
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--size", choices=["tiny", "minilm"], default="minilm")
    parser.add_argument("--cpu", action="store_true", help="smoke-test the script itself on the CPU")
    args = parser.parse_args()

    import spacy
    import torch
    from spacy.training import Example
    from thinc.api import Adam, fix_random_seed

    import spacy_bert_cls  # noqa: F401  (registers the factories where the package is not installed)
    from spacy_bert_cls.testing import TINY_SIZES, tiny_vocab, write_tiny_checkpoint

    cuda = not args.cpu
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
    if cuda:
        print(torch.cuda.get_device_name(0))
        assert spacy.require_gpu(), "spacy.require_gpu() found no GPU"

    def sync():
        if cuda:
            torch.cuda.synchronize()
    sizes = TINY_SIZES if args.size == "tiny" else dict(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
        max_position_embeddings=512)
    words = tiny_vocab()
    rng = random.Random(0)
    content = [w for w in words if w.isalpha() and not w.startswith("[")]
    data = []
    for i in range(256):
        n = rng.randint(5, 30)
        toks = [rng.choice(content) for _ in range(n)]
        text = " ".join(toks)
        # learnable: the class is which half of the vocabulary the first word is from; the
        # entity is the second word
        pos = content.index(toks[0]) < len(content) // 2
        if i % 2:
            data.append((text, {"cats": {"POS": float(pos), "NEG": float(not pos)}}))
        else:
            start = len(toks[0]) + 1
            data.append((text, {"entities": [(start, start + len(toks[1]), "PER")]}))

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_tiny_checkpoint(Path(tmp) / "ckpt", **{k: v for k, v in sizes.items() if k in (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")})
        model_config = {"@architectures": "spacy-bert-cls.BertTransformer.v1", "vocab_size": len(words),
                        **sizes, "window_size": min(128, sizes["max_position_embeddings"]),
                        "stride": min(96, sizes["max_position_embeddings"] * 3 // 4)}
        for variant in ("summed", "per_listener", "per_listener_fp16"):
            fix_random_seed(0)
            nlp = spacy.blank("en")
            nlp.add_pipe("bert", config={
                "model": {**model_config, "mixed_precision": variant.endswith("fp16")},
                "per_listener_optimizer": variant.startswith("per_listener")})
            width = sizes["hidden_size"]
            nlp.add_pipe("bert_textcat", config={"model": {
                "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": True,
                "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": width}}})
            nlp.add_pipe("bert_ner", config={"model": {
                "@architectures": "spacy-bert-cls.BertTagger.v1",
                "tok2vec": {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width,
                            "pooling": {"@layers": "reduce_first.v1"}}}})
            examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in data]
            nlp.config["initialize"]["components"]["bert"] = {
                "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(ckpt)}}
            optimizer = nlp.initialize(lambda: examples, sgd=Adam(5e-4, grad_clip=1.0))
            history, times = [], []
            try:
                for step in range(args.steps):
                    batch = rng.sample(examples, 64)
                    sync()
                    t0 = time.perf_counter()
                    losses = nlp.update(batch, sgd=optimizer, losses={})
                    sync()
                    times.append(time.perf_counter() - t0)
                    history.append(losses)
                encoder = next(n for n in nlp.get_pipe("bert").model.walk() if n.shims).shims[0]._model
                device = next(encoder.parameters()).device
                texts = [t for t, _ in data[:32]]
                before = [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in nlp.pipe(texts)]
                nlp.to_disk(Path(tmp) / variant)
                again = spacy.load(Path(tmp) / variant)
                after = [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in again.pipe(texts)]
                same = all(ea == eb and all(abs(ca[k] - cb[k]) < 1e-4 for k in ca)
                           for (ca, ea), (cb, eb) in zip(before, after))
                first = {k: round(sum(h[k] for h in history[:5]) / 5, 4) for k in ("bert_textcat", "bert_ner")}
                last = {k: round(sum(h[k] for h in history[-5:]) / 5, 4) for k in ("bert_textcat", "bert_ner")}
                warm = times[5:] or times
                print(f"{variant}: device {device}, loss first5 {first} last5 {last}, "
                      f"step {1000 * sum(warm) / len(warm):.1f} ms, reload same predictions {same}")
                if not (last["bert_textcat"] < first["bert_textcat"] and last["bert_ner"] < first["bert_ner"]):
                    failures.append(f"{variant}: a head did not learn")
                if cuda and device.type != "cuda":
                    failures.append(f"{variant}: encoder on {device}")
                if not same:
                    failures.append(f"{variant}: reload changed predictions")
            except Exception as err:  # report and go on to the next variant
                import traceback
                traceback.print_exc()
                failures.append(f"{variant}: {type(err).__name__}: {err}")
    print("FAILURES" if failures else "ALL OK", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
