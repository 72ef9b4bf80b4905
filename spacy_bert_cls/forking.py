"""Make forked worker processes (nlp.pipe(n_process=N)) safe for torch and tokenizers.

spaCy's multiprocessing forks the parent. torch's OpenMP thread pool does not survive
a fork: the child's first parallel op deadlocks (spaCy #6662, #13233). The `tokenizers`
library disables its own threads in a forked child but prints a warning each time.
So, in every forked child, torch gets one thread (the workers are the parallelism),
and the parent tells `tokenizers` before the fork that the child must not use threads.
"""
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


_installed = False


def install_fork_hooks() -> None:
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)
        _installed = True
