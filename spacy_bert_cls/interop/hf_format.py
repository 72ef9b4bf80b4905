"""What import-hf and export-hf agree on about an HF classifier folder.

The architectures of config.json and the task each one is, the names of the classifier's
tensors, the extra config.json keys that our exports write and our imports read back, and
how both write their output folder (whole or not at all). hf_import.py and hf_export.py
hold one direction each.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Sequence, Union

from torch import Tensor

from ..checkpoint.io import atomic_dir
from ..errors import CheckpointError
from ..outputs import check_apart, check_folder_output
from ..pytorch.heads import ClassificationHead

SEQUENCE_CLASSIFIER = "BertForSequenceClassification"
TOKEN_CLASSIFIER = "BertForTokenClassification"
TASKS = {SEQUENCE_CLASSIFIER: "textcat", TOKEN_CLASSIFIER: "ner"}
# Both architectures hold their head (pytorch/heads.ClassificationHead) as `classifier`.
CLASSIFIER = "classifier"
CLASSIFIER_KEYS = (f"{CLASSIFIER}.weight", f"{CLASSIFIER}.bias")
# Extra config.json keys of our exports (HF keeps unknown keys and ignores them):
# the per-label thresholds of a multi-label classifier, and the tagger's own tag set
# when it is not plain BIO (BILUO rows carry HF names B-/I-, see hf_export.export_hf).
THRESHOLDS_KEY = "spacy_bert_cls_thresholds"
TAGS_KEY = "spacy_bert_cls_tags"
# ... and the encoder's windows (window_size, stride, overlap), so that a pipeline exported and
# imported back splits long texts as it did (an HF folder of elsewhere gets one window of
# max_position_embeddings, as HF's tokenizer truncates there).
WINDOWS_KEY = "spacy_bert_cls_windows"


def check_output(path: Union[str, Path], inputs: Sequence[Union[str, Path]], overwrite: bool) -> None:
    """Before any work: `path` can be the output folder. A CheckpointError when it is a file,
    one of `inputs` or a folder holding one (even with overwrite: it would replace what the
    command reads), or a folder with files in it without overwrite."""
    path = Path(path)
    try:
        check_folder_output(path, "OUTPUT_DIR")
        check_apart(path, inputs, "OUTPUT_DIR")
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None
    if path.exists() and not overwrite and any(path.iterdir()):
        raise CheckpointError(path, "exists and is not empty (pass overwrite / --force to replace it)")


@contextmanager
def atomic_folder(path: Union[str, Path], overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`, renamed to `path` if the block succeeds.

    An error inside the block leaves nothing behind and `path` as it was. An existing
    `path` is an error unless `overwrite`; then it is swapped out only once the new
    folder is complete.
    """
    # Checked again here, at the write (import_hf and export_hf check first, with their
    # inputs, before any work): the folder may have appeared meanwhile.
    check_output(path, (), overwrite)
    # One atomic swap (checkpoint.io.atomic_dir): a kill at any moment leaves the old
    # folder or the new one, whole, with the permissions a plain mkdir gives.
    with atomic_dir(path) as staging:
        yield staging


def classifier_tensors(classifier: ClassificationHead) -> Dict[str, Tensor]:
    """The head's tensors by their names in an HF folder: classifier.weight, classifier.bias."""
    return {f"{CLASSIFIER}.{name}": tensor.detach().float() for name, tensor in classifier.state_dict().items()}
