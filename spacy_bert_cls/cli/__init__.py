"""The `spacy-bert-cls` command line (also `python -m spacy_bert_cls`)."""
from . import hf  # noqa: F401  (registers import-hf and export-hf on the app)
from . import quantize  # noqa: F401  (registers quantize)
from .main import app, main

__all__ = ["app", "main"]
