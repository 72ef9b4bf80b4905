__title__ = "spacy_bert_cls"
__version__ = "0.1.0"
