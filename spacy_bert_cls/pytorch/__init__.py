"""Plain PyTorch BERT: imports torch only, never spaCy or Thinc."""
from .config import BertConfig
from .encoder import BertModel

__all__ = ["BertConfig", "BertModel"]
