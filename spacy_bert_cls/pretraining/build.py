"""The tokenizer and model a pretraining run starts from.

A checkpoint's (continuing it), or new ones (a WordPiece vocabulary learnt from the raw
text, a BERT of [model]'s sizes)."""
import logging
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..checkpoint.io import read_json, write_json
from ..errors import CheckpointError
from ..pytorch.config import BertConfig
from ..pytorch.heads import BertForPreTraining
from ..tokenization import PieceTokenizer, load_piece_tokenizer
from ..tokenization.wordpiece import TOKENIZER_JSON, VOCAB_TXT, save_piece_tokenizer, train_wordpiece
from .data import iter_paragraphs
from .distributed import Distributed, barrier
from .model import load_pretraining_model
from .settings import Settings

logger = logging.getLogger(__name__)


def build_tokenizer(settings: Settings, source: Optional[Path], output_dir: Path,
                    dist_info: Distributed) -> PieceTokenizer:
    """The checkpoint's tokenizer, or one learnt from the raw text (kept in OUTPUT_DIR/vocab,
    learnt by the main process, read by all). A vocabulary already there (a run resumed
    before its first checkpoint) is used again only if it was learnt from the same file and
    [tokenizer] settings (vocab/source.json): one left by another run was reused, silently."""
    if source is not None:
        return load_piece_tokenizer(source)
    vocab_dir = output_dir / "vocab"
    if dist_info.main:
        learnt_from = _vocab_source(settings)
        found = vocab_dir / VOCAB_SOURCE
        if not (vocab_dir / TOKENIZER_JSON).is_file() or not found.is_file() or read_json(found) != learnt_from:
            paragraphs = iter_paragraphs(settings.raw)
            if settings.tokenizer_train_limit:
                paragraphs = (p for i, p in zip(range(settings.tokenizer_train_limit), paragraphs))
            tokenizer = train_wordpiece(paragraphs, settings.vocab_size, lowercase=settings.lowercase,
                                        min_frequency=settings.min_frequency)
            save_piece_tokenizer(tokenizer, vocab_dir, settings.lowercase)
            write_json(found, learnt_from)
            _report_size(tokenizer.vocab_size, settings)
    barrier(dist_info)
    return load_piece_tokenizer(vocab_dir)


def _report_size(size: int, settings: Settings) -> None:
    """A vocabulary of another size than [tokenizer] vocab_size asks for says so: the
    specials and the text's characters come first, and a small text has fewer pieces."""
    if size != settings.vocab_size:
        why = ("its specials and the text's characters alone take that many" if size > settings.vocab_size else
               f"the text has no more pieces seen at least min_frequency = {settings.min_frequency} times")
        logger.warning("the vocabulary learnt from %s has %d entries where [tokenizer] vocab_size asks for %d: %s",
                       settings.raw, size, settings.vocab_size, why)


# What OUTPUT_DIR/vocab was learnt from (the raw file as it was, and [tokenizer]).
VOCAB_SOURCE = "source.json"


def _vocab_source(settings: Settings) -> Dict[str, object]:
    raw = Path(settings.raw).resolve()
    stat = raw.stat()
    return {"raw": str(raw), "raw_bytes": stat.st_size, "raw_mtime_ns": stat.st_mtime_ns,
            "vocab_size": settings.vocab_size, "lowercase": settings.lowercase,
            "min_frequency": settings.min_frequency, "train_limit": settings.tokenizer_train_limit}


def build_model(settings: Settings, source: Optional[Path],
                tokenizer: PieceTokenizer) -> Tuple[BertForPreTraining, BertConfig]:
    """A new model of [model]'s sizes, or the checkpoint's, checked against its tokenizer
    and [objective] max_length."""
    if source is None:
        sizes = {**settings.model, "vocab_size": tokenizer.vocab_size,
                 "max_position_embeddings": max(settings.model.get("max_position_embeddings", 512), settings.max_length),
                 "pad_token_id": tokenizer.pad_id}
        config = BertConfig.from_dict(sizes)
        return BertForPreTraining(config), config
    model, config, _ = load_pretraining_model(source)
    if tokenizer.vocab_size != config.vocab_size:
        tokenizer_file = source / (TOKENIZER_JSON if (source / TOKENIZER_JSON).is_file() else VOCAB_TXT)
        raise CheckpointError(tokenizer_file, f"the tokenizer has {tokenizer.vocab_size} entries but config.json "
                                              f"says vocab_size = {config.vocab_size}: the vocabulary does not "
                                              f"belong to these weights")
    if settings.max_length > config.max_position_embeddings:
        raise ValueError(f"[objective] max_length {settings.max_length} is over the checkpoint's "
                         f"max_position_embeddings ({config.max_position_embeddings})")
    return model, config
