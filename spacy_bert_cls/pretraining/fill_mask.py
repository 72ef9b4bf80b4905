"""Fill-mask with a pretrained checkpoint: the top-k pieces for every [MASK] in a text."""
from pathlib import Path
from typing import Dict, List, Union

import torch

from ..checkpoint.hf import is_pipeline_folder
from ..errors import CheckpointError
from ..tokenization import load_piece_tokenizer
from .model import load_pretraining_model


class FillMask:
    """A loaded checkpoint with its MLM head; call it with texts containing [MASK]."""

    def __init__(self, model_dir: Union[str, Path]) -> None:
        model_dir = Path(model_dir)
        if is_pipeline_folder(model_dir):
            raise CheckpointError(model_dir, "is a spaCy pipeline, which has no masked-LM head: fill-mask needs a "
                                             "pretraining run's model-last or checkpoint (spacy-bert-cls pretrain), "
                                             "or an HF BertForMaskedLM / BertForPreTraining folder")
        model, config, heads = load_pretraining_model(model_dir)
        if "mlm" not in heads:
            raise CheckpointError(model_dir, "no masked-LM head (cls.predictions.*): fill-mask needs a "
                                             "checkpoint saved from pretraining")
        self.model = model.eval()
        self.tokenizer = load_piece_tokenizer(model_dir)
        self.max_length = config.max_position_embeddings

    @torch.no_grad()
    def __call__(self, text: str, top_k: int = 5) -> List[List[Dict]]:
        """RETURNS: for each [MASK] in order, the top_k {"token", "score"} (probabilities)."""
        tok = self.tokenizer
        size = tok.tokenizer.get_vocab_size()
        if not 1 <= top_k <= size:
            raise ValueError(f"--top-k {top_k}: give 1 to the vocabulary's {size} pieces")
        ids, _ = tok.encode_batch([text])[0]
        ids = [tok.cls_id] + ids.tolist() + [tok.sep_id]
        if len(ids) > self.max_length:
            raise ValueError(f"the text has {len(ids)} pieces, over the model's {self.max_length}")
        positions = [i for i, piece in enumerate(ids) if piece == tok.mask_id]
        if not positions:
            raise ValueError(f"no {tok.specials['mask_token']} in the text")
        input_ids = torch.tensor([ids])
        where = torch.tensor([[0, p] for p in positions])
        logits, _ = self.model(input_ids, masked_positions=where)
        probs = logits.softmax(-1)
        scores, best = probs.topk(top_k, dim=-1)
        return [[{"token": tok.tokenizer.id_to_token(int(i)), "score": float(s)} for s, i in zip(row_s, row_i)]
                for row_s, row_i in zip(scores, best)]


def fill_mask(model_dir: Union[str, Path], text: str, top_k: int = 5) -> List[List[Dict]]:
    """The top_k pieces (with probabilities) for every [MASK] in `text`."""
    return FillMask(model_dir)(text, top_k)
