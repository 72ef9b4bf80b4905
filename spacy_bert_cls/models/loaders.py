"""Initialize-time loaders: where the `bert` component's tokenizer and weights come from.

Weights are not part of the model config: a loader reads them once, at
`nlp.initialize`, and from then on they are saved with the pipeline.
"""
import logging
from pathlib import Path
from typing import Optional, Union

from thinc.api import Model

from ..checkpoint.hf import CONFIG_FILE, check_same_sizes, load_bert_checkpoint, read_hf_config
from ..errors import CheckpointError
from ..tokenization import PieceTokenizer, load_piece_tokenizer
from ..tokenization.wordpiece import TOKENIZER_JSON, VOCAB_TXT
from .pieces import set_piece_tokenizer
from .encoder import get_bert_shim

logger = logging.getLogger(__name__)


class HFLoader:
    """Load an HF BERT folder into a `bert` component's model (a picklable callable)."""

    def __init__(self, path: Optional[Union[str, Path]], weights: bool = True,
                 vocab: Optional[Union[str, Path]] = None) -> None:
        self.path = Path(path) if path is not None else None
        self.weights = weights
        self.vocab = Path(vocab) if vocab is not None else None

    def __call__(self, model: Model) -> Model:
        bert = get_bert_shim(model).windowed.bert
        if self.path is None and self.vocab is None:
            raise CheckpointError(
                "paths.bert",
                "no checkpoint folder and no vocabulary given: set paths.bert to an HF BERT "
                "folder (the loader's `path`), or the loader's `vocab` to a vocab.txt or "
                "tokenizer.json to start from random weights",
            )
        if self.path is not None and not self.path.is_dir():
            raise CheckpointError(self.path, "not a folder (expected an HF checkpoint folder)")
        if self.path is not None:
            # config.json first: when the pipeline's sizes are not the checkpoint's, the
            # training config is what is wrong, and this names every size and its override.
            check_same_sizes(read_hf_config(self.path), bert.config, self.path / CONFIG_FILE)
        tokenizer_source = self.vocab if self.vocab is not None else self.path
        tokenizer = load_piece_tokenizer(tokenizer_source)
        _check_vocab(tokenizer, bert.config.vocab_size, tokenizer_source, self.path)
        if self.path is not None and self.weights:
            _, state, _ = load_bert_checkpoint(self.path, bert.config)
            missing, unexpected = bert.load_state_dict(state, strict=False)
            # load_bert_checkpoint checked every tensor; only a checkpoint without a
            # pooler may leave something out (it warned). Anything else is our bug.
            if unexpected or not all(k.startswith("pooler.") for k in missing):
                raise RuntimeError(f"checkpoint translation left {missing} missing, {unexpected} unexpected")
            logger.info("Loaded BERT weights from %s", self.path)
        elif self.path is not None:
            logger.info("Random BERT weights with the vocabulary of %s", self.path)
        else:
            logger.info("Random BERT weights with the vocabulary %s", self.vocab)
        set_piece_tokenizer(model.get_ref("pieces"), tokenizer)
        return model


def _check_vocab(tokenizer: PieceTokenizer, vocab_size: int, source: Path, checkpoint: Optional[Path]) -> None:
    """checkpoint: the folder whose config.json already matched the pipeline's sizes, or
    None (random weights: the config's vocab_size is what should follow the vocabulary)."""
    if tokenizer.vocab_size == vocab_size:
        return
    if source.is_dir():
        source = source / (TOKENIZER_JSON if (source / TOKENIZER_JSON).is_file() else VOCAB_TXT)
    found = f"the tokenizer has {tokenizer.vocab_size} entries but"
    if checkpoint is None:
        raise CheckpointError(
            source,
            f"{found} the embeddings have vocab_size = {vocab_size} rows; with random weights, set "
            f"the model's vocab_size to the vocabulary's (for a component named 'bert': "
            f"--components.bert.model.vocab_size {tokenizer.vocab_size})",
        )
    rows = (f"{CONFIG_FILE} says vocab_size = {vocab_size}" if source.parent == checkpoint
            else f"the embeddings have vocab_size = {vocab_size} rows")
    raise CheckpointError(source, f"{found} {rows}: the vocabulary does not belong to these weights")


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
