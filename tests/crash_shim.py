"""The sitecustomize.py that tests/test_crash.py writes for the writer it kills.

It wraps five seams of the append path and prints an ``@phase`` line to stderr at each step, so
the last line before death names where the kill landed; it can also hold the writer at one
step. Kept as text: it runs only inside the child process.
"""

SHIM = '''
import os
import time
from contextlib import contextmanager

from radledger.cli import appendcmd
from radledger.ledger import service
from radledger.storage import sqlite

_PAUSE_AT = os.environ.get("RADLEDGER_CRASH_PAUSE_AT", "")
_skip = [int(os.environ.get("RADLEDGER_CRASH_PAUSE_SKIP", "0"))]
_MIN_BATCH = int(os.environ.get("RADLEDGER_CRASH_PAUSE_MIN_BATCH", "0"))
_batch = [0]


def _mark(phase, count=""):
    os.write(2, f"@phase {phase} {count}\\n".encode())
    if phase == _PAUSE_AT and _batch[0] >= _MIN_BATCH:
        if _skip[0] == 0:
            os.write(2, b"@paused\\n")
            time.sleep(600)
        _skip[0] -= 1


_write = sqlite.SQLiteStore.write


@contextmanager
def _wrapped_write(self):
    _mark("begin")
    with _write(self) as store:
        _mark("in-tx")
        yield store
        _mark("commit")
    _mark("committed")


_sign_checkpoint = service.sign_checkpoint


def _wrapped_sign_checkpoint(*args, **kwargs):
    _mark("sign-checkpoint")
    note = _sign_checkpoint(*args, **kwargs)
    _mark("signed-checkpoint")
    return note


_prepare_name = "prepare_lines"  # the stream path of `append -`
_prepare = getattr(service.Ledger, _prepare_name)


def _wrapped_prepare(self, lines, *args, **kwargs):
    _mark("prepare", len(lines))
    return _prepare(self, lines, *args, **kwargs)


_append = service.Ledger._append


def _wrapped_append(self, items, *args, **kwargs):
    _batch[0] = len(items)
    _mark("batch", len(items))
    return _append(self, items, *args, **kwargs)


_emit = appendcmd._emit


def _wrapped_emit(receipts, as_json):
    _mark("ack", len(receipts))
    _emit(receipts, as_json)
    _mark("acked", len(receipts))


sqlite.SQLiteStore.write = _wrapped_write
service.sign_checkpoint = _wrapped_sign_checkpoint
setattr(service.Ledger, _prepare_name, _wrapped_prepare)
service.Ledger._append = _wrapped_append
appendcmd._emit = _wrapped_emit
_mark("ready")
'''
