"""spacy_bert_cls: a native BERT encoder for spaCy pipelines.

Importing this package is cheap: the components and architectures are registered
through entry points (see setup.py) and imported when spaCy first asks for them.
"""
from .about import __version__

__all__ = ["__version__"]
