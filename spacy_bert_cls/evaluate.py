"""Evaluate a pipeline on data files: metrics JSON and an HTML report a person can open.

The report: per-label precision, recall and F; accuracy and a confusion matrix table for
exclusive classes; entity P/R/F per type and examples rendered with displaCy (gold and
predicted); the pretraining curves when a log.csv is given. Self-contained (images inline).
"""
import base64
import csv
import html
import io
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import spacy
from spacy import displacy
from spacy.language import Language
from spacy.training import Example

from .checkpoint.io import atomic_path
from .data.formats import resolve_format
from .data.readers import create_corpus_reader_v1
from .errors import DataError
from .outputs import check_apart, check_file_output
from .pretraining.curves import draw_curves
from .pretraining.log import read_log

PathLike = Union[str, Path]
# The columns of a pretraining log.csv that the report's curves are drawn from.
CURVE_FIELDS = ("step", "kind", "loss", "mlm_perplexity")


def _textcat(nlp: Language):
    for name in nlp.pipe_names:
        pipe = nlp.get_pipe(name)
        if hasattr(pipe, "labels") and name.startswith(("textcat", "bert_textcat")):
            return pipe
    return None


def _is_exclusive(pipe) -> bool:
    from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer

    if hasattr(pipe, "exclusive"):
        return pipe.exclusive
    return not isinstance(pipe, MultiLabel_TextCategorizer)


def _entity_components(nlp: Language) -> List[str]:
    return [name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns]


def _check_something_to_score(nlp: Language, pipeline_name: str, path: Path, examples: List[Example]) -> None:
    """A DataError when nothing in the file is what the pipeline predicts (an NER pipeline
    on a text-classification file, or the reverse): it would score nothing, or zeros."""
    textcat, ner = _textcat(nlp), _entity_components(nlp)
    has_cats = any(eg.reference.cats for eg in examples)
    has_ents = any(eg.reference.has_annotation("ENT_IOB") for eg in examples)
    if (textcat is not None and has_cats) or (ner and has_ents):
        return
    predicts = " and ".join(what for what in (
        f"text categories ({textcat.name})" if textcat is not None else "",
        f"entities ({', '.join(ner)})" if ner else "") if what) or "neither text categories nor entities"
    holds = " and ".join(what for what, there in (("text categories", has_cats), ("entity annotations", has_ents))
                         if there) or ("no annotations" if examples else "no examples")
    wanted = " or ".join(kind for kind, needed in (("labelled texts (JSONL)", textcat is not None),
                                                    ("entity annotations (CoNLL)", bool(ner))) if needed)
    raise DataError(path, None, f"nothing to score: {pipeline_name} predicts {predicts}, and this file holds "
                                f"{holds}. Give it a file of {wanted or 'annotations it predicts'}, or score this "
                                f"file with a pipeline that predicts what it holds")


def check_outputs(pipeline: PathLike, data: Sequence[PathLike], output: Optional[PathLike],
                  report: Optional[PathLike], curves: Optional[PathLike]) -> None:
    """A ValueError, before anything is scored, when the metrics (`output`) or the report
    could not be written or would replace the pipeline or a data file, when both are one
    file, or when `curves` is not a pretraining log.csv or has no report to go in."""
    inputs = [pipeline, *data, *([curves] if curves is not None else [])]
    for path, option in ((output, "--output"), (report, "--html")):
        if path is not None:
            check_file_output(path, option)
            check_apart(path, inputs, option)
    if output is not None and report is not None and Path(output).resolve() == Path(report).resolve():
        raise ValueError(f"--output and --html are both {output}: give the metrics and the report a file each")
    if curves is None:
        return
    if report is None:
        raise ValueError(f"--curves {curves}: the curves are drawn in the HTML report; add --html FILE.html")
    if not Path(curves).is_file():
        raise ValueError(f"--curves {curves}: no such file (a pretraining run's OUTPUT_DIR/log.csv)")
    try:
        rows = read_log(Path(curves))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(curves, None, f"not a pretraining log.csv ({err})") from None
    if not any(row.get("kind") == "train" for row in rows) or not set(CURVE_FIELDS) <= set(rows[0]):
        raise DataError(curves, None, f"no training rows of a pretraining log.csv (with the columns "
                                      f"{', '.join(CURVE_FIELDS)}): give the log.csv that pretrain wrote")
    _pyplot()  # the curves are drawn with matplotlib: an ImportError now, not after -o is written


def _tokens_scored(path: Path) -> str:
    """Whose tokens a file is predicted on: CoNLL's own (as HF's and the CoNLL shared tasks'
    scores are, and spaCy's evaluate --gold-preproc), or the pipeline's tokenizer's on the
    text (.spacy and JSONL, as nlp(text) and spaCy's evaluate)."""
    return "the file's own (CoNLL)" if resolve_format(path) == "conll" else "the pipeline's tokenizer's"


def evaluate(pipeline: Union[PathLike, Language], data: Sequence[PathLike], *, examples_shown: int = 20) -> Dict:
    """Score `pipeline` on each data file. RETURNS the metrics (and what the report needs).

    Raises DataError for a file with nothing the pipeline predicts (before predicting).
    """
    nlp = spacy.load(pipeline) if not isinstance(pipeline, Language) else pipeline
    textcat = _textcat(nlp)
    labels = list(textcat.labels) if textcat is not None else None
    result: Dict = {"pipeline": str(pipeline) if not isinstance(pipeline, Language) else nlp.meta.get("name"),
                    "components": nlp.pipe_names, "files": {}}
    read = [(Path(path), list(create_corpus_reader_v1(Path(path), labels=labels)(nlp))) for path in data]
    unknown = {}
    for path, examples in read:
        _check_something_to_score(nlp, str(result["pipeline"]), path, examples)
        scores_cats = textcat is not None and any(eg.reference.cats for eg in examples)
        unknown[path] = _unknown_entity_labels(nlp, path, examples, scores_cats)
    for path, examples in read:
        start = time.perf_counter()
        docs = list(nlp.pipe(eg.predicted for eg in examples))
        seconds = time.perf_counter() - start
        scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
        scores = _score(nlp, scored)
        entry = {"n_examples": len(examples), "tokens": _tokens_scored(path), "seconds": round(seconds, 2),
                 "words_per_second": round(sum(len(d) for d in docs) / max(seconds, 1e-9)), "scores": scores}
        with_cats = [(eg.reference.cats, doc.cats) for eg, doc in zip(examples, docs) if eg.reference.cats]
        if textcat is not None and with_cats and _is_exclusive(textcat):
            confusion = {g: {p: 0 for p in labels} for g in labels}
            right = 0
            for gold, predicted in with_cats:
                g, p = max(gold, key=gold.get), max(predicted, key=predicted.get)
                confusion[g][p] += 1
                right += g == p
            entry["accuracy"] = right / len(with_cats)
            entry["confusion"] = confusion
        with_ents = [(eg, doc) for eg, doc in zip(examples, docs) if eg.reference.has_annotation("ENT_IOB")]
        if with_ents and examples_shown:
            entry["entity_examples"] = [_entity_example(eg, doc) for eg, doc in with_ents[:examples_shown]]
        if unknown[path]:
            entry["unknown_entity_labels"] = unknown[path]
        result["files"][str(path)] = entry
    return result


def _unknown_entity_labels(nlp: Language, path: Path, examples: List[Example], scores_cats: bool) -> List[str]:
    """The file's entity labels that no entity component predicts (each such entity can only
    be missed). A DataError when that is all of them and the file has no text categories to
    score either: its F would be 0 whatever the model."""
    predicted = {label for name in _entity_components(nlp) for label in getattr(nlp.get_pipe(name), "labels", ())}
    gold = {ent.label_ for eg in examples for ent in eg.reference.ents}
    if not predicted or not gold:
        return []
    if not gold & predicted and not scores_cats:
        raise DataError(path, None, f"none of its entity labels ({', '.join(sorted(gold))}) is one the pipeline "
                                    f"predicts ({', '.join(sorted(predicted))}): every entity would be missed; "
                                    f"give data with the pipeline's labels, or map the labels first")
    return sorted(gold - predicted)


def _score(nlp: Language, examples: List[Example]) -> Dict:
    scores: Dict = {}
    for name, pipe in nlp.pipeline:
        if hasattr(pipe, "score"):
            scores.update(pipe.score(examples) or {})
    return {k: v for k, v in scores.items() if not k.endswith("_loss")}


def _entity_example(eg: Example, doc) -> Dict:
    def spans(d):
        return [{"start": e.start_char, "end": e.end_char, "label": e.label_,
                 "confidence": getattr(e._, "confidence", None) if e.has_extension("confidence") else None}
                for e in d.ents]

    return {"text": doc.text, "gold": spans(eg.reference), "predicted": spans(doc)}


def write_report(result: Dict, output: PathLike, curves: Optional[PathLike] = None) -> None:
    """The HTML report of `evaluate`'s result; `curves`: a pretraining run's log.csv, plotted too."""
    parts = [f"<h1>Evaluation of {html.escape(str(result['pipeline']))}</h1>",
             f"<p>Components: {html.escape(', '.join(result['components']))}</p>"]
    for path, entry in result["files"].items():
        parts.append(f"<h2>{html.escape(Path(path).name)}</h2>")
        parts.append(f"<p>{entry['n_examples']} examples, {entry['words_per_second']:,} words/s.</p>")
        scores = entry["scores"]
        headline = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and v is not None}
        if "accuracy" in entry:
            headline = {"accuracy": entry["accuracy"], **headline}
        parts.append(_table(["metric", "value"], [[k, _fmt(v)] for k, v in headline.items()]))
        for key, title in (("cats_f_per_type", "Classes"), ("ents_per_type", "Entity types")):
            per_type = scores.get(key)
            if per_type:
                parts.append(f"<h3>{title}: precision, recall, F</h3>")
                parts.append(_table(["label", "precision", "recall", "F"],
                                    [[label, _fmt(v["p"]), _fmt(v["r"]), _fmt(v["f"])] for label, v in per_type.items()]))
        if "confusion" in entry:
            parts.append("<h3>Confusion matrix (rows: gold, columns: predicted)</h3>")
            parts.append(_confusion_table(entry["confusion"]))
        if entry.get("entity_examples"):
            parts.append("<h3>Entities: gold, then predicted (confidence in the label)</h3>")
            for example in entry["entity_examples"]:
                parts.append('<div class="example">' + _render(example["text"], example["gold"], "gold")
                             + _render(example["text"], example["predicted"], "predicted") + "</div>")
    if curves is not None:
        parts.append("<h2>Pretraining curves</h2>")
        parts.append(f'<img alt="pretraining curves" src="data:image/png;base64,{_curves_png(Path(curves))}">')
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>spacy_bert_cls evaluation</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}table{border-collapse:collapse;}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;}td:first-child{text-align:left;}"
            ".example{border-bottom:1px solid #eee;margin:1em 0;}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    with atomic_path(Path(output)) as tmp:
        tmp.write_text(page, encoding="utf8")


def _render(text: str, spans: List[Dict], title: str) -> str:
    ents = [{"start": s["start"], "end": s["end"],
             "label": s["label"] + (f" {s['confidence']:.2f}" if s.get("confidence") is not None else "")}
            for s in spans]
    markup = displacy.render({"text": text, "ents": ents, "title": None}, style="ent", manual=True, page=False)
    return f"<p><b>{title}</b></p>{markup}"


def _table(header: List[str], rows: List[List]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pyplot():
    """matplotlib's pyplot on the Agg backend; an ImportError that says what to install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the HTML report draws its plots with matplotlib, which is not installed: "
                          "pip install matplotlib (or pip install 'spacy_bert_cls[project]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _confusion_table(confusion: Dict[str, Dict[str, int]]) -> str:
    """The confusion matrix as an HTML table, shaded by count, each count in black or white,
    whichever contrasts more with its cell (a table reads on any screen and copies as text)."""
    labels = list(confusion)
    top = max([1] + [count for row in confusion.values() for count in row.values()])
    head = "<th>gold \\ predicted</th>" + "".join(f"<th>{html.escape(p)}</th>" for p in labels)
    rows = []
    for gold in labels:
        cells = []
        for predicted in labels:
            count = confusion[gold][predicted]
            background = _shade(count / top)
            cells.append(f'<td class="count" style="background-color:{_hex(background)};'
                         f'color:{_hex(_readable_on(background))}">{count}</td>')
        rows.append(f"<tr><th>{html.escape(gold)}</th>{''.join(cells)}</tr>")
    return f'<table class="confusion"><tr>{head}</tr>{"".join(rows)}</table>'


def _shade(share: float) -> tuple:
    """White (0) to a deep blue (1)."""
    light, dark = (247, 251, 255), (8, 48, 107)
    return tuple(round(a + (b - a) * share) for a, b in zip(light, dark))


def _luminance(rgb: tuple) -> float:
    """WCAG 2 relative luminance."""
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _readable_on(background: tuple) -> tuple:
    """Black or white: whichever has the higher WCAG contrast ratio on `background`."""
    lum = _luminance(background)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)


def _hex(rgb: tuple) -> str:
    return "#%02x%02x%02x" % rgb


def _curves_png(log_csv: Path) -> str:
    """The pretraining curves' figure (the one pretrain writes as curves.png), inline."""
    return _png(draw_curves(_pyplot(), read_log(log_csv)))


def write_metrics(result: Dict, output: PathLike) -> None:
    slim = {"pipeline": result["pipeline"], "files": {
        path: {k: v for k, v in entry.items() if k != "entity_examples"} for path, entry in result["files"].items()}}
    with atomic_path(Path(output)) as tmp:
        tmp.write_text(json.dumps(slim, indent=2) + "\n", encoding="utf8")
