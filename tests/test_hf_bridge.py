"""Both ways with transformers: import-hf and export-hf, with predictions that agree.

Every HF model here is made in the test (tiny random BERTs on the tiny vocabulary, or
trained for a few steps); `transformers` is the reference, never a dependency of the code.
"""
import json
import logging
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from typer.testing import CliRunner

from spacy_bert_cls.cli import app
from spacy_bert_cls.decoding import first_piece_entities
from spacy_bert_cls.errors import CheckpointError
from spacy_bert_cls.interop.hf_export import export_hf
from spacy_bert_cls.interop.hf_format import THRESHOLDS_KEY, WINDOWS_KEY
from spacy_bert_cls.interop.hf_import import import_hf, parse_tags
from spacy_bert_cls.interop.training_config import write_training_config
from spacy_bert_cls.tokenization.words import word_starts

from .conftest import TINY_SIZES, real_sentences, tiny_vocab

transformers = pytest.importorskip("transformers", reason="the anchors extra (transformers) is not installed")

ROOT = Path(__file__).resolve().parents[1]
# Real sentences are long in pieces of the tiny vocabulary: room for them in one window.
SIZES = {**TINY_SIZES, "max_position_embeddings": 512}
NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-creative-work", "I-creative-work"]
CATS = ["negative", "positive", "neutral"]


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_tok")
    (folder / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf8")
    return transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


def make_hf_model(folder: Path, tokenizer, cls_name: str, labels, seed=0, sharpen=30.0, **config):
    """A random HF classifier saved with the tokenizer; `sharpen` scales the classifier so
    that its decisions are not all ties near uniform."""
    torch.manual_seed(seed)
    hf_config = transformers.BertConfig(vocab_size=len(tiny_vocab()), **SIZES, id2label=dict(enumerate(labels)),
                                        label2id={t: i for i, t in enumerate(labels)}, **config)
    model = getattr(transformers, cls_name)(hf_config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(sharpen)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def hf_entities(ner, text):
    return [(e["start"], e["end"], e["entity_group"], float(e["score"])) for e in ner(text)]


def our_entities(doc):
    return [(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents]


def same_entities(a, b, tol=1e-5):
    return [e[:3] for e in a] == [e[:3] for e in b] and all(abs(x[3] - y[3]) <= tol for x, y in zip(a, b))


def one_window(texts, tokenizer, limit=500):
    return [t for t in texts if len(tokenizer(t)["input_ids"]) <= limit]


@pytest.fixture(scope="module")
def sentences(datasets_dir, hf_tokenizer):
    return one_window(real_sentences(datasets_dir, 120), hf_tokenizer)


# --- HF -> import -> our pipeline ---------------------------------------------------


@pytest.mark.parametrize("multi_label", [False, True])
def test_import_textcat_same_probabilities(tmp_path, hf_tokenizer, sentences, multi_label):
    problem = "multi_label_classification" if multi_label else "single_label_classification"
    thresholds = {"negative": 0.3, "positive": 0.7} if multi_label else {}
    model = make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForSequenceClassification", CATS, sharpen=500.0,
                          problem_type=problem, **({THRESHOLDS_KEY: thresholds} if multi_label else {}))
    nlp = import_hf(tmp_path / "hf", tmp_path / "pipe")
    textcat = nlp.get_pipe("bert_textcat")
    assert textcat.labels == tuple(CATS) and textcat.exclusive is not multi_label
    if multi_label:
        assert textcat.thresholds == {"negative": 0.3, "positive": 0.7, "neutral": 0.5}
    with torch.no_grad():
        enc = hf_tokenizer(sentences, padding=True, return_tensors="pt")
        logits = model(**enc).logits
    expected = (logits.sigmoid() if multi_label else logits.softmax(-1)).numpy()
    ours = numpy.array([[doc.cats[label] for label in CATS] for doc in nlp.pipe(sentences)])
    assert numpy.abs(ours - expected).max() < 1e-5
    assert ours.std() > 0.05, "the test model should not give the same probabilities to everything"


def test_import_ner_hf_first_same_entities_as_pipeline(tmp_path, hf_tokenizer, sentences, caplog):
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", NER_TAGS)
    nlp = import_hf(tmp_path / "hf", None, decoder="hf_first")
    ner = nlp.get_pipe("bert_ner")
    assert ner.cfg["scheme"] == "BIO" and ner.labels == ("PER", "LOC", "creative-work")
    hf = transformers.pipeline("token-classification", model=str(tmp_path / "hf"), aggregation_strategy="first")
    n_same = n_reported = 0
    with caplog.at_level(logging.WARNING, logger="spacy_bert_cls.pipeline.ner"):
        for text in sentences:
            doc = nlp(text)
            unaligned = doc.spans["bert_ner"].attrs.get("unaligned")
            if unaligned:
                # transformers found entities inside a spaCy token ("s" of "'s", a URL's
                # parts): widened or dropped, and said so, never lost silently.
                n_reported += 1
                assert all(u["action"] in ("widened", "dropped") for u in unaligned)
            else:
                assert same_entities(our_entities(doc), hf_entities(hf, text)), text
                n_same += 1
    assert n_same >= 0.6 * len(sentences) and n_reported > 0
    assert "did not fall on spaCy token boundaries" in caplog.text


def test_import_ner_hf_first_on_words_of_bert(tmp_path, hf_tokenizer, sentences):
    """Where spaCy's tokens are BERT's words, every sentence gives transformers' entities."""
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", NER_TAGS, seed=1)
    nlp = import_hf(tmp_path / "hf", None, decoder="hf_first")
    hf = transformers.pipeline("token-classification", model=str(tmp_path / "hf"), aggregation_strategy="first")
    for text in sentences[:60]:
        words, spaces = bert_words(text)
        doc = nlp(Doc(nlp.vocab, words=words, spaces=spaces))
        assert "unaligned" not in doc.spans["bert_ner"].attrs
        assert same_entities(our_entities(doc), hf_entities(hf, doc.text)), text


def bert_words(text):
    text = " ".join(text.split())  # one space between words, none at the ends
    starts = list(numpy.nonzero(word_starts(text))[0]) + [len(text)]
    words = [text[a:b].rstrip(" ") for a, b in zip(starts[:-1], starts[1:])]
    spaces = [text[a:b].endswith(" ") for a, b in zip(starts[:-1], starts[1:])]
    return words, spaces


def test_import_ner_argmax_is_hf_word_level(tmp_path, hf_tokenizer, datasets_dir):
    """decoder argmax on pre-split words = HF's evaluation on them (first piece, argmax, IOB2 spans)."""
    model = make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", NER_TAGS, seed=2)
    nlp = import_hf(tmp_path / "hf", None, decoder="argmax")
    sentences = read_conll(datasets_dir / "wnut17" / "emerging.test.annotated", 80)
    # A word of characters BERT drops has no piece: HF's evaluation calls it O.
    sentences += [["john", "\u200b", "visited", "new", "\u200d", "york"], ["\u200b"]]
    for words in sentences:
        enc = hf_tokenizer(words, is_split_into_words=True, return_tensors="pt")
        if enc["input_ids"].shape[1] > 500:
            continue
        with torch.no_grad():
            probs = model(**enc).logits[0].softmax(-1).numpy()
        word_ids = enc.word_ids(0)
        first = {w: i for i, w in reversed(list(enumerate(word_ids))) if w is not None}
        tags = [NER_TAGS[int(probs[first[w]].argmax())] if w in first else "O" for w in range(len(words))]
        scores = [float(probs[first[w]].max()) if w in first else 1.0 for w in range(len(words))]
        expected = iob2_spans(tags, scores)
        doc = nlp(Doc(nlp.vocab, words=words))
        ours = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
        assert same_entities(ours, expected), words


def read_conll(path, n):
    sentences, words = [], []
    for line in path.open(encoding="utf8"):
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(words)
            words = []
            if len(sentences) >= n:
                break
    return sentences


def iob2_spans(tags, scores):
    """seqeval's reading of IOB2 word tags (an I- after O or another type opens an entity)."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind_i = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        if start is not None and (prefix in ("O", "B") or kind_i != kind):
            spans.append((start, i, kind, float(numpy.mean(scores[start:i]))))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, kind_i
    return spans


def test_first_piece_entities_is_hf_group_entities(hf_tokenizer, tmp_path):
    """Our grouping against TokenClassificationPipeline.group_entities on random tag sequences."""
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", NER_TAGS)
    hf = transformers.pipeline("token-classification", model=str(tmp_path / "hf"))
    rng = numpy.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        probs = rng.dirichlet(numpy.ones(len(NER_TAGS)) * 0.3, size=n)
        words = [{"entity": NER_TAGS[int(p.argmax())], "score": float(p.max()), "word": "x", "start": i,
                  "end": i + 1} for i, p in enumerate(probs)]
        expected = [(g["start"], g["end"], g["entity_group"], float(g["score"]))
                    for g in hf.group_entities(words) if g["entity_group"] != "O"]
        ours = first_piece_entities(numpy.log(probs), NER_TAGS, numpy.ones(n, dtype=bool))
        assert same_entities(ours, expected)


def test_word_starts():
    text = "U.S. don't  naïve\t3.5km 你好 a\u200bb e-mail #tag"
    starts = word_starts(text)
    words = [text[i] for i in numpy.nonzero(starts)[0]]
    assert words == ["U", ".", "S", ".", "d", "'", "t", "n", "3", ".", "5", "你", "好", "a", "e", "-", "m", "#", "t"]


# --- a trained model: the constrained decoder agrees with transformers ------------------


def test_constrained_decoder_agrees_on_trained_model(tmp_path, hf_tokenizer):
    tagged = read_conll_tags(ROOT / "corpus" / "ner" / "train.conll")[:24]
    tags = ["O"] + [f"{p}-{label}" for label in ("PERSON", "LOC", "ORG", "PRODUCT") for p in "BI"]
    model = make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", tags, sharpen=1.0)
    train_token_classifier(model, hf_tokenizer, tagged, tags, steps=120)
    model.save_pretrained(tmp_path / "hf")
    texts = [" ".join(words) for words, _ in tagged]
    hf = transformers.pipeline("token-classification", model=str(tmp_path / "hf"), aggregation_strategy="first")
    nlp = import_hf(tmp_path / "hf", None)  # the default, constrained decoder
    expected = {(i, e[:3]) for i, text in enumerate(texts) for e in hf_entities(hf, text)}
    ours = {(i, e[:3]) for i, doc in enumerate(nlp.pipe(texts)) for e in our_entities(doc)}
    assert len(expected) > 20
    assert len(expected & ours) >= 0.99 * len(expected | ours)


def read_conll_tags(path):
    sentences, words, tags = [], [], []
    for line in path.open(encoding="utf8"):
        if line.strip():
            word, tag = line.rstrip("\n").split("\t")
            words.append(word)
            tags.append(tag)
        elif words:
            sentences.append((words, tags))
            words, tags = [], []
    return sentences


def train_token_classifier(model, tokenizer, tagged, tags, steps):
    """HF's recipe: each word's tag on its first piece, -100 elsewhere."""
    enc = tokenizer([w for w, _ in tagged], is_split_into_words=True, padding=True, return_tensors="pt")
    labels = torch.full(enc["input_ids"].shape, -100)
    for i, (_, word_tags) in enumerate(tagged):
        previous = None
        for j, w in enumerate(enc.word_ids(i)):
            if w is not None and w != previous:
                labels[i, j] = tags.index(word_tags[w])
            previous = w
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    assert loss.item() < 0.05, f"the model did not learn its sentences (loss {loss.item():.3f})"


# --- the imported pipeline is a pipeline: saves, loads, trains further ---------------


def test_imported_pipeline_saves_loads_and_trains(tmp_path, hf_tokenizer):
    from spacy.cli.train import train

    tags = ["O"] + [f"{p}-{label}" for label in ("PERSON", "LOC", "ORG", "PRODUCT") for p in "BI"]
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForTokenClassification", tags, sharpen=5.0)
    texts = ["Wren de Kervella flew to Vienna .", "Acme Corp sells the new phone in Berlin ."]
    nlp = import_hf(tmp_path / "hf", tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.config["initialize"]["components"]["bert"]["loader"]["path"] is None
    for a, b in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert same_entities(our_entities(a), our_entities(b))
    config = write_training_config(tmp_path / "pipe", tmp_path / "train.cfg")
    corpus = ROOT / "corpus" / "ner"
    train(config, tmp_path / "out", overrides={
        "paths.train": str(corpus / "train.conll"), "paths.dev": str(corpus / "dev.conll"),
        "corpora.train.limit": 20, "corpora.dev.limit": 10, "training.max_steps": 3,
        "training.eval_frequency": 2, "training.optimizer.learn_rate.warmup_fraction": 0.3})
    tuned = spacy.load(tmp_path / "out" / "model-last")
    assert tuned.pipe_names == ["bert", "bert_ner"]
    assert tuned.get_pipe("bert_ner").labels == nlp.get_pipe("bert_ner").labels
    before = nlp.get_pipe("bert_ner").model.get_ref("output_layer").get_param("W")
    after = tuned.get_pipe("bert_ner").model.get_ref("output_layer").get_param("W")
    assert not numpy.allclose(before, after), "sourced components train further"


# --- our trained pipeline -> export -> transformers ----------------------------------


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory):
    """Our joint pipeline (bert + bert_textcat + bert_ner) trained in the test, in both tag schemes."""
    from .pipeline.test_heads import TRAIN, make_nlp, train

    pipelines = {}
    for scheme in ("BILUO", "BIO"):
        config = {"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 64, "stride": 48}
        nlp = make_nlp(config, scheme=scheme)
        train(nlp, tiny_checkpoint, TRAIN)
        pipelines[scheme] = nlp
    return pipelines


EXPORT_TEXTS = ["john visited paris today", "mary hates new york city", "awful film from acme corp",
                "i love this movie", "new york city said no", "paris, london and berlin!"]


def test_export_textcat_same_scores(trained, tmp_path):
    nlp = trained["BILUO"]
    out = export_hf(nlp, tmp_path / "hf", component="bert_textcat")
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt",
                                               "tokenizer_config.json", "special_tokens_map.json"}
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out)
    assert type(model).__name__ == "BertForSequenceClassification"
    classify = transformers.pipeline("text-classification", model=str(out), top_k=None)
    for text, doc in zip(EXPORT_TEXTS, nlp.pipe(EXPORT_TEXTS)):
        theirs = {r["label"]: r["score"] for r in classify([text])[0]}
        assert theirs.keys() == doc.cats.keys()
        assert max(abs(theirs[k] - doc.cats[k]) for k in theirs) < 1e-5


def test_export_a_head_with_its_own_encoder(trained, tmp_path):
    # after replace_listeners (as in an assembled pipeline) the head's own encoder is exported
    trained["BILUO"].to_disk(tmp_path / "joint")
    nlp = spacy.load(tmp_path / "joint")
    for head in ("bert_textcat", "bert_ner"):
        nlp.replace_listeners("bert", head, ["model.tok2vec"])
    nlp.remove_pipe("bert")
    out = export_hf(nlp, tmp_path / "hf", component="bert_textcat")
    classify = transformers.pipeline("text-classification", model=str(out), top_k=None)
    for text, doc in zip(EXPORT_TEXTS, nlp.pipe(EXPORT_TEXTS)):
        theirs = {r["label"]: r["score"] for r in classify([text])[0]}
        assert max(abs(theirs[k] - doc.cats[k]) for k in doc.cats) < 1e-5


def test_export_multilabel_keeps_thresholds(tiny_checkpoint, tmp_path):
    from .pipeline.test_heads import MULTI, make_nlp, train

    nlp = make_nlp({"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 64, "stride": 48},
                   components=("bert_textcat",), exclusive=False)
    train(nlp, tiny_checkpoint, MULTI, n_iter=10)
    nlp.get_pipe("bert_textcat").set_thresholds({"good": 0.3, "place": 0.8})
    out = export_hf(nlp, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config[THRESHOLDS_KEY] == {"good": 0.3, "film": 0.5, "place": 0.8}
    classify = transformers.pipeline("text-classification", model=str(out), top_k=None)
    for text, doc in zip(EXPORT_TEXTS, nlp.pipe(EXPORT_TEXTS)):
        theirs = {r["label"]: r["score"] for r in classify([text])[0]}
        assert max(abs(theirs[k] - doc.cats[k]) for k in doc.cats) < 1e-5
    again = import_hf(out, None)
    assert again.get_pipe("bert_textcat").thresholds == nlp.get_pipe("bert_textcat").thresholds


@pytest.mark.parametrize("scheme", ["BILUO", "BIO"])
def test_export_ner_same_entities_and_scores(trained, tmp_path, scheme):
    nlp = trained[scheme]
    out = export_hf(nlp, tmp_path / "hf", component="bert_ner")
    model = transformers.AutoModelForTokenClassification.from_pretrained(out)
    assert type(model).__name__ == "BertForTokenClassification"
    assert all(name == "O" or name[:2] in ("B-", "I-") for name in model.config.id2label.values())
    ner = transformers.pipeline("token-classification", model=str(out), aggregation_strategy="first")
    nlp.get_pipe("bert_ner").decoder = "hf_first"
    try:
        docs = list(nlp.pipe(EXPORT_TEXTS))
    finally:
        nlp.get_pipe("bert_ner").decoder = "constrained"
    for text, doc in zip(EXPORT_TEXTS, docs):
        assert same_entities(our_entities(doc), hf_entities(ner, text)), text
    # On the sentences it was trained on, our constrained decoder finds what transformers finds.
    trained_texts = EXPORT_TEXTS[:4]
    constrained = [[e[:3] for e in our_entities(doc)] for doc in nlp.pipe(trained_texts)]
    assert constrained == [[e[:3] for e in hf_entities(ner, text)] for text in trained_texts]
    # ... and back: the same tag set (BILUO restored from the config's extra key) and predictions.
    again = import_hf(out, None)
    assert again.get_pipe("bert_ner").cfg["scheme"] == scheme
    for a, b in zip(nlp.pipe(EXPORT_TEXTS), again.pipe(EXPORT_TEXTS)):
        assert same_entities(our_entities(a), our_entities(b))


def test_export_is_atomic(trained, tmp_path, monkeypatch):
    nlp = trained["BIO"]
    target = tmp_path / "hf"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="exists and is not empty"):
        export_hf(nlp, target, component="bert_ner")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("spacy_bert_cls.tokenization.wordpiece.save_piece_tokenizer", broken)
    with pytest.raises(OSError, match="disk full"):
        export_hf(nlp, target, component="bert_ner", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["hf"], "no staging folder left behind"
    assert [p.name for p in target.iterdir()] == ["keep.txt"], "the old folder is untouched"


def test_round_trip_keeps_the_windows(trained, tmp_path):
    """An exported pipeline imported back had one window of max_position_embeddings in place of
    its own window_size / stride, and split long texts otherwise (other numbers, other entities)."""
    nlp = trained["BIO"]
    out = export_hf(nlp, tmp_path / "hf", component="bert_ner")
    assert json.loads((out / "config.json").read_text())[WINDOWS_KEY] == {"window_size": 64, "stride": 48,
                                                                          "overlap": "center"}
    again = import_hf(out, None)
    assert again.get_pipe("bert").model.get_ref("encoder").attrs["stride"] == 48
    long_text = " ".join(EXPORT_TEXTS * 12)  # several windows of 64 pieces
    ours, theirs = nlp(long_text), again(long_text)
    assert len(nlp.get_pipe("bert").model.get_ref("pieces")([ours], False)[0][0].ids) > 64
    assert same_entities(our_entities(ours), our_entities(theirs))


def test_outputs_that_would_replace_the_input_are_refused_even_with_force(trained, tmp_path, hf_tokenizer):
    """import-hf HF HF --force turned the HF folder into a pipeline, export-hf P P --force the
    reverse; a file as OUTPUT_DIR was replaced (leaving a hidden temporary file); a bad
    --train-config failed after the pipeline was written, saying nothing was."""
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForSequenceClassification", CATS)
    trained["BIO"].to_disk(tmp_path / "pipe")
    (tmp_path / "a_file").write_text("mine\n")
    (tmp_path / "a_folder").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    runner = CliRunner()
    cases = [(["import-hf", tmp_path / "hf", tmp_path / "hf", "--force"], "which this command reads"),
             (["import-hf", tmp_path / "hf", tmp_path, "--force"], "holds"),
             (["export-hf", tmp_path / "pipe", tmp_path / "pipe", "--force", "--component", "bert_ner"],
              "which this command reads"),
             (["import-hf", tmp_path / "hf", tmp_path / "a_file", "--force"], "is a file"),
             (["import-hf", tmp_path / "hf", tmp_path / "new", "--train-config", tmp_path / "a_folder"], "is a folder"),
             (["import-hf", tmp_path / "hf", tmp_path / "new", "--decoder", "bogus"], "constrained, hf_first, argmax"),
             (["export-hf", tmp_path / "hf", tmp_path / "new"], "import-hf turns it into one")]
    for args, what in cases:
        result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "60"})
        assert result.exit_code == 1 and what in result.output, result.output
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "a_file").read_text() == "mine\n" and not list((tmp_path / "a_folder").iterdir())
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]


# --- what cannot be imported or exported says why --------------------------------------


def test_parse_tags():
    assert parse_tags(["O", "B-X", "I-X"], "c") == ("BIO", ["X"], {"O": 0, "B-X": 1, "I-X": 2})
    scheme, labels, rows = parse_tags(["S-X", "B-X", "I-X", "E-X", "O"], "c")
    assert scheme == "BILUO" and rows == {"U-X": 0, "B-X": 1, "I-X": 2, "L-X": 3, "O": 4}
    for bad, message in ((["O", "PER"], "neither"), (["B-X", "I-X"], "no 'O'"), (["O", "B-X", "B-X"], "twice")):
        with pytest.raises(CheckpointError, match=message):
            parse_tags(bad, "config.json")


def test_import_errors_name_the_problem(tmp_path, hf_tokenizer):
    make_hf_model(tmp_path / "reg", hf_tokenizer, "BertForSequenceClassification", ["score"],
                  problem_type="regression")
    with pytest.raises(CheckpointError, match="regression"):
        import_hf(tmp_path / "reg", None)
    make_hf_model(tmp_path / "io", hf_tokenizer, "BertForTokenClassification", ["O", "PER", "LOC"])
    result = CliRunner().invoke(app, ["import-hf", str(tmp_path / "io"), str(tmp_path / "out")])
    assert result.exit_code == 1 and "neither 'O' nor B-/I-" in result.output
    assert not (tmp_path / "out").exists()
    plain = tmp_path / "plain"
    transformers.BertModel(transformers.BertConfig(vocab_size=len(tiny_vocab()), **SIZES)).save_pretrained(plain)
    with pytest.raises(CheckpointError, match="architectures"):
        import_hf(plain, None)


def test_cli_import_then_export(tmp_path, hf_tokenizer):
    make_hf_model(tmp_path / "hf", hf_tokenizer, "BertForSequenceClassification", CATS)
    runner = CliRunner()
    result = runner.invoke(app, ["import-hf", str(tmp_path / "hf"), str(tmp_path / "pipe"),
                                 "--train-config", str(tmp_path / "train.cfg")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "train.cfg").is_file()
    result = runner.invoke(app, ["export-hf", str(tmp_path / "pipe"), str(tmp_path / "back")])
    assert result.exit_code == 0, result.output
    original = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").state_dict()
    back = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "back").state_dict()
    assert original.keys() == back.keys()
    assert all(torch.equal(original[k], back[k]) for k in original if not k.endswith("position_ids"))
    result = runner.invoke(app, ["export-hf", str(tmp_path / "pipe"), str(tmp_path / "back")])
    assert result.exit_code == 1 and "exists" in result.output


# --- ONNX: the same exports for ONNX Runtime --------------------------------------------


@pytest.mark.parametrize("component", ["bert_textcat", "bert_ner"])
def test_export_onnx_same_logits(trained, tmp_path, component):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is not installed")
    pytest.importorskip("onnx", reason="the onnx extra (onnx, onnxruntime) is not installed")
    from tokenizers import Tokenizer

    nlp = trained["BILUO"]
    out = export_hf(nlp, tmp_path / "hf", component=component, onnx=True)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))  # tokenizers alone: no torch, no transformers
    tokenizer.enable_padding(pad_id=0)
    encodings = tokenizer.encode_batch(EXPORT_TEXTS)
    inputs = {"input_ids": numpy.array([e.ids for e in encodings], dtype="int64"),
              "attention_mask": numpy.array([e.attention_mask for e in encodings], dtype="int64"),
              "token_type_ids": numpy.array([e.type_ids for e in encodings], dtype="int64")}
    logits = session.run(["logits"], inputs)[0]
    model = (transformers.AutoModelForSequenceClassification if component == "bert_textcat"
             else transformers.AutoModelForTokenClassification).from_pretrained(out)
    with torch.no_grad():
        expected = model(**{k: torch.as_tensor(v) for k, v in inputs.items()}).logits.numpy()
    if component == "bert_ner":
        real = inputs["attention_mask"].astype(bool)
        logits, expected = logits[real], expected[real]
    assert numpy.abs(logits - expected).max() < 1e-4
    if component == "bert_textcat":
        probs = numpy.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        cats = [[doc.cats[label] for label in model.config.id2label.values()] for doc in nlp.pipe(EXPORT_TEXTS)]
        assert numpy.abs(probs - numpy.array(cats)).max() < 1e-5
