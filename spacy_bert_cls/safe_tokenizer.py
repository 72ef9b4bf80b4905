"""A spaCy tokenizer that takes any Python string, lone surrogates included.

Python allows lone surrogates (U+D800-U+DFFF) in a `str`: `json.loads` makes them from
"\\ud83d" escapes (half an emoji, common in scraped social-media text), and so does
`errors="surrogateescape"`. spaCy's tokenizer cannot hash them and raises
UnicodeEncodeError, so one such text stops a whole `nlp.pipe` run. This wrapper gives
spaCy's tokenizer the text with each lone surrogate replaced by U+FFFD, one character for
one, so every character offset stays that of the input. Everything else (serialization,
special cases, `explain`) is the wrapped tokenizer's.

    [nlp.tokenizer]
    @tokenizers = "spacy-bert-cls.Tokenizer.v1"
"""
import re
from typing import Callable, Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry

SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def replace_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (same length, same offsets)."""
    return SURROGATES.sub(REPLACEMENT, text) if SURROGATES.search(text) else text


class SurrogateSafeTokenizer:
    """Wraps a spaCy tokenizer; see the module's docstring."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> Doc:
        return self.tokenizer(replace_surrogates(text))

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    def __getattr__(self, name: str):
        # Only reached for attributes the wrapper lacks; "tokenizer" itself is missing
        # only while unpickling, before __dict__ is restored.
        if name == "tokenizer":
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    def __setattr__(self, name: str, value) -> None:
        # nlp.tokenizer.infix_finditer = ... and the like customize the wrapped tokenizer.
        if name == "tokenizer":
            object.__setattr__(self, name, value)
        else:
            setattr(self.tokenizer, name, value)

    def __reduce__(self):
        return (SurrogateSafeTokenizer, (self.tokenizer,))


def create_tokenizer_v1(base: str = "spacy.Tokenizer.v1") -> Callable[[Language], SurrogateSafeTokenizer]:
    """spacy-bert-cls.Tokenizer.v1: the registered tokenizer `base` (spaCy's rule-based
    tokenizer by default), taking lone surrogates as U+FFFD instead of raising."""
    make_base = registry.tokenizers.get(base)()
    return _Factory(make_base)


class _Factory:
    # A class, not a closure: spaCy may pickle what the config resolves to.
    def __init__(self, make_base: Callable[[Language], object]) -> None:
        self.make_base = make_base

    def __call__(self, nlp: Language) -> SurrogateSafeTokenizer:
        return SurrogateSafeTokenizer(self.make_base(nlp))
