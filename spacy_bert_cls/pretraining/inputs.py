"""The checks on a pretraining run's raw and dev files, made before anything is written.

Each file readable as raw text, a warning for tagged data, and enough documents for
next-sentence prediction."""
import logging
from pathlib import Path

from ..errors import DataError
from .data import validate_raw_file, warn_if_tagged
from .distributed import Distributed
from .settings import Settings

# The pretrain run's messages keep the logger name they had before train.py was split.
logger = logging.getLogger("spacy_bert_cls.pretraining.train")

# Under this many documents (per process), NSP's random pairs come from too few to say much.
FEW_NSP_DOCUMENTS = 50


def check_inputs(settings: Settings, dist_info: Distributed) -> None:
    """The raw file (read in shards, one per process) and the dev file (read by the main process)."""
    for path, processes in ((settings.raw, dist_info.world_size), (settings.dev, 1)):
        if path is not None:
            n_documents = validate_raw_file(path)
            if dist_info.main:
                warn_if_tagged(path)
            if settings.nsp:
                check_nsp_documents(path, n_documents, processes, warn=dist_info.main)


def check_nsp_documents(path: Path, n_documents: int, processes: int, warn: bool = True) -> None:
    """NSP draws a random second segment from another document of the same shard: each
    process needs two documents at least (DataError, before anything is written); a warning
    when there are few."""
    per_process = f" ({n_documents // processes} per process)" if processes > 1 else ""
    found = f"{n_documents} document{'s' if n_documents != 1 else ''}"
    if n_documents < 2 * processes:
        need = f"at least {2 * processes} (2 for each of {processes} processes)" if processes > 1 else "at least 2"
        raise DataError(path, None, f"{found} found, but next-sentence prediction needs {need}: its "
                                    f"random second segments come from another document. Documents are "
                                    f"separated by blank lines in .txt files and are one per line in .jsonl "
                                    f"files; split the text into documents, or pass --objective.nsp false "
                                    f"to train MLM only")
    if warn and n_documents // processes < FEW_NSP_DOCUMENTS:
        logger.warning("%s has only %s%s: next-sentence prediction draws its random second segments from "
                       "so few that its pairs repeat and its accuracy says little; use more documents "
                       "(separated by blank lines in .txt, one per line in .jsonl), or --objective.nsp false "
                       "to train MLM only", path, found, per_process)
