"""Saving that survives being killed: save_pipeline, the atomic_save training callback,
export-hf's folder, and checkpoint.io.atomic_dir itself."""
import os
import stat

import pytest
import spacy
from spacy.language import Language
from spacy.training import Example

from spacy_bert_cls.checkpoint.io import atomic_dir, recover_dir
from spacy_bert_cls.saving import AtomicSave, save_pipeline

from .conftest import tiny_vocab, write_tiny_checkpoint
from .stress.faults import kill_saves, temporaries, tree_digest

TRAIN = [("i love this movie", {"cats": {"POS": 1.0, "NEG": 0.0}}),
         ("awful film", {"cats": {"POS": 0.0, "NEG": 1.0}})]


def tiny_pipeline(checkpoint, tiny_model_config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1",
                                           **tiny_model_config}})
    nlp.add_pipe("bert_textcat", config={"model": {
        "@architectures": "spacy-bert-cls.BertClassifier.v1", "exclusive_classes": True,
        "tok2vec": {"@architectures": "spacy-bert-cls.BertDocListener.v1",
                    "width": tiny_model_config["hidden_size"]}}})
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(checkpoint)}}
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN])
    return nlp


@pytest.fixture(scope="module")
def two_pipelines(tmp_path_factory, tiny_model_config):
    folder = tmp_path_factory.mktemp("two")
    return [tiny_pipeline(write_tiny_checkpoint(folder / f"ckpt{seed}", seed=seed), tiny_model_config)
            for seed in (0, 1)]


def test_atomic_dir_replaces_whole_and_keeps_the_old_on_error(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            (tmp / "b").write_text("2")
            raise RuntimeError("stop")
    assert tree_digest(target) == tree_digest(target) and (target / "a").read_text() == "1"
    assert not (target / "b").exists() and not temporaries(tmp_path)
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(os.listdir(target)) == ["c"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700


def test_recover_dir_undoes_a_half_done_fallback_swap(tmp_path):
    target = tmp_path / "out"
    previous = tmp_path / ".out.previous"
    previous.mkdir()
    (previous / "a").write_text("old")
    stale = tmp_path / ".out.pid999999999.abc.tmp"  # a writer that no longer runs
    stale.mkdir()
    recover_dir(target)
    assert (target / "a").read_text() == "old" and not previous.exists() and not stale.exists()


def test_save_pipeline_replaces_and_loads(two_pipelines, tmp_path):
    a, b = two_pipelines
    target = tmp_path / "pipeline"
    save_pipeline(a, target)
    first = tree_digest(target)
    save_pipeline(b, target)
    assert tree_digest(target) != first
    save_pipeline(a, target)
    assert tree_digest(target) == first  # saving is deterministic: versions can be told apart
    assert spacy.load(target)("i love this movie").cats


def test_atomic_save_callback_is_the_same_pipeline_with_an_atomic_to_disk(two_pipelines, tmp_path):
    nlp = two_pipelines[0]
    view = AtomicSave()(nlp)
    assert isinstance(view, Language) and isinstance(view, type(nlp))
    assert view.pipe_names == nlp.pipe_names and view.get_pipe("bert") is nlp.get_pipe("bert")
    view.to_disk(tmp_path / "model-last")
    save_pipeline(nlp, tmp_path / "reference")
    assert tree_digest(tmp_path / "model-last") == tree_digest(tmp_path / "reference")
    called = []
    AtomicSave(before=lambda n: called.append(n) or n)(nlp)
    assert called == [nlp]


def _loads(path):
    assert spacy.load(path)("i love this movie").cats


def test_killed_save_pipeline_leaves_one_whole_pipeline(two_pipelines, tmp_path):
    refs = []
    for i, nlp in enumerate(two_pipelines):
        save_pipeline(nlp, tmp_path / f"ref{i}")
        refs.append(tree_digest(tmp_path / f"ref{i}"))
    target = tmp_path / "out" / "pipeline"
    outcome = kill_saves(lambda i: save_pipeline(two_pipelines[i], target), target, refs, n_kills=8, seed=0,
                         max_delay=0.3, check=_loads)
    assert outcome["broken"] == 0, outcome["errors"]


def test_killed_export_leaves_one_whole_folder(two_pipelines, tmp_path):
    from spacy_bert_cls.checkpoint import load_bert_checkpoint
    from spacy_bert_cls.interop.hf_export import export_hf

    refs = []
    for i, nlp in enumerate(two_pipelines):
        export_hf(nlp, tmp_path / f"ref{i}")
        refs.append(tree_digest(tmp_path / f"ref{i}"))
    target = tmp_path / "out" / "exported"
    outcome = kill_saves(lambda i: export_hf(two_pipelines[i], target, overwrite=True), target, refs, n_kills=8,
                         seed=1, max_delay=0.3, check=load_bert_checkpoint)
    assert outcome["broken"] == 0, outcome["errors"]
    assert len(tiny_vocab()) == load_bert_checkpoint(target)[0].vocab_size


def test_damaged_encoder_weights_are_a_one_line_value_error(two_pipelines, tmp_path):
    """A pipeline whose bert weights no longer parse: a ValueError that says which file and
    what to do (the commands print it as one line), not safetensors' own exception type."""
    import srsly

    two_pipelines[0].to_disk(tmp_path / "p")
    path = tmp_path / "p" / "bert" / "model"
    model = srsly.msgpack_loads(path.read_bytes())
    node = next(node for node in model["shims"] if node)
    shim = srsly.msgpack_loads(node[0])
    ours = srsly.msgpack_loads(shim["state"])
    ours["weights"] = ours["weights"][:8] + b"not json" + ours["weights"][16:]
    shim["state"] = srsly.msgpack_dumps(ours)
    node[0] = srsly.msgpack_dumps(shim)
    path.write_bytes(srsly.msgpack_dumps(model))
    with pytest.raises(ValueError, match="saved weights .* are damaged: .*Copy the pipeline again"):
        spacy.load(tmp_path / "p")
