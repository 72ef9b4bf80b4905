"""A CoNLL (tagged) file given to `pretrain` as raw text: a warning that says so, with
the figure and what to do."""
import subprocess
from pathlib import Path

import pytest
from thinc.api import Config

from spacy_bert_cls.pretraining.train import pretrain

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
WORDS = [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), ("to", "O"),
         ("boycott", "O"), ("British", "B-MISC"), ("lamb", "O"), (".", "O"), ("Peter", "B-PER"),
         ("Blackburn", "I-PER")]


def _conll(path: Path, sentences: int = 30, separator: str = "\t", columns: int = 2) -> Path:
    lines = ["-DOCSTART-" + separator + "O", ""]
    for s in range(sentences):
        for word, tag in WORDS:
            lines.append(separator.join([word] + ["NNP"] * (columns - 2) + [tag]))
        lines.append("")
        if s == sentences // 2:
            lines += ["-DOCSTART-" + separator + "O", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def _config(raw: Path, dev=None) -> Config:
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"].update({"raw": str(raw), "dev": str(dev) if dev else None})
    config["model"].update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64, "max_position_embeddings": 64})
    config["tokenizer"].update({"vocab_size": 200, "min_frequency": 1})
    config["objective"].update({"max_length": 16, "nsp": False})
    config["training"].update({"max_steps": 1, "batch_size": 2, "warmup_steps": 0, "log_every": 1,
                               "eval_frequency": 1, "eval_batches": 1, "checkpoint_every": 1})
    return config


def _warnings(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_pretrain_warns_about_a_conll_file_given_as_raw_and_dev_text(tmp_path, caplog):
    raw = _conll(tmp_path / "train.conll")
    dev = _conll(tmp_path / "dev.txt", sentences=5)
    with caplog.at_level("WARNING"):
        pretrain(_config(raw, dev), tmp_path / "out")
    warned = _warnings(caplog)
    assert f"{raw} looks like tagged data, not raw text: 200 of the first 200 lines end in a tag column" in warned
    assert f"{dev} looks like tagged data, not raw text: 57 of the first 57 lines" in warned
    assert "would learn the tags as words" in warned and "awk" in warned


def test_raw_text_gives_no_warning(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        pretrain(_config(RAW), tmp_path / "out")
    assert "tagged" not in _warnings(caplog) and "tab" not in _warnings(caplog)


@pytest.mark.parametrize("separator,columns", [("\t", 2), (" ", 4), (" ", 2)], ids=["tab", "conll2003", "space"])
def test_tagged_layouts_are_recognised(tmp_path, caplog, separator, columns):
    from spacy_bert_cls.pretraining.data import warn_if_tagged

    path = _conll(tmp_path / "data.txt", separator=separator, columns=columns)
    with caplog.at_level("WARNING"):
        message = warn_if_tagged(path)
    assert message is not None and "200 of the first 200 lines end in a tag column (CoNLL)" in message
    assert message in _warnings(caplog)


def test_biluo_tags_and_tab_columns(tmp_path):
    from spacy_bert_cls.pretraining.data import warn_if_tagged

    biluo = tmp_path / "biluo.txt"
    biluo.write_text("".join("Paris\tU-LOC\nis\tO\nbig\tO\nNew\tB-LOC\nYork\tL-LOC\n\n" for _ in range(10)))
    assert "50 of the first 50 lines" in warn_if_tagged(biluo)
    tsv = tmp_path / "labels.txt"
    tsv.write_text("".join(f"a fine film number {i}\tpositive\n" for i in range(30)))
    assert "30 of the first 30 lines have a tab" in warn_if_tagged(tsv)
    prose = tmp_path / "prose.txt"
    prose.write_text("He said O.\nShe met B-52 pilots\tthere.\nA line of plain text.\nAnother one.\n\nMore text.\n")
    assert warn_if_tagged(prose) is None
    jsonl = tmp_path / "raw.jsonl"
    jsonl.write_text('{"text": "EU\\tB-ORG"}\n')
    assert warn_if_tagged(jsonl) is None


def test_the_suggested_conversion_gives_raw_text(tmp_path):
    """The awk line the warning suggests turns a CoNLL file into raw text."""
    from spacy_bert_cls.pretraining.data import CONLL_TO_RAW, iter_documents, warn_if_tagged

    conll = _conll(tmp_path / "data.conll", sentences=4)
    raw = tmp_path / "raw.txt"
    command = CONLL_TO_RAW.format(file=conll, out=raw)
    subprocess.run(["sh", "-c", command], check=True)
    documents = [p for _, p in iter_documents(raw)]
    sentence = " ".join(w for w, _ in WORDS)
    assert documents == [[sentence] * 3, [sentence] * 1] and warn_if_tagged(raw) is None
