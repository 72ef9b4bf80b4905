"""Load a checkpoint folder into BertForPreTraining: the encoder and whichever heads it has."""
import logging
from pathlib import Path
from typing import Set, Tuple, Union

from ..checkpoint.hf import heads_to_ours, load_bert_checkpoint
from ..pytorch.config import BertConfig
from ..pytorch.heads import BertForPreTraining

logger = logging.getLogger(__name__)


def load_pretraining_model(folder: Union[str, Path]) -> Tuple[BertForPreTraining, BertConfig, Set[str]]:
    """RETURNS: the model, its config, and the heads the checkpoint had ({"mlm", "nsp"} or fewer);
    a missing head starts fresh (the MLM decoder is always the word embeddings)."""
    folder = Path(folder)
    config, encoder, heads = load_bert_checkpoint(folder)
    model = BertForPreTraining(config)
    model.bert.load_state_dict(encoder, strict=False)  # strict checks done; only a pooler may be missing
    found = heads_to_ours(heads, config, encoder["embeddings.piece_embeddings.weight"], folder)
    for head in ("mlm", "nsp"):
        if head in found:
            getattr(model, head).load_state_dict({k.split(".", 1)[1]: v for k, v in found[head].items()})
        else:
            logger.info("%s has no %s head: it starts fresh", folder, head.upper())
    return model, config, set(found)
