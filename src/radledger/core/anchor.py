"""Anchor receipts: where a checkpoint was written on an Ethereum-compatible chain.

A receipt says that the ``RadledgerAnchor`` contract at ``contract`` on chain ``chain_id``
emitted ``Anchored(origin, tree_size, root_hash)`` in transaction ``tx_hash``, log
``log_index``, block ``block_number`` (``block_hash``, mined at ``block_time``), sent by
``sender``. As JSON (in bundles and ``radledger anchor list --json``)::

    {"chain_id": 31337, "contract": "0x5FbD...", "tx_hash": "0x...", "block_number": 2,
     "block_hash": "0x...", "block_time": 1795000000, "log_index": 0, "sender": "0xf39F...",
     "origin": "example.org/lab", "tree_size": 12, "root_hash": "<64 hex digits>"}

Ethereum values are written as Ethereum writes them (0x-prefixed hex); the root hash as
radledger writes hashes (lowercase hex, no prefix). Parsing checks the shape only; whether the
chain agrees is ``radledger.ledger.anchor.verify_anchor``'s job, which needs the network.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from radledger.core.checkpoint import HASH_SIZE, Checkpoint
from radledger.errors import AnchorReceiptError

__all__ = ["RECEIPT_FIELDS", "AnchorReceipt", "AnchorReceiptError", "parse_receipt"]

MAX_JSON_INT = 2**53
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_HASH32 = re.compile(r"0x[0-9a-f]{64}", re.ASCII)
_ROOT = re.compile(r"[0-9a-f]{64}", re.ASCII)
_INT_FIELDS = ("chain_id", "block_number", "block_time", "log_index", "tree_size")


@dataclass(frozen=True)
class AnchorReceipt:
    """Where one checkpoint's (origin, tree size, root) was anchored.

    Raises AnchorReceiptError if a field is out of shape: integers outside [0, 2^53]
    (chain ids from 1), addresses that are not 0x + 40 hex digits, transaction and block
    hashes that are not 0x + 64 lowercase hex digits, a root that is not 64 lowercase hex
    digits, an empty origin.
    """

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    log_index: int
    sender: str
    origin: str
    tree_size: int
    root_hash: str

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 0 <= value <= MAX_JSON_INT:
                raise AnchorReceiptError(f"anchor receipt: {name} must be an integer in "
                                         f"[0, 2^53], got {value!r:.40}")
        if self.chain_id == 0:
            raise AnchorReceiptError("anchor receipt: chain_id must be positive")
        for name, pattern, shape in (
                ("contract", _ADDRESS, "0x and 40 hex digits"),
                ("sender", _ADDRESS, "0x and 40 hex digits"),
                ("tx_hash", _HASH32, "0x and 64 lowercase hex digits"),
                ("block_hash", _HASH32, "0x and 64 lowercase hex digits"),
                ("root_hash", _ROOT, f"{2 * HASH_SIZE} lowercase hex digits")):
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise AnchorReceiptError(f"anchor receipt: {name} must be {shape}, got "
                                         f"{value!r:.80}")
        if not isinstance(self.origin, str) or not self.origin:
            raise AnchorReceiptError("anchor receipt: origin must be non-empty text")

    def to_json(self) -> dict[str, str | int]:
        """The receipt as a JSON object (every field, nothing else)."""
        return asdict(self)

    def is_for(self, checkpoint: Checkpoint) -> bool:
        """Whether this receipt is for exactly ``checkpoint``'s origin, size and root."""
        return (self.origin, self.tree_size, self.root_hash) == \
            (checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash.hex())


RECEIPT_FIELDS = frozenset(AnchorReceipt.__dataclass_fields__)


def parse_receipt(value: object) -> AnchorReceipt:
    """A receipt from its JSON object; exactly RECEIPT_FIELDS. Raises AnchorReceiptError."""
    if not isinstance(value, dict) or set(value) != RECEIPT_FIELDS:
        raise AnchorReceiptError(f"an anchor receipt must be an object with exactly the fields "
                                 f"{sorted(RECEIPT_FIELDS)}")
    return AnchorReceipt(**value)
