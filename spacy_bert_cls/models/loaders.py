"""Initialize-time loaders: where the `bert` component's tokenizer and weights come from.

Weights are not part of the model config: a loader reads them once, at
`nlp.initialize`, and from then on they are saved with the pipeline.
"""
import logging
from pathlib import Path
from typing import Optional, Union

from thinc.api import Model

from ..checkpoint.hf import check_same_sizes, load_bert_checkpoint, read_hf_config
from ..errors import CheckpointError
from ..tokenization import PieceTokenizer, load_piece_tokenizer
from ..tokenization.wordpiece import TOKENIZER_JSON, VOCAB_TXT
from .pieces import set_piece_tokenizer
from .transformer import get_bert_model

logger = logging.getLogger(__name__)


class HFLoader:
    """Load an HF BERT folder into a `bert` component's model (a picklable callable)."""

    def __init__(self, path: Optional[Union[str, Path]], weights: bool = True,
                 vocab: Optional[Union[str, Path]] = None) -> None:
        self.path = Path(path) if path is not None else None
        self.weights = weights
        self.vocab = Path(vocab) if vocab is not None else None

    def __call__(self, model: Model) -> Model:
        bert = get_bert_model(model)
        if self.path is None and self.vocab is None:
            raise CheckpointError(
                "paths.bert",
                "no checkpoint folder and no vocabulary given: set paths.bert to an HF BERT "
                "folder (the loader's `path`), or the loader's `vocab` to a vocab.txt or "
                "tokenizer.json to start from random weights",
            )
        if self.path is not None and not self.path.is_dir():
            raise CheckpointError(self.path, "not a folder (expected an HF checkpoint folder)")
        tokenizer_source = self.vocab if self.vocab is not None else self.path
        tokenizer = load_piece_tokenizer(tokenizer_source)
        _check_vocab(tokenizer, bert.config.vocab_size, tokenizer_source)
        if self.path is not None and self.weights:
            _, state, _ = load_bert_checkpoint(self.path, bert.config)
            missing, unexpected = bert.load_state_dict(state, strict=False)
            # load_bert_checkpoint checked every tensor; only a checkpoint without a
            # pooler may leave something out (it warned). Anything else is our bug.
            if unexpected or not all(k.startswith("pooler.") for k in missing):
                raise RuntimeError(f"checkpoint translation left {missing} missing, {unexpected} unexpected")
            logger.info("Loaded BERT weights from %s", self.path)
        elif self.path is not None:
            check_same_sizes(read_hf_config(self.path), bert.config, self.path / "config.json")
            logger.info("Random BERT weights with the vocabulary of %s", self.path)
        else:
            logger.info("Random BERT weights with the vocabulary %s", self.vocab)
        set_piece_tokenizer(model.get_ref("pieces"), tokenizer)
        return model


def _check_vocab(tokenizer: PieceTokenizer, vocab_size: int, source: Path) -> None:
    if tokenizer.vocab_size != vocab_size:
        if source.is_dir():
            source = source / (TOKENIZER_JSON if (source / TOKENIZER_JSON).is_file() else VOCAB_TXT)
        raise CheckpointError(
            source,
            f"the tokenizer has {tokenizer.vocab_size} entries but the embeddings have "
            f"vocab_size = {vocab_size} rows: the vocabulary does not belong to these weights",
        )


def build_hf_loader_v1(
    path: Optional[Path] = None, weights: bool = True, vocab: Optional[Path] = None
) -> HFLoader:
    """spacy-bert-cls.HFLoader.v1: tokenizer and weights from an HF BERT folder.

    path (Optional[Path]): the checkpoint folder (config.json, model.safetensors or
        pytorch_model.bin, tokenizer.json or vocab.txt); usually ${paths.bert}.
    weights (bool): load the folder's weights; False keeps the random initial
        weights and takes only the vocabulary (its config must still match).
    vocab (Optional[Path]): a tokenizer.json or vocab.txt (or a folder with one) to
        use instead of the folder's; with no `path`, the encoder starts random.
    """
    return HFLoader(path, weights=weights, vocab=vocab)
