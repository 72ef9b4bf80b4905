"""Thin typer commands: parse arguments, call a library function, print its result."""
from pathlib import Path
from typing import List, NoReturn

import typer
from wasabi import msg

# What a user's mistake raises in the library (DataError and CheckpointError are
# ValueErrors; a missing or unreadable file or pipeline folder is an OSError).
USER_ERRORS = (ValueError, OSError)


def fail(what: str, err: object) -> NoReturn:
    """End a command on a user's mistake: one unwrapped line "✘ what: err" (wasabi wraps at
    the terminal's width, even inside a path or a command to paste) and exit code 1."""
    detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    typer.secho(f"✘ {what}: {detail}" if detail else f"✘ {what}", fg=typer.colors.RED)
    raise typer.Exit(1)


app = typer.Typer(name="spacy-bert-cls", no_args_is_help=True, add_completion=False,
                  help="BERT encoders, heads and pretraining for spaCy pipelines.")


@app.callback()
def _root() -> None:
    """BERT encoders, heads and pretraining for spaCy pipelines."""


@app.command("check-checkpoint")
def check_checkpoint_cli(
    path: Path = typer.Argument(..., help="An HF BERT checkpoint folder", exists=False),
    component: str = typer.Option("bert", help="Name of the bert component in your config"),
) -> None:
    """Load a checkpoint folder strictly and print the config overrides that fit it."""
    from ..checkpoint.hf import describe_checkpoint

    try:
        info = describe_checkpoint(path)
    except USER_ERRORS as err:
        fail("Checkpoint cannot be loaded", err)
    # Plain echo throughout: wasabi wraps at the terminal width, splitting paths and the
    # override pairs, which must paste as they are (one pair a line).
    typer.secho(f"✔ {path}: {info['n_tensors']} encoder tensors, {info['n_parameters']:,} parameters",
                fg=typer.colors.GREEN)
    typer.echo(f"ℹ Tokenizer: {info['tokenizer_file']}, {info['tokenizer_vocab']} entries")
    if info["head_tensors"]:
        typer.echo(f"ℹ Head tensors (not part of the encoder): {', '.join(info['head_tensors'])}")
    typer.echo(f"Overrides for spacy train (or set them in [components.{component}.model]):")
    for key, value in info["sizes"].items():
        typer.echo(f"--components.{component}.model.{key} {value}")


@app.command("tune-thresholds")
def tune_thresholds_cli(
    pipeline: Path = typer.Argument(..., help="A trained pipeline folder with a multi-label bert_textcat"),
    data: Path = typer.Argument(..., help="Dev data: JSONL {\"text\", \"labels\"} or .spacy"),
    output: Path = typer.Option(None, "--output", "-o", help="Where to save (default: PIPELINE itself)"),
    component: str = typer.Option("bert_textcat", help="The bert_textcat component's name"),
) -> None:
    """Set each label's threshold to the one that maximises its F1 on DATA, and save."""
    from ..pipeline.textcat import tune_pipeline_thresholds

    try:
        tuned = tune_pipeline_thresholds(pipeline, data, output or pipeline, component)
    except USER_ERRORS as err:
        fail("Thresholds not tuned; nothing was written", err)
    msg.good(f"Saved {output or pipeline} with tuned thresholds (macro F on {data.name}: "
             f"{tuned.before:.4f} with the previous ones, {tuned.after:.4f} tuned)")
    if tuned.kept:
        msg.warn(f"No positive example in {data.name} for {', '.join(tuned.kept)}: their thresholds are kept as they were")
    msg.table([(label, f"{value:.2f}") for label, value in tuned.thresholds.items()], header=("label", "threshold"))


@app.command("pretrain", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def pretrain_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="A pretraining config (configs/pretrain.cfg, configs/pretrain_continue.cfg)"),
    output_dir: Path = typer.Argument(..., help="Where checkpoints, model-last, log.csv and curves.png go"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in OUTPUT_DIR"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id; -1 for the CPU"),
) -> None:
    """Masked-LM (+ next-sentence) pretraining. Overrides: --paths.raw FILE --training.max_steps N ..."""
    import configparser

    from spacy.cli._util import parse_config_overrides
    from thinc.api import Config

    from ..pretraining.train import pretrain

    if not config_path.is_file():
        fail("Pretraining stopped", f"config not found: {config_path}")
    try:
        config = Config().from_disk(config_path, overrides=parse_config_overrides(ctx.args), interpolate=True)
    except (ValueError, configparser.Error) as err:
        fail("Pretraining stopped", f"{config_path}: not a valid config: {str(err).strip()}")
    try:
        path = pretrain(config, output_dir, resume=resume, gpu_id=gpu_id, config_path=config_path)
    except USER_ERRORS as err:
        fail("Pretraining stopped", err)
    msg.good(f"Saved {path}")


@app.command("fill-mask")
def fill_mask_cli(
    model_dir: Path = typer.Argument(..., help="A pretrained checkpoint folder (with its MLM head)"),
    text: str = typer.Argument(..., help="A text with [MASK] in it"),
    top_k: int = typer.Option(5, "--top-k", "-k"),
) -> None:
    """The most probable pieces for each [MASK] in TEXT."""
    from ..pretraining.fill_mask import fill_mask

    try:
        results = fill_mask(model_dir, text, top_k)
    except USER_ERRORS as err:
        fail("fill-mask failed", err)
    for i, candidates in enumerate(results, start=1):
        msg.text(f"[MASK] {i}: " + ", ".join(f"{c['token']} ({c['score']:.3f})" for c in candidates))


@app.command("convert")
def convert_cli(
    input_paths: List[Path] = typer.Argument(..., help="JSONL text classification and/or CoNLL NER files (merged), or one raw text file"),
    output_path: Path = typer.Option(..., "--output", "-o", help="The .spacy file to write (.txt for raw text)"),
    format: str = typer.Option("auto", "--format", "-f", help="auto, jsonl, conll, or raw: pretraining text "
                               "(from .txt, JSONL, or a CoNLL file's tokens) to a .txt"),
    labels_from: List[Path] = typer.Option(None, "--labels-from", help="Allow only these training files' labels (one per kind)"),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer (JSONL)"),
    scheme: str = typer.Option("iob2", "--scheme", help="iob2 (strict) or any (IOB1, BILUO, IOBES)"),
) -> None:
    """Convert a data file to .spacy (or raw text to pretraining input), checking every line."""
    from ..convert import convert

    try:
        summary = convert(input_paths, output_path, format=format, lang=lang, labels_from=labels_from or None,
                          scheme=scheme)
    except USER_ERRORS as err:
        fail("Conversion stopped; nothing was written", err)
    what = f"{summary['examples']} examples" if "examples" in summary else f"{summary['documents']} documents"
    names = ", ".join(str(p) for p in input_paths)
    labels = f", labels {summary['labels']}" if summary.get("labels") else ""
    typer.secho(f"✔ {names} -> {output_path}: {what}{labels}", fg=typer.colors.GREEN)


@app.command("evaluate")
def evaluate_cli(
    pipeline: Path = typer.Argument(..., help="A trained pipeline folder"),
    data: List[Path] = typer.Argument(..., help="Data files: .spacy, JSONL, CoNLL (several for a joint pipeline)"),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the metrics here, as JSON"),
    html: Path = typer.Option(None, "--html", help="Also write an HTML report here"),
    curves: Path = typer.Option(None, "--curves", help="A pretraining log.csv to plot in the report"),
) -> None:
    """Score a pipeline on data files. Prints the metrics of each file; writes them as JSON
    with --output and an HTML report (per-label scores, confusion matrix, entities shown with
    displaCy) with --html."""
    from ..evaluate import check_outputs, evaluate, write_metrics, write_report

    try:
        check_outputs(pipeline, data, output, html, curves)
        result = evaluate(pipeline, data)
    except USER_ERRORS as err:
        fail("Evaluation failed; nothing was written", err)
    for path, entry in result["files"].items():
        shown = {k: v for k, v in entry["scores"].items() if isinstance(v, float)}
        if "accuracy" in entry:
            shown = {"accuracy": entry["accuracy"], **shown}
        msg.info(f"{path}: {entry['n_examples']} examples, predicted on {entry['tokens']} tokens")
        if entry.get("unknown_entity_labels"):
            msg.warn(f"{path}: entity labels the pipeline does not predict, counted as missed: "
                     f"{', '.join(entry['unknown_entity_labels'])}")
        msg.table([(k, f"{v:.4f}") for k, v in shown.items()])
    for path, write in ((output, lambda: write_metrics(result, output)),
                        (html, lambda: write_report(result, html, curves))):
        if path:
            try:
                write()
            except (OSError, ImportError) as err:
                fail(f"{path} not written", err)
            msg.good(f"Saved {path}")
    if not output and not html:
        msg.text("Nothing written: -o FILE.json saves the metrics, --html FILE.html a report.")


@app.command("install-check")
def install_check_cli(
    wheel: Path = typer.Argument(..., help="The pipeline's wheel (spacy package --build wheel)"),
    pipeline: Path = typer.Argument(..., help="The pipeline folder it was packaged from"),
    data: List[Path] = typer.Argument(..., help="Data files whose texts are compared"),
    venv: Path = typer.Option(None, "--venv", help="Where to make the fresh environment, kept afterwards (default: a temporary one, removed)"),
    package_source: str = typer.Option(None, "--package-source", help="What pip installs for spacy_bert_cls"),
    output: Path = typer.Option(None, "--output", "-o", help="Write the summary JSON here"),
) -> None:
    """Install WHEEL in a fresh virtual environment, load it with no network, compare with PIPELINE."""
    import json

    from ..install_check import PredictionsDiffer, install_check

    def write(report: dict) -> None:
        if output:
            output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")

    try:
        summary = install_check(wheel, pipeline, data, venv=venv, package_source=package_source)
    except PredictionsDiffer as err:  # the report says which texts differ, and how
        write(err.summary)
        fail("install-check failed" + (f" (report: {output})" if output else ""), err)
    except (AssertionError, RuntimeError) + USER_ERRORS as err:
        fail("install-check failed", err)
    msg.good(f"{wheel.name}: same cats and entities as {pipeline} on {summary['texts']} texts "
             f"(install {summary['install_seconds']} s, load + predict {summary['load_and_predict_seconds']} s)")
    write(summary)


@app.command("fit-config")
def fit_config_cli(
    config_path: Path = typer.Argument(..., help="A training config with a bert component"),
    checkpoint: Path = typer.Argument(..., help="The HF BERT folder it should fine-tune"),
    output: Path = typer.Option(..., "--output", "-o", help="The config to write"),
    component: str = typer.Option("bert", help="The bert component's name"),
) -> None:
    """Write CONFIG with the bert component's sizes (and paths.bert) set to CHECKPOINT's."""
    from ..checkpoint.fit_config import fit_config

    try:
        fitted = fit_config(config_path, checkpoint, output, component)
    except USER_ERRORS + (KeyError,) as err:
        fail("Cannot fit the config", err)
    changed = ", ".join(fitted.changed)
    msg.good(f"Saved {output}" + (f" ({changed} changed)" if changed else " (sizes already matched)"))
    if not fitted.comments_kept:
        msg.warn(f"{output} is written in thinc's layout, without {config_path.name}'s comments: its text could "
                 f"not be edited in place")


@app.command("distill")
def distill_cli(
    teacher: Path = typer.Argument(..., help="A trained pipeline with a bert encoder (bert_textcat, bert_ner, ...)"),
    output: Path = typer.Argument(..., help="Where checkpoints and model-last (the student) go"),
    layers: int = typer.Option(..., "--layers", "-n", help="The student's encoder layers (fewer than the teacher's)"),
    data: Path = typer.Option(..., "--data", "-d", help="Raw in-domain text: .txt a text a line, .jsonl {\"text\"}, or .spacy/CoNLL"),
    gold: Path = typer.Option(None, "--gold", help="Labelled examples (.spacy, .jsonl, CoNLL) to add the heads' own losses on"),
    dev: Path = typer.Option(None, "--dev", help="Texts to measure the student's agreement with the teacher on"),
    width: int = typer.Option(None, "--width", help="The student's hidden size (only the teacher's is supported yet)"),
    steps: int = typer.Option(None, "--steps", help="Optimizer steps (default: --epochs passes over DATA)"),
    epochs: int = typer.Option(3, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size", help="Texts per step"),
    learn_rate: float = typer.Option(3e-4, "--learn-rate"),
    temperature: float = typer.Option(1.0, "--temperature", "-T", help="Temperature of the soft targets"),
    hidden_weight: float = typer.Option(1.0, "--hidden-weight", help="Weight of the hidden-state MSE (0: none)"),
    attention_weight: float = typer.Option(4.0, "--attention-weight", help="Weight of the KL of the attention weights at the mapped layers (0: none)"),
    augment: float = typer.Option(0.0, "--augment", help="In half of each batch's texts, the chance of each word being replaced by a word of DATA of the same shape (0: none)"),
    seed: int = typer.Option(0, "--seed"),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every"),
    log_every: int = typer.Option(20, "--log-every"),
    eval_every: int = typer.Option(200, "--eval-every"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in OUTPUT"),
) -> None:
    """Distil TEACHER's encoder into a student with --layers layers, trained on the teacher's
    outputs on raw text (and on gold examples with --gold). The student is OUTPUT/model-last."""
    from ..distill import Settings, distill

    try:
        settings = Settings(teacher=teacher, output=output, layers=layers, data=data, gold=gold, dev=dev, width=width,
                            steps=steps, epochs=epochs, batch_size=batch_size, learn_rate=learn_rate,
                            temperature=temperature, hidden_weight=hidden_weight, attention_weight=attention_weight,
                            augment=augment, seed=seed,
                            checkpoint_every=checkpoint_every, log_every=log_every, eval_every=eval_every,
                            resume=resume)
        path = distill(settings)
    except USER_ERRORS as err:
        fail("Distillation stopped", err)
    msg.good(f"Saved {path}")


def main() -> None:
    app()
