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


def main() -> None:
    app()
