"""A training config whose sizes are not the checkpoint's: the first error names every
size that differs (vocab_size too) and the overrides that fix them, not the vocabulary."""
import re

import pytest
import spacy
from spacy.training import Example

from spacy_bert_cls.errors import CheckpointError
from spacy_bert_cls.models.loaders import build_hf_loader_v1

from ..conftest import TINY_SIZES, tiny_vocab

# A config written for bert-base (the defaults people copy), two layers to stay small.
BASE_SIZES = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=2, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512, window_size=16, stride=8)


def _nlp(model_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **model_config}})
    return nlp


def _assert_names_every_size(message):
    assert "does not belong" not in message, message
    expected = {"vocab_size": len(tiny_vocab()), **TINY_SIZES}
    for name, value in expected.items():
        if value != BASE_SIZES[name]:
            assert f"{name} is {value} there, {BASE_SIZES[name]} in the pipeline" in message, message
            assert f"--components.bert.model.{name} {value}" in message, message
    assert re.search(r"config\.json: does not match the pipeline's encoder config", message), message


def test_initialize_names_every_size_and_the_overrides_first(tiny_checkpoint):
    nlp = _nlp(BASE_SIZES)
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    examples = [Example.from_dict(nlp.make_doc("a film"), {})]
    with pytest.raises(CheckpointError) as err:
        nlp.initialize(lambda: examples)
    _assert_names_every_size(str(err.value))


@pytest.mark.parametrize("weights", [True, False], ids=["weights", "vocabulary-only"])
def test_loader_compares_config_json_before_the_vocabulary(tiny_checkpoint, weights):
    nlp = _nlp(BASE_SIZES)
    with pytest.raises(CheckpointError) as err:
        build_hf_loader_v1(tiny_checkpoint, weights=weights)(nlp.get_pipe("bert").model)
    _assert_names_every_size(str(err.value))


def test_only_vocab_size_wrong_is_the_config_too(tiny_checkpoint, tiny_model_config):
    nlp = _nlp({**tiny_model_config, "vocab_size": 30522})
    with pytest.raises(CheckpointError, match=r"vocab_size is \d+ there, 30522 in the pipeline.*"
                                              r"--components\.bert\.model\.vocab_size \d+"):
        build_hf_loader_v1(tiny_checkpoint)(nlp.get_pipe("bert").model)


def test_config_json_that_disagrees_with_its_tokenizer_blames_the_vocabulary(tiny_checkpoint, tiny_model_config,
                                                                             tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for item in tiny_checkpoint.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    with (folder / "vocab.txt").open("a", encoding="utf8") as file_:
        file_.write("extra1\nextra2\n")
    nlp = _nlp(tiny_model_config)
    n = len(tiny_vocab())
    with pytest.raises(CheckpointError, match=rf"vocab\.txt: the tokenizer has {n + 2} entries but "
                                              rf"config\.json says vocab_size = {n}.*does not belong"):
        build_hf_loader_v1(folder)(nlp.get_pipe("bert").model)


def test_random_weights_with_a_vocabulary_of_another_size_give_the_override(tiny_checkpoint, tiny_model_config):
    nlp = _nlp({**tiny_model_config, "vocab_size": 30522})
    n = len(tiny_vocab())
    with pytest.raises(CheckpointError, match=rf"vocab\.txt: the tokenizer has {n} entries but the embeddings have "
                                              rf"vocab_size = 30522 rows; .*--components\.bert\.model\.vocab_size {n}\)$"):
        build_hf_loader_v1(vocab=tiny_checkpoint / "vocab.txt")(nlp.get_pipe("bert").model)
