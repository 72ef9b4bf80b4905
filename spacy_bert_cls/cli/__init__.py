"""The `spacy-bert-cls` command line (also `python -m spacy_bert_cls`)."""
from .main import app, main

__all__ = ["app", "main"]
