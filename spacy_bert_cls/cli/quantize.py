"""`quantize`: a trained pipeline's encoder to int8 or bf16 inference (or back to float32), for speed."""
from pathlib import Path

import typer
from wasabi import msg

from .main import USER_ERRORS, app, fail


@app.command("quantize")
def quantize_cli(
    pipeline: Path = typer.Argument(..., help="A trained pipeline folder with a bert component"),
    output: Path = typer.Argument(..., help="Where to save the converted pipeline"),
    dtype: str = typer.Option("int8", "--dtype", "-t", help="int8, bfloat16, or float32 (undo)"),
    data: Path = typer.Option(None, "--data", "-d",
                              help='Text to calibrate int8 on: .txt (a text a line), .jsonl ({"text"}; labels not '
                                   'needed), CoNLL or .spacy'),
    n_texts: int = typer.Option(512, "--n-texts", help="Texts of DATA to calibrate on"),
    component: str = typer.Option("bert", help="The bert component's name, or an assembled head's (its own encoder)"),
    target_cosine: float = typer.Option(0.993, help="Leave layers in fp32 until the token states reach this cosine to fp32"),
) -> None:
    """Set PIPELINE's encoder to int8 (calibrated on DATA) or bf16 inference and save it to OUTPUT."""
    from ..quantize import quantize_pipeline

    if not pipeline.is_dir():
        fail("Quantization failed; nothing was written", f"{pipeline}: no such pipeline folder")
    try:
        summary = quantize_pipeline(pipeline, output, dtype=dtype, data=data, component=component,
                                    n_texts=n_texts, target_cosine=target_cosine)
    except USER_ERRORS as err:
        fail("Quantization failed; nothing was written", err)
    msg.good(f"Saved {output} ({dtype} inference)")
    if "mean_cosine" in summary:
        msg.info(f"Token states vs fp32 on {summary['calibration_texts']}: mean cosine {summary['mean_cosine']}, "
                 f"min {summary['min_cosine']}")
    if summary.get("fp32_layers"):
        msg.info("Layers kept in fp32", ", ".join(summary["fp32_layers"]))
    for warning in summary["warnings"]:
        msg.warn(warning)
