"""Helpers the tests and the benchmarks share: a tiny random BERT checkpoint, and hiding packages.

In one importable place, as thinc and spaCy ship their testing helpers: a tiny random BERT
checkpoint, and the code that hides optional packages from a fresh process. Nothing here
runs at import time or needs pytest; tests/conftest.py, the benchmarks and anyone checking
a pipeline of their own import it the same way.

    from spacy_bert_cls.testing import write_tiny_checkpoint, TINY_SIZES, tiny_vocab
    write_tiny_checkpoint(Path("tiny_bert"))  # vocab.txt, tokenizer_config.json, weights

    from spacy_bert_cls.testing import ANCHORS, PRELUDE
    code = PRELUDE.format(optional=ANCHORS) + "import spacy; ..."  # for `python -c`
"""
from pathlib import Path
from typing import List

# Enough of a vocabulary for the test sentences: every letter and digit, alone and
# as a continuation piece, some whole words and punctuation.
TINY_WORDS = (
    "the a an i you it is was this that and or not no very good bad great awful love hate "
    "movie film book food service paris london berlin john mary acme corp inc visited "
    "lives in at of to from with new york city said buy phone today . , ! ? ' - : / ( ) # @ & "
).split()

# The tiny checkpoint's sizes: a BertTransformer that loads it takes these too.
TINY_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64)


def tiny_vocab() -> List[str]:
    """The tiny checkpoint's word pieces, in vocab.txt's order."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    return specials + chars + ["##" + c for c in chars] + sorted(set(TINY_WORDS) - set(chars))


def write_tiny_checkpoint(folder: Path, seed: int = 0, **overrides) -> Path:
    """A random BERT of TINY_SIZES (or these with `overrides`) and its tokenizer files,
    written to `folder` as a checkpoint the package loads; the same weights for the same
    seed. Returns `folder`."""
    import torch

    from .checkpoint import save_bert_checkpoint
    from .pytorch import BertConfig, BertModel

    vocab = tiny_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true}', encoding="utf8")
    config = BertConfig(vocab_size=len(vocab), **{**TINY_SIZES, **overrides})
    torch.manual_seed(seed)
    save_bert_checkpoint(folder, config, BertModel(config).state_dict())
    return folder


# The anchors (the test-only extra): spaCy imports an installed plugin's factories, and so
# spacy-transformers' transformers, into any pipeline's process; PRELUDE.format(optional=ANCHORS)
# hides them, as on a machine without them.
ANCHORS = ["spacy_transformers", "transformers", "huggingface_hub"]

# Python source to run first in a fresh process (format it with optional=[module names]):
# the named packages are as if not installed: not importable, and their distributions
# (entry points included) invisible to importlib.metadata, which spaCy's registry reads.
PRELUDE = """
import importlib.metadata as metadata, json, sys
for name in {optional!r}:
    sys.modules[name] = None
_distributions = metadata.distributions
def distributions(**kwargs):
    for dist in _distributions(**kwargs):
        if (dist.metadata["Name"] or "").lower().replace("-", "_") not in {optional!r}:
            yield dist
metadata.distributions = distributions
"""
