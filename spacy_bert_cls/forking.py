"""Make forked worker processes (nlp.pipe(n_process=N)) safe for torch and tokenizers.

spaCy's multiprocessing forks the parent. torch's OpenMP thread pool does not survive
a fork: the child's first parallel op deadlocks (spaCy #6662, #13233). The `tokenizers`
library disables its own threads in a forked child but prints a warning each time.
So, in every forked child, torch gets one thread (the workers are the parallelism),
and the parent tells `tokenizers` before the fork that the child must not use threads.

This module holds the package's only fork state, and it is process-wide by nature:
`os.register_at_fork` hooks cannot be removed and run at every fork of the process, so
`install_fork_hooks` registers them once per process (it is cached); and the parent's
TOKENIZERS_PARALLELISM before a fork must be kept from the hook that runs before the
fork to the one that runs after it in the parent (`_saved`, a stack: forks may nest),
so that the parent's own tokenizer keeps its threads. The hooks are installed when a
`bert` model is built (models/encoder.py), never at import: spaCy imports every
plugin's factories in any process that makes a Language, and the hooks change forked
children, which is no business of someone else's pipeline.
"""
import functools
import os

import torch

_ENV = "TOKENIZERS_PARALLELISM"
_saved = []


def _before_fork() -> None:
    _saved.append(os.environ.get(_ENV))
    if _saved[-1] is None:
        os.environ[_ENV] = "false"


def _after_fork_in_parent() -> None:
    previous = _saved.pop() if _saved else None
    if previous is None:
        os.environ.pop(_ENV, None)


def _after_fork_in_child() -> None:
    _saved.clear()
    torch.set_num_threads(1)


@functools.cache
def install_fork_hooks() -> None:
    """Register the fork hooks of this module, once per process (later calls do nothing)."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


def fork_hooks_installed() -> bool:
    """Whether this process has registered the fork hooks (install_fork_hooks has run)."""
    return install_fork_hooks.cache_info().currsize > 0
