"""HF checkpoint folders <-> our torch modules."""
from .hf import (
    load_bert_checkpoint,
    read_hf_config,
    save_bert_checkpoint,
)

__all__ = ["load_bert_checkpoint", "read_hf_config", "save_bert_checkpoint"]
