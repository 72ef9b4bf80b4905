"""PieceTokenizer: the checkpoint's own word-piece tokenizer, with offsets.

The pieces are computed on a doc's whole text with the checkpoint's tokenizer.json
(or one built from vocab.txt with the checkpoint's casing and accent settings), so
the ids are exactly those its HF tokenizer gives. Offsets align them to spaCy tokens.
"""
import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy
from tokenizers import Tokenizer, normalizers, pre_tokenizers, decoders
from tokenizers.models import WordPiece

from ..errors import CheckpointError
from ..safe_tokenizer import replace_surrogates

logger = logging.getLogger(__name__)

TOKENIZER_JSON = "tokenizer.json"
VOCAB_TXT = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
SPECIAL_ROLES = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token")
DEFAULT_SPECIALS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
}
SPECIALS_ORDER = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

Encoded = Tuple[numpy.ndarray, numpy.ndarray]  # (ids int64 [n], offsets int64 [n, 2])


class PieceTokenizer:
    """A `tokenizers.Tokenizer` plus the ids of BERT's special tokens.

    tokenizer (tokenizers.Tokenizer): the word-piece tokenizer; its own truncation,
        padding and post-processing are switched off: windows add [CLS]/[SEP].
    specials (Dict[str, str]): the special tokens by role (cls_token, sep_token, ...).
    """

    def __init__(self, tokenizer: Tokenizer, specials: Dict[str, str]) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.specials = dict(specials)
        ids = {}
        for role, token in self.specials.items():
            token_id = tokenizer.token_to_id(token)
            if token_id is None:
                raise ValueError(f"special token {token!r} ({role}) is not in the vocabulary")
            ids[role] = token_id
        self.cls_id = ids["cls_token"]
        self.sep_id = ids["sep_token"]
        self.pad_id = ids["pad_token"]
        self.unk_id = ids["unk_token"]
        self.mask_id = ids.get("mask_token")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: Sequence[str]) -> List[Encoded]:
        """Word pieces of each text, without special tokens.

        RETURNS (List[Tuple[ndarray, ndarray]]): per text, the piece ids (int64, [n])
            and their character offsets into the text (int64, [n, 2]).
        """
        # Lone surrogates are legal in a Python str but not in UTF-8: `tokenizers` cannot take
        # them. Each becomes U+FFFD, one character for one, so offsets stay those of the doc.
        clean = [replace_surrogates(text) for text in texts]
        encodings = self.tokenizer.encode_batch(clean, add_special_tokens=False)
        return [
            (
                numpy.asarray(enc.ids, dtype="int64"),
                numpy.asarray(enc.offsets, dtype="int64").reshape(-1, 2),
            )
            for enc in encodings
        ]

    def to_dict(self) -> dict:
        return {"tokenizer": self.tokenizer.to_str(), "specials": self.specials}

    @classmethod
    def from_dict(cls, data: dict) -> "PieceTokenizer":
        return cls(Tokenizer.from_str(data["tokenizer"]), data["specials"])

    def __reduce__(self):
        return (_from_dict, (self.to_dict(),))

    def __eq__(self, other) -> bool:
        return isinstance(other, PieceTokenizer) and self.to_dict() == other.to_dict()


def _from_dict(data: dict) -> PieceTokenizer:
    return PieceTokenizer.from_dict(data)


def load_piece_tokenizer(path: Union[str, Path]) -> PieceTokenizer:
    """Load the tokenizer of a checkpoint folder, or a tokenizer.json / vocab.txt file.

    A folder's tokenizer.json wins over its vocab.txt; a vocab.txt gets the casing,
    accent and CJK settings of the folder's tokenizer_config.json, or, without one,
    lower-casing exactly when the vocabulary has no upper-case entries.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        if (path / TOKENIZER_JSON).is_file():
            path = path / TOKENIZER_JSON
        elif (path / VOCAB_TXT).is_file():
            path = path / VOCAB_TXT
        else:
            raise CheckpointError(path, f"no {TOKENIZER_JSON} or {VOCAB_TXT} in this folder")
    elif not path.is_file():
        raise CheckpointError(path, "tokenizer file not found")
    settings = _read_settings(folder) if (path.parent == folder) else {}
    specials = _specials(folder, settings)
    if path.name.endswith(".json"):
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises plain Exception subclasses
            raise CheckpointError(path, f"not a readable tokenizers JSON file ({err})") from None
    else:
        tokenizer = _wordpiece_from_vocab(path, settings, specials["unk_token"])
    try:
        return PieceTokenizer(tokenizer, specials)
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(path, f"invalid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(path, "expected a JSON object")
    return data


def _read_settings(folder: Path) -> dict:
    path = folder / TOKENIZER_CONFIG
    return _read_json_object(path) if path.is_file() else {}


def _specials(folder: Path, settings: dict) -> Dict[str, str]:
    specials = dict(DEFAULT_SPECIALS)
    sources = [settings]
    if (folder / SPECIAL_TOKENS_MAP).is_file():
        sources.append(_read_json_object(folder / SPECIAL_TOKENS_MAP))
    for source in sources:
        for role in SPECIAL_ROLES:
            value = source.get(role)
            if isinstance(value, dict):  # {"content": "[CLS]", ...} in newer files
                value = value.get("content")
            if isinstance(value, str):
                specials[role] = value
    return specials


def _read_vocab(path: Path) -> Dict[str, int]:
    # As HF's load_vocab: one token a line, its line number is its id.
    vocab: Dict[str, int] = {}
    try:
        with path.open(encoding="utf8") as file_:
            for i, line in enumerate(file_):
                vocab[line.rstrip("\n")] = i
    except UnicodeDecodeError as err:
        raise CheckpointError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not vocab:
        raise CheckpointError(path, "the vocabulary is empty")
    return vocab


def _wordpiece_from_vocab(path: Path, settings: dict, unk_token: str) -> Tokenizer:
    vocab = _read_vocab(path)
    lowercase = settings.get("do_lower_case")
    if lowercase is None:
        specials = set(DEFAULT_SPECIALS.values())
        lowercase = not any(t not in specials and any(c.isupper() for c in t) for t in vocab)
        logger.info("%s: no do_lower_case setting; %s from the vocabulary", path,
                    "lower-casing (no upper-case entries)" if lowercase else "keeping case")
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
        strip_accents=settings.get("strip_accents"),
        lowercase=bool(lowercase),
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    # As HF's converted BertTokenizerFast: "[MASK]" in a text is the mask token, not "[", "mask", "]".
    tokenizer.add_special_tokens([t for t in SPECIALS_ORDER if t in vocab])
    return tokenizer


def train_wordpiece(paragraphs, vocab_size: int, *, lowercase: bool = True, min_frequency: int = 2) -> PieceTokenizer:
    """A new WordPiece vocabulary learnt from an iterator of texts (BERT's normaliser and
    pre-tokenizer; [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0-4)."""
    from tokenizers import trainers

    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIALS_ORDER), continuing_subword_prefix="##",
                                        show_progress=False)
    tokenizer.train_from_iterator(paragraphs, trainer=trainer)
    return PieceTokenizer(tokenizer, dict(DEFAULT_SPECIALS))


def tokenizer_lowercases(tokenizer: PieceTokenizer) -> bool:
    """Whether the tokenizer's normaliser lower-cases (BertNormalizer or Lowercase)."""
    normalizer = json.loads(tokenizer.tokenizer.to_str()).get("normalizer") or {}
    parts = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    return any(part.get("type") == "Lowercase" or (part.get("type") == "BertNormalizer" and part.get("lowercase"))
               for part in parts)


def save_piece_tokenizer(tokenizer: PieceTokenizer, folder: Union[str, Path], lowercase: bool,
                         model_max_length: int = 512) -> None:
    """Write tokenizer.json, vocab.txt, tokenizer_config.json and special_tokens_map.json,
    as an HF BertTokenizerFast expects them (with [CLS] ... [SEP] added on encoding).

    model_max_length (int): where HF's tokenizer truncates (the encoder's positions)."""
    from tokenizers.processors import TemplateProcessing

    from ..checkpoint.io import atomic_path, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf = Tokenizer.from_str(tokenizer.tokenizer.to_str())
    cls, sep = tokenizer.specials["cls_token"], tokenizer.specials["sep_token"]
    hf.post_processor = TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.cls_id), (sep, tokenizer.sep_id)],
    )
    with atomic_path(folder / TOKENIZER_JSON) as tmp:
        hf.save(str(tmp))
    vocab = sorted(tokenizer.tokenizer.get_vocab(with_added_tokens=True).items(), key=lambda kv: kv[1])
    with atomic_path(folder / VOCAB_TXT) as tmp:
        tmp.write_text("".join(piece + "\n" for piece, _ in vocab), encoding="utf8")
    write_json(folder / TOKENIZER_CONFIG, {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase,
                                           "strip_accents": None, "tokenize_chinese_chars": True,
                                           "model_max_length": model_max_length, **tokenizer.specials})
    write_json(folder / SPECIAL_TOKENS_MAP, dict(tokenizer.specials))
