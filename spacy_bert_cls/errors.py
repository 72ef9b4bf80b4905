"""Errors the user can act on: what was wrong, where, and what to do."""
from pathlib import Path
from typing import Optional, Union


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be loaded as it is."""

    def __init__(self, path: Union[str, Path], message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


class DataError(ValueError):
    """A malformed line or record in a data file."""

    def __init__(self, path: Union[str, Path], line: Optional[int], message: str) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class ListenerError(ValueError):
    """A listener that has no output of its upstream `bert` component to read."""


E_NO_UPSTREAM_OUTPUT = (
    "A bert listener found no output of its upstream 'bert' component for this doc. Is 'bert' "
    "disabled or excluded (nlp.select_pipes(disable=...), spacy.load(..., disable=/exclude=))? Its "
    "listeners read what it computes: keep it enabled. Otherwise run the whole pipeline (nlp(text) or "
    "nlp.pipe(texts)) instead of this component on its own, or run the 'bert' component on the doc "
    "first. (When 'bert' is frozen in training with frozen_components, add it to "
    "annotating_components too, or use the component's own `frozen = true`.)"
)

E_INLINE_NOT_TRAINED = (
    "This component's own copy of the encoder (spacy-bert-cls.BertInlineListener.v1) has no "
    "word-piece tokenizer: an inline encoder comes from a trained pipeline (nlp.replace_listeners, "
    "or a sourced component with replace_listeners = [\"model.tok2vec\"]) and cannot load a "
    "checkpoint at initialize. To fine-tune from a checkpoint, use a 'bert' component and a "
    "spacy-bert-cls.BertListener.v1 / BertDocListener.v1."
)

E_NO_TOKENIZER = (
    "The 'bert' component has no word-piece tokenizer yet. Initialize it with a "
    "checkpoint folder ([initialize.components.{name}.loader] path, usually "
    "paths.bert) or a vocabulary file (vocab), or load a trained pipeline."
)


def blank_language(lang: str):
    """spacy.blank(lang) for a command's --lang: an unknown code is a ValueError that names
    the option (spaCy raises an ImportError, which a command would show as a traceback)."""
    import spacy

    try:
        return spacy.blank(lang)
    except ImportError as err:
        raise ValueError(f"--lang {lang!r} is not a language spaCy has ({err}); use a code such as "
                         f"'en', 'de' or 'xx' (multi-language)") from None
