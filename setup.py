"""spacy_bert_cls: a native BERT encoder, heads and pretraining for spaCy pipelines.

Every registered name is declared here, once, as an entry point: spaCy finds the
factories, architectures, loaders and readers through them, so a pipeline trained
with this package needs no --code when it is packaged or loaded.
"""
from pathlib import Path

from setuptools import find_packages, setup

about = {}
exec((Path(__file__).parent / "spacy_bert_cls" / "about.py").read_text(), about)

setup(
    name="spacy_bert_cls",
    version=about["__version__"],
    description="A native PyTorch BERT encoder for spaCy pipelines, with classification and NER heads",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["spacy_bert_cls", "spacy_bert_cls.*"]),
    include_package_data=True,
    install_requires=[
        "spacy>=3.8.0,<3.9.0",
        "thinc>=8.3.0,<8.4.0",
        # torch: a range, not a pin, so users keep the build they have (CPU or CUDA);
        # install the CPU build first where a CUDA download is unwanted (see README).
        "torch>=2.6.0",
        "tokenizers>=0.15.0",
        "safetensors>=0.4.0",
        "numpy>=1.21.0",
        "typer>=0.9.0",
        "srsly>=2.4.0",
        # fit-config writes values as thinc's configs do (confection.try_dump_json).
        "confection>=0.1.0",
    ],
    extras_require={
        # playwright drives Debian's chromium (apt-get install chromium) in the report test.
        "test": ["pytest>=7", "hypothesis>=6", "bandit>=1.7", "playwright>=1.40"],
        # The project workflow: plots (pretraining curves, the evaluation report's
        # confusion matrix) and building pipeline wheels (spacy package --build wheel).
        "project": ["matplotlib>=3.5", "build>=1.0"],
        # The anchors, for parity tests and benchmarks only: never imported at run time.
        "anchors": ["transformers>=4.40,<4.54", "spacy-transformers>=1.3,<1.5"],
        # export-hf --onnx: model.onnx for serving with ONNX Runtime (never needed at run time).
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
    },
    entry_points={
        "spacy_factories": [
            "bert = spacy_bert_cls.pipeline.bert:make_bert",
            "bert_textcat = spacy_bert_cls.pipeline.textcat:make_bert_textcat",
            "bert_ner = spacy_bert_cls.pipeline.ner:make_bert_ner",
        ],
        "spacy_architectures": [
            "spacy-bert-cls.BertTransformer.v1 = spacy_bert_cls.models.transformer:build_bert_transformer_v1",
            "spacy-bert-cls.BertListener.v1 = spacy_bert_cls.models.listener:build_bert_listener_v1",
            "spacy-bert-cls.BertDocListener.v1 = spacy_bert_cls.models.listener:build_bert_doc_listener_v1",
            "spacy-bert-cls.BertInlineListener.v1 = spacy_bert_cls.models.inline_listener:build_bert_inline_listener_v1",
            "spacy-bert-cls.BertClassifier.v1 = spacy_bert_cls.models.heads:build_bert_classifier_v1",
            "spacy-bert-cls.BertTagger.v1 = spacy_bert_cls.models.heads:build_bert_tagger_v1",
        ],
        "spacy_misc": [
            "spacy-bert-cls.HFLoader.v1 = spacy_bert_cls.models.loaders:build_hf_loader_v1",
        ],
        "spacy_scorers": [
            "spacy-bert-cls.textcat_scorer.v1 = spacy_bert_cls.pipeline.textcat:make_textcat_scorer_v1",
        ],
        "spacy_callbacks": [
            "spacy-bert-cls.tune_thresholds.v1 = spacy_bert_cls.pipeline.textcat:make_threshold_tuner_v1",
            "spacy-bert-cls.atomic_save.v1 = spacy_bert_cls.saving:make_atomic_save_v1",
        ],
        "thinc_schedules": [
            "spacy-bert-cls.warmup_linear.v1 = spacy_bert_cls.schedules:warmup_linear_fraction_v1",
        ],
        "spacy_tokenizers": [
            "spacy-bert-cls.Tokenizer.v1 = spacy_bert_cls.safe_tokenizer:create_tokenizer_v1",
        ],
        "spacy_readers": [
            "spacy-bert-cls.Corpus.v1 = spacy_bert_cls.data.readers:create_corpus_reader_v1",
            "spacy-bert-cls.MergedCorpus.v1 = spacy_bert_cls.data.merged:create_merged_corpus_reader_v1",
        ],
        "console_scripts": [
            "spacy-bert-cls = spacy_bert_cls.cli:main",
        ],
    },
)
