"""Worker processes that die with their parent.

A writer killed with SIGKILL cannot shut its pool down, and pool workers blocked on their
task queue would otherwise live on as orphans. Each worker asks Linux to kill it when the
parent dies (PR_SET_PDEATHSIG) and, where that is unavailable, watches its parent id.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the watchdog below still works

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _start(parent: int, initializer: Callable[..., None], args: tuple[Any, ...]) -> None:
    _die_with_parent(parent)
    initializer(*args)


def worker_pool(workers: int, initializer: Callable[..., None],
                initargs: tuple[Any, ...]) -> ProcessPoolExecutor:
    """A forked process pool whose workers run ``initializer(*initargs)`` and die with us."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_start,
        initargs=(os.getpid(), initializer, initargs),
    )
