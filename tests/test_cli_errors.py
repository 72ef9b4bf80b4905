"""Every `spacy-bert-cls` subcommand once with a bad argument (a missing file, the wrong
kind of pipeline, the wrong kind of data): one line "✘ what: ... what to do", exit code
1, no traceback, and nothing written where the command would write."""

import pytest
import spacy
from typer.testing import CliRunner

from spacy_bert_cls.cli import app

from .pipeline.test_heads import MULTI, TRAIN, make_nlp, train
from .test_configs import CORPUS, ROOT


@pytest.fixture(scope="module")
def inputs(tiny_checkpoint, tiny_model_config, tmp_path_factory):
    """Pipelines of each kind and small files, made once; the cases only read them."""
    folder = tmp_path_factory.mktemp("cli_inputs")
    for name, components, data, exclusive in (("textcat", ("bert_textcat",), TRAIN, True),
                                              ("ner", ("bert_ner",), TRAIN, True),
                                              ("multilabel", ("bert_textcat",), MULTI, False)):
        nlp = make_nlp(tiny_model_config, components=components, exclusive=exclusive)
        train(nlp, tiny_checkpoint, data, n_iter=1)
        nlp.to_disk(folder / name)
    spacy_textcat = spacy.blank("en")
    textcat = spacy_textcat.add_pipe("textcat")
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    spacy_textcat.initialize()
    spacy_textcat.to_disk(folder / "spacy_textcat")
    spacy.blank("en").to_disk(folder / "blank")
    (folder / "empty.jsonl").write_text("")
    (folder / "tag_not_last.conll").write_text("John\tB-PER\tNNP\nvisited\tO\tVBD\n\n")
    (folder / "one_document.txt").write_text("the only document here .\nits second paragraph .\n")
    (folder / "latin1.cfg").write_bytes("[paths]\ntrain = \"caf\xe9\"\n".encode("latin-1"))
    (folder / "tiny").symlink_to(tiny_checkpoint)
    return folder


# (name, arguments with {in} for the inputs folder and {out} for where output would go,
#  words the one line must contain)
CASES = [
    ("check-checkpoint: no such folder", ["check-checkpoint", "{in}/missing"], ["missing"]),
    ("check-checkpoint: a pipeline, not a checkpoint", ["check-checkpoint", "{in}/textcat"], ["config.json"]),
    ("tune-thresholds: exclusive classes", ["tune-thresholds", "{in}/textcat", str(CORPUS / "textcat/dev.jsonl"),
                                            "-o", "{out}"], ["exclusive", "multi-label"]),
    ("tune-thresholds: no bert_textcat", ["tune-thresholds", "{in}/ner", str(CORPUS / "textcat/dev.jsonl"),
                                          "-o", "{out}"], ["no component named 'bert_textcat'", "--component"]),
    ("tune-thresholds: no such data", ["tune-thresholds", "{in}/multilabel", "{in}/missing.jsonl", "-o", "{out}"],
     ["missing.jsonl"]),
    ("tune-thresholds: no such pipeline", ["tune-thresholds", "{in}/missing", str(CORPUS / "textcat/dev.jsonl"),
                                           "-o", "{out}"], ["missing"]),
    ("pretrain: no such config", ["pretrain", "{in}/missing.cfg", "{out}"], ["missing.cfg"]),
    ("pretrain: continue without a checkpoint", ["pretrain", str(ROOT / "configs/pretrain_continue.cfg"), "{out}",
                                                 "--paths.raw", str(ROOT / "corpus/raw/pretrain.txt")],
     ["--paths.bert"]),
    ("pretrain: no such raw file", ["pretrain", str(ROOT / "configs/pretrain.cfg"), "{out}",
                                    "--paths.raw", "{in}/missing.txt"], ["missing.txt"]),
    ("pretrain: NSP on one document", ["pretrain", str(ROOT / "configs/pretrain.cfg"), "{out}",
                                       "--paths.raw", "{in}/one_document.txt"], ["one_document.txt", "nsp"]),
    ("fill-mask: no such model", ["fill-mask", "{in}/missing", "a [MASK] here"], ["missing"]),
    ("fill-mask: a checkpoint without an MLM head", ["fill-mask", "{in}/tiny", "a [MASK] here"], ["masked-LM head"]),
    ("convert: no such file", ["convert", "{in}/missing.jsonl", "-o", "{out}.spacy"], ["missing.jsonl"]),
    ("convert: empty file", ["convert", "{in}/empty.jsonl", "-o", "{out}.spacy"], ["empty.jsonl"]),
    ("convert: the tag not in the last column", ["convert", "{in}/tag_not_last.conll", "-o", "{out}.spacy"],
     ["tag_not_last.conll:1", "cut -f1,2"]),
    ("convert: the output is the input", ["convert", "{in}/one_document.txt", "--format", "raw", "-o",
                                          "{in}/one_document.txt"], ["one_document.txt", "which this command reads"]),
    ("convert: an unknown language", ["convert", str(CORPUS / "textcat/dev.jsonl"), "--lang", "zz", "-o",
                                      "{out}.spacy"], ["--lang 'zz'"]),
    ("quantize: n-texts under 1", ["quantize", "{in}/textcat", "{out}", "--data", str(CORPUS / "textcat/dev.jsonl"),
                                   "--n-texts", "0"], ["--n-texts must be at least 1"]),
    ("evaluate: no such pipeline", ["evaluate", "{in}/missing", str(CORPUS / "textcat/dev.jsonl"), "-o", "{out}"],
     ["missing"]),
    ("evaluate: NER pipeline, classification data", ["evaluate", "{in}/ner", str(CORPUS / "textcat/dev.jsonl"),
                                                     "-o", "{out}"], ["nothing to score"]),
    ("evaluate: empty data", ["evaluate", "{in}/textcat", "{in}/empty.jsonl", "-o", "{out}"], ["empty.jsonl"]),
    ("install-check: no such wheel", ["install-check", "{in}/missing.whl", "{in}/textcat",
                                      str(CORPUS / "textcat/dev.jsonl"), "-o", "{out}"], ["missing.whl"]),
    ("fit-config: no such config", ["fit-config", "{in}/missing.cfg", "{in}/tiny", "-o", "{out}"], ["missing.cfg", "no such config file"]),
    ("fit-config: the output is a folder", ["fit-config", str(ROOT / "configs/bert_ner.cfg"), "{in}/tiny", "-o",
                                            "{in}"], ["--output", "is a folder"]),
    ("fit-config: a config that is not UTF-8", ["fit-config", "{in}/latin1.cfg", "{in}/tiny", "-o", "{out}"],
     ["latin1.cfg", "not UTF-8"]),
    ("evaluate: the output is the data", ["evaluate", "{in}/textcat", "{in}/empty.jsonl", "-o", "{in}/empty.jsonl"],
     ["--output", "which this command reads"]),
    ("export-hf: an HF folder", ["export-hf", "{in}/tiny", "{out}"], ["import-hf"]),
    ("fill-mask: a spaCy pipeline", ["fill-mask", "{in}/textcat", "a [MASK] here"], ["spaCy pipeline", "pretrain"]),
    ("fit-config: no such checkpoint", ["fit-config", str(ROOT / "configs/bert_ner.cfg"), "{in}/missing", "-o", "{out}"],
     ["missing"]),
    ("quantize: no such pipeline", ["quantize", "{in}/missing", "{out}"], ["missing"]),
    ("quantize: no bert component", ["quantize", "{in}/spacy_textcat", "{out}"], ["bert"]),
    ("quantize: no such data", ["quantize", "{in}/textcat", "{out}", "--data", "{in}/missing.jsonl"],
     ["missing.jsonl"]),
    ("import-hf: no such folder", ["import-hf", "{in}/missing", "{out}"], ["missing"]),
    ("import-hf: an encoder without a head", ["import-hf", "{in}/tiny", "{out}"], ["--task"]),
    ("export-hf: spaCy's own textcat", ["export-hf", "{in}/spacy_textcat", "{out}"], ["textcat (textcat)", "bert_textcat"]),
    ("export-hf: no such pipeline", ["export-hf", "{in}/missing", "{out}"], ["missing"]),
    ("distill: as many layers as the teacher", ["distill", "{in}/textcat", "{out}", "--layers", "2", "--data",
                                                str(CORPUS / "textcat/train.jsonl")], ["--layers 2", "fewer"]),
    ("distill: a teacher without our encoder", ["distill", "{in}/spacy_textcat", "{out}", "--layers", "1", "--data",
                                                str(CORPUS / "textcat/train.jsonl")], ["bert", "encoder"]),
]


def test_every_subcommand_is_covered():
    commands = {c.name for c in app.registered_commands}
    assert commands == {args[0] for _, args, _ in CASES}, commands


@pytest.mark.parametrize("name,arguments,words", CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_one_line_and_writes_nothing(inputs, tmp_path, name, arguments, words):
    out = tmp_path / "out"
    args = [a.replace("{in}", str(inputs)).replace("{out}", str(out)) for a in arguments]
    before = sorted(p.name for p in inputs.iterdir())
    # catch_exceptions=False: an exception the command does not handle fails the test
    # with its traceback instead of being counted as exit code 1.
    result = CliRunner().invoke(app, args, env={"COLUMNS": "60"}, catch_exceptions=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("✘ ")]
    assert result.exit_code == 1, result.output
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word.lower() in errors[0].lower(), (word, errors[0])
    assert list(tmp_path.iterdir()) == [], f"{name} wrote {list(tmp_path.iterdir())}"
    assert sorted(p.name for p in inputs.iterdir()) == before
