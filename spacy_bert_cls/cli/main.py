"""Thin typer commands: parse arguments, call a library function, print its result."""
from pathlib import Path

import typer
from wasabi import msg

from ..errors import CheckpointError

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
    except CheckpointError as err:
        msg.fail("Checkpoint cannot be loaded", str(err), exits=1)
    msg.good(f"{path}: {info['n_tensors']} encoder tensors, {info['n_parameters']:,} parameters")
    msg.info("Tokenizer", f"{info['tokenizer_file']}, {info['tokenizer_vocab']} entries")
    if info["head_tensors"]:
        msg.info("Head tensors (not part of the encoder)", ", ".join(info["head_tensors"]))
    msg.text("Overrides for spacy train (or set them in [components.%s.model]):" % component)
    msg.text(" ".join(f"--components.{component}.model.{k} {v}" for k, v in info["sizes"].items()))


@app.command("tune-thresholds")
def tune_thresholds_cli(
    pipeline: Path = typer.Argument(..., help="A trained pipeline folder with a multi-label bert_textcat"),
    data: Path = typer.Argument(..., help="Dev data: JSONL {\"text\", \"labels\"} or .spacy"),
    output: Path = typer.Option(None, "--output", "-o", help="Where to save (default: PIPELINE itself)"),
    component: str = typer.Option("bert_textcat", help="The bert_textcat component's name"),
) -> None:
    """Set each label's threshold to the one that maximises its F1 on DATA, and save."""
    from ..pipeline.textcat import tune_pipeline_thresholds

    thresholds, before, after = tune_pipeline_thresholds(pipeline, data, output or pipeline, component)
    msg.good(f"Saved {output or pipeline} with tuned thresholds (macro F on {data.name}: "
             f"{before:.4f} with the previous ones, {after:.4f} tuned)")
    msg.table([(label, f"{value:.2f}") for label, value in thresholds.items()], header=("label", "threshold"))


@app.command("pretrain", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def pretrain_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="A pretraining config (configs/pretrain.cfg, configs/pretrain_continue.cfg)"),
    output_dir: Path = typer.Argument(..., help="Where checkpoints, model-last, log.csv and curves.png go"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in OUTPUT_DIR"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id; -1 for the CPU"),
) -> None:
    """Masked-LM (+ next-sentence) pretraining. Overrides: --paths.raw FILE --training.max_steps N ..."""
    from spacy.cli._util import parse_config_overrides
    from thinc.api import Config

    from ..pretraining.train import pretrain

    if not config_path.is_file():
        msg.fail(f"Config not found: {config_path}", exits=1)
    try:
        config = Config().from_disk(config_path, overrides=parse_config_overrides(ctx.args), interpolate=True)
        path = pretrain(config, output_dir, resume=resume, gpu_id=gpu_id)
    except (ValueError, CheckpointError) as err:
        msg.fail("Pretraining stopped", str(err), exits=1)
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
    except (ValueError, CheckpointError) as err:
        msg.fail("fill-mask failed", str(err), exits=1)
    for i, candidates in enumerate(results, start=1):
        msg.text(f"[MASK] {i}: " + ", ".join(f"{c['token']} ({c['score']:.3f})" for c in candidates))


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="JSONL text classification, CoNLL NER, or raw text"),
    output_path: Path = typer.Argument(..., help="The .spacy file to write (.txt for raw text)"),
    format: str = typer.Option("auto", "--format", "-f", help="auto, jsonl, conll or raw"),
    labels_from: Path = typer.Option(None, "--labels-from", help="Allow only this training file's labels"),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer (JSONL)"),
    scheme: str = typer.Option("iob2", "--scheme", help="iob2 (strict) or any (IOB1, BILUO, IOBES)"),
) -> None:
    """Convert a data file to .spacy (or raw text to pretraining input), checking every line."""
    from ..convert import convert
    from ..errors import DataError

    try:
        summary = convert(input_path, output_path, format=format, lang=lang, labels_from=labels_from, scheme=scheme)
    except (DataError, ValueError) as err:
        msg.fail("Conversion stopped; nothing was written", str(err), exits=1)
    what = f"{summary['examples']} examples" if "examples" in summary else f"{summary['documents']} documents"
    msg.good(f"{input_path} -> {output_path}: {what}" + (f", labels {summary['labels']}" if summary.get("labels") else ""))


def main() -> None:
    app()
