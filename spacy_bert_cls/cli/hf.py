"""`import-hf` and `export-hf`: HF BERT classifiers into spaCy pipelines, and back."""
from pathlib import Path

import typer
from wasabi import msg

from .main import USER_ERRORS, app, fail


@app.command("import-hf")
def import_hf_cli(
    model_dir: Path = typer.Argument(..., help="An HF folder with a BertForSequenceClassification or BertForTokenClassification"),
    output_dir: Path = typer.Argument(..., help="Where to save the spaCy pipeline"),
    lang: str = typer.Option("en", "--lang", help="Language of the pipeline's spaCy tokenizer"),
    task: str = typer.Option(None, "--task", help="textcat or ner (default: from config.json's architectures)"),
    decoder: str = typer.Option("constrained", "--decoder", help="bert_ner's decoder: constrained, hf_first or argmax"),
    tokenizer: Path = typer.Option(None, "--tokenizer", help="A tokenizer.json / vocab.txt (or folder) instead of MODEL_DIR's"),
    train_config: Path = typer.Option(None, "--train-config", help="Also write a spacy train config that sources the pipeline"),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT_DIR if it exists"),
) -> None:
    """Turn a fine-tuned HF BERT classifier or tagger into a spaCy pipeline (bert + bert_textcat / bert_ner)."""
    from ..interop.hf_import import import_hf
    from ..interop.training_config import write_training_config
    from ..outputs import check_apart, check_file_output

    try:
        if train_config is not None:  # before the import: a bad path must leave nothing written
            check_file_output(train_config, "--train-config")
            check_apart(train_config, [model_dir, output_dir, *([tokenizer] if tokenizer else [])], "--train-config")
        nlp = import_hf(model_dir, output_dir, lang=lang, task=task, decoder=decoder, tokenizer=tokenizer,
                        overwrite=force)
        if train_config is not None:
            write_training_config(output_dir, train_config)
    except USER_ERRORS as err:
        fail("Import failed; nothing was written", err)
    head = nlp.get_pipe(nlp.pipe_names[-1])
    what = f"{len(head.labels)} labels" if nlp.pipe_names[-1] == "bert_textcat" else \
        f"{len(head.labels)} entity types, {head.cfg['scheme']} tags"
    msg.good(f"{model_dir} -> {output_dir}: {', '.join(nlp.pipe_names)} ({what})")
    if train_config is not None:
        msg.info(f"Fine-tune further: python -m spacy train {train_config} --paths.train TRAIN --paths.dev DEV")


@app.command("export-hf")
def export_hf_cli(
    pipeline: Path = typer.Argument(..., help="A trained pipeline folder with a bert_textcat or bert_ner"),
    output_dir: Path = typer.Argument(..., help="The HF folder to write"),
    component: str = typer.Option(None, "--component", help="The head to export (default: the only one)"),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT_DIR if it exists"),
    onnx: bool = typer.Option(False, "--onnx", help="Also write model.onnx for ONNX Runtime (the onnx extra)"),
) -> None:
    """Write a bert_textcat or bert_ner (with its encoder) as an HF folder that transformers loads."""
    from ..interop.hf_export import export_hf

    try:
        export_hf(pipeline, output_dir, component=component, overwrite=force, onnx=onnx)
    except USER_ERRORS + (ImportError,) as err:
        fail("Export failed; nothing was written", err)
    msg.good(f"{pipeline} -> {output_dir} (AutoModelFor*Classification, AutoTokenizer, transformers.pipeline"
             + (", model.onnx for ONNX Runtime)" if onnx else ")"))
