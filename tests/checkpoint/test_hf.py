"""Strict checkpoint loading: every malformed case gives an error naming the tensor or file."""
import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from spacy_bert_cls.checkpoint import load_bert_checkpoint, read_hf_config, save_bert_checkpoint
from spacy_bert_cls.errors import CheckpointError
from spacy_bert_cls.pytorch import BertModel

from ..conftest import write_tiny_checkpoint


@pytest.fixture
def ckpt(tmp_path):
    return write_tiny_checkpoint(tmp_path / "ckpt")


def _edit_tensors(folder, edit):
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def _edit_config(folder, edit):
    path = folder / "config.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_round_trip_loads_identical_weights(ckpt):
    config, state, heads = load_bert_checkpoint(ckpt)
    model = BertModel(config)
    model.load_state_dict(state)
    assert heads == {}
    again = ckpt.parent / "again"
    save_bert_checkpoint(again, config, model.state_dict())
    _, state2, _ = load_bert_checkpoint(again)
    assert all(torch.equal(state[k], state2[k]) for k in state)


def test_bert_prefix_gamma_beta_heads_and_position_ids_buffer(ckpt):
    def edit(tensors):
        renamed = {}
        for key, value in tensors.items():
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            renamed["bert." + key] = value
        renamed["bert.embeddings.position_ids"] = torch.arange(64)[None]
        renamed["cls.predictions.bias"] = torch.zeros(3)
        tensors.clear()
        tensors.update(renamed)

    plain = load_bert_checkpoint(ckpt)[1]
    _edit_tensors(ckpt, edit)
    _, state, heads = load_bert_checkpoint(ckpt)
    assert set(heads) == {"cls.predictions.bias"}
    assert all(torch.equal(plain[k], state[k]) for k in plain)


def test_pytorch_model_bin_loads_with_weights_only(ckpt):
    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    torch.save(tensors, ckpt / "pytorch_model.bin")
    config, state, _ = load_bert_checkpoint(ckpt)
    assert state["embeddings.piece_embeddings.weight"].shape[0] == config.vocab_size


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-pickle",))


def test_pickle_that_would_run_code_is_refused_and_runs_nothing(ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    with open(ckpt / "pytorch_model.bin", "wb") as file_:
        pickle.dump({"evil": _RunsCode(), **tensors}, file_)
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*refusing to unpickle"):
        load_bert_checkpoint(ckpt)
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t.pop("encoder.layer.1.attention.self.key.weight"),
         r"missing tensor\(s\): encoder\.layer\.1\.attention\.self\.key\.weight"),
        (lambda t: t.__setitem__("encoder.layer.2.output.dense.bias", torch.zeros(32)),
         r"unexpected tensor\(s\) for a 2-layer BERT: encoder\.layer\.2\.output\.dense\.bias"),
        (lambda t: t.__setitem__("roberta.embeddings.weight", torch.zeros(3)),
         r"neither BERT encoder nor known head weights: roberta\.embeddings\.weight"),
        (lambda t: t.__setitem__("encoder.layer.0.intermediate.dense.weight", torch.zeros(65, 32)),
         r"encoder\.layer\.0\.intermediate\.dense\.weight has shape \[65, 32\], expected \[64, 32\]"),
        (lambda t: t.__setitem__("embeddings.LayerNorm.bias", torch.zeros(32, dtype=torch.int64)),
         r"embeddings\.LayerNorm\.bias has dtype torch\.int64"),
    ],
    ids=["missing", "extra-layer", "foreign", "shape", "dtype"],
)
def test_bad_tensors(ckpt, edit, message):
    _edit_tensors(ckpt, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        load_bert_checkpoint(ckpt)
    assert "model.safetensors" in str(err.value)


def test_missing_pooler_is_started_fresh_with_a_warning(ckpt, caplog):
    _edit_tensors(ckpt, lambda t: [t.pop(k) for k in ("pooler.dense.weight", "pooler.dense.bias")])
    _, state, _ = load_bert_checkpoint(ckpt)
    assert "pooler.dense.weight" not in state
    assert "no pooler weights" in caplog.text


def test_half_a_pooler_is_an_error(ckpt):
    _edit_tensors(ckpt, lambda t: t.pop("pooler.dense.bias"))
    with pytest.raises(CheckpointError, match="pooler.dense.bias"):
        load_bert_checkpoint(ckpt)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.pop("hidden_size"), r"config\.json: missing field\(s\): hidden_size"),
        (lambda c: c.__setitem__("num_attention_heads", "4"), r"config\.json: BertConfig\.num_attention_heads must be int"),
        (lambda c: c.__setitem__("model_type", "roberta"), r"config\.json: model_type is 'roberta'"),
        (lambda c: c.__setitem__("position_embedding_type", "relative_key"), "position_embedding_type"),
        (lambda c: c.__setitem__("hidden_act", "mystery"), "hidden_act"),
    ],
    ids=["missing-field", "mistyped-field", "model-type", "relative-positions", "activation"],
)
def test_bad_config(ckpt, edit, message):
    _edit_config(ckpt, edit)
    with pytest.raises(CheckpointError, match=message):
        read_hf_config(ckpt)


def test_config_that_is_not_json(ckpt):
    (ckpt / "config.json").write_text('{"hidden_size": 32,')
    with pytest.raises(CheckpointError, match=r"config\.json: invalid JSON at line 1"):
        load_bert_checkpoint(ckpt)


def test_config_sizes_must_match_the_pipeline(ckpt):
    config = read_hf_config(ckpt)
    other = type(config)(**{**config.to_dict(), "num_hidden_layers": 4})
    with pytest.raises(CheckpointError, match=r"num_hidden_layers is 2 there, 4 in the pipeline.*--components\.bert\.model\.num_hidden_layers 2"):
        load_bert_checkpoint(ckpt, other)


@pytest.mark.parametrize("cut", [10, 0.5], ids=["header-only", "half"])
def test_truncated_safetensors(ckpt, cut):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: cut if isinstance(cut, int) else len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_bert_checkpoint(ckpt)


def test_corrupted_safetensors_header(ckpt):
    path = ckpt / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:20] = b"\xff" * 12
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_bert_checkpoint(ckpt)


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        load_bert_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="not a folder"):
        load_bert_checkpoint(tmp_path / "nope")


def test_no_weights_file(ckpt):
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights found"):
        load_bert_checkpoint(ckpt)


def test_sharded_safetensors(ckpt):
    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    keys = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, part in halves.items():
        save_file({k: tensors[k] for k in part}, str(ckpt / name))
        weight_map.update({k: name for k in part})
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    load_bert_checkpoint(ckpt)
    (ckpt / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model-00002-of-00002\.safetensors: shard named"):
        load_bert_checkpoint(ckpt)


def test_truncated_torch_bin(ckpt):
    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    torch.save(tensors, ckpt / "pytorch_model.bin")
    data = (ckpt / "pytorch_model.bin").read_bytes()
    (ckpt / "pytorch_model.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: not a readable PyTorch weights file"):
        load_bert_checkpoint(ckpt)


def test_a_spacy_pipeline_given_as_a_checkpoint_points_to_export_hf(tmp_path):
    (tmp_path / "config.cfg").write_text("[nlp]\n")
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"config\.json: missing: .* spaCy pipeline: `spacy-bert-cls export-hf"):
        read_hf_config(tmp_path)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(CheckpointError, match=r"needs its config\.json$"):
        read_hf_config(tmp_path)
