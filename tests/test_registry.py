"""Every registered name comes from an entry point and resolves."""
from importlib.metadata import distribution
from pathlib import Path

import pytest
import spacy
from spacy.util import registry

EXPECTED = {
    "spacy_factories": {"bert", "bert_textcat", "bert_ner"},
    "spacy_architectures": {"spacy-bert-cls.BertTransformer.v1", "spacy-bert-cls.BertListener.v1",
                            "spacy-bert-cls.BertDocListener.v1", "spacy-bert-cls.BertInlineListener.v1",
                            "spacy-bert-cls.BertClassifier.v1",
                            "spacy-bert-cls.BertTagger.v1"},
    "spacy_scorers": {"spacy-bert-cls.textcat_scorer.v1"},
    "spacy_callbacks": {"spacy-bert-cls.tune_thresholds.v1", "spacy-bert-cls.atomic_save.v1"},
    "spacy_tokenizers": {"spacy-bert-cls.Tokenizer.v1"},
    "spacy_misc": {"spacy-bert-cls.HFLoader.v1"},
    "spacy_readers": {"spacy-bert-cls.Corpus.v1", "spacy-bert-cls.MergedCorpus.v1"},
    "thinc_schedules": {"spacy-bert-cls.warmup_linear.v1"},
    "console_scripts": {"spacy-bert-cls"},
}


@pytest.fixture(scope="module")
def entry_points():
    found = {}
    for ep in distribution("spacy_bert_cls").entry_points:
        found.setdefault(ep.group, {})[ep.name] = ep
    return found


def test_entry_points_are_declared(entry_points):
    assert {group: set(eps) for group, eps in entry_points.items()} == EXPECTED


def test_every_name_resolves(entry_points):
    for name in entry_points["spacy_factories"]:
        assert spacy.blank("en").has_factory(name), name
    registries = {"spacy_architectures": registry.architectures, "spacy_misc": registry.misc,
                  "spacy_readers": registry.readers, "spacy_scorers": registry.scorers,
                  "spacy_callbacks": registry.callbacks, "spacy_tokenizers": registry.tokenizers,
                  "thinc_schedules": registry.schedules}
    for group, reg in registries.items():
        for name, ep in entry_points[group].items():
            assert reg.get(name) is ep.load(), name
    assert callable(entry_points["console_scripts"]["spacy-bert-cls"].load())


def test_names_follow_the_convention(entry_points):
    for group in ("spacy_architectures", "spacy_misc", "spacy_readers", "spacy_scorers", "spacy_callbacks",
                  "spacy_tokenizers", "thinc_schedules"):
        for name in entry_points[group]:
            assert name.startswith("spacy-bert-cls.") and ".v" in name, name


def test_spacy_package_requires_this_package():
    from spacy.cli.package import get_third_party_dependencies
    from thinc.api import Config

    config = Config().from_disk(Path(__file__).resolve().parents[1] / "configs" / "textcat.cfg")
    requirements = get_third_party_dependencies(config)
    assert any(r.startswith("spacy_bert_cls") for r in requirements), requirements
