"""Every error radledger raises on purpose.

::

    RadledgerError                      base; .diagnostics() says what to do; .exit_code
    ├── InputError                      bad input from a user or a peer (CLI exit 2)
    │   ├── CanonicalJSONError          JSON that RFC 8785 cannot canonicalize, or not canonical
    │   ├── EntryError                  an entry envelope or body that is malformed
    │   ├── NoteError                   a signed note / checkpoint text that is malformed
    │   ├── KeyFormatError              a key or vkey string that cannot be parsed
    │   ├── LedgerHomeError             no ledger home, or one that is incomplete
    │   ├── DicomError                  a file that is not DICOM radledger can safely read
    │   ├── NotFound                    an entry, tile or proof that does not exist (404)
    │   ├── NotRegistered               nothing in the ledger is about what was asked (404)
    │   ├── TokenRejected               a bearer token missing, unknown or revoked (401)
    │   ├── PermissionDenied            a token whose role does not allow the request (403)
    │   ├── ReleaseRefused              members that may not be released; .members says why
    │   ├── ReleaseExists               that name and version is released already; .index
    │   ├── NothingToRelease            every member was left out
    │   ├── EntryTooLargeForBundle      an entry over 65,535 bytes in a tlog-tiles bundle
    │   ├── BodyTooLarge                a request body over the server's limit (413)
    │   ├── RateLimited                 too many requests from one token; .retry_after
    │   ├── MultipartError              a body that is not well-formed multipart (400)
    │   ├── BundleError                 not a well-formed radledger bundle
    │   └── AnchorReceiptError          not a well-formed anchor receipt
    ├── VerificationError               something does not verify (CLI exit 1); carries
    │   │                               index/block, expected and computed values as evidence
    │   ├── ProofError                  an inclusion or consistency proof is rejected
    │   │   ├── RootMismatch            the proof computes another root than the one given
    │   │   └── ProofShapeError         sizes, index or path length impossible for the claim
    │   ├── SignatureError              a signature, key or signer that is not acceptable
    │   ├── TamperError                 stored data disagrees with itself (found by verify)
    │   └── RollbackError               the ledger is behind or forked from a held checkpoint
    ├── StorageError                    the store cannot be used safely (CLI exit 2)
    │   ├── UnrecognisedDatabase        not a radledger database, or another format version
    │   ├── UnsafeStorage               journal mode or filesystem that cannot keep promises
    │   ├── StorageCorrupt              the store is damaged; writes are refused
    │   ├── StorageFull                 no space left; nothing partial was written
    │   ├── StorageBusy                 the single writer could not be had in time
    │   └── ForkRefused                 a witness store refused a second root for one size
    ├── RequestTimedOut                 an HTTP request over the server's time limit (504)
    ├── AnchorError                     a public anchor cannot be written or checked (exit 2)
    │   ├── ChainUnreachable            the RPC endpoint does not answer as an Ethereum node
    │   ├── AnchorKeyError              the Ethereum key file is missing, malformed or exposed
    │   └── NotAnchorContract           the address holds no RadledgerAnchor contract
    └── OrthancError                    Orthanc answered, but not as the follower expects
        ├── OrthancUnreachable          the Orthanc server does not answer
        └── OrthancAuthError            Orthanc refused the credentials

The web UI subclasses three of them for its pages (LoginRequired, CrossSiteRequest in
web/session.py; NotAUid in web/pages_studies.py). Verification errors keep their evidence in
attributes (``index``, ``block``, ``expected``, ``computed``) so callers can report it without
parsing messages.
"""

from __future__ import annotations

EvidenceValue = bytes | int | str | None


def _show(value: EvidenceValue) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class RadledgerError(Exception):
    """Base of every error radledger raises deliberately."""

    exit_code = 2
    hint = ""

    def diagnostics(self) -> str:
        """The message plus what the user can do about it."""
        text = str(self)
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class InputError(RadledgerError):
    """Bad input from a user or a peer."""


class CanonicalJSONError(InputError):
    """JSON that RFC 8785 (JCS) cannot canonicalize, or bytes that are not in canonical form."""


class EntryError(InputError):
    """An entry envelope or body that is malformed."""


class NoteError(InputError):
    """A C2SP signed note or checkpoint whose text is malformed."""


class KeyFormatError(InputError):
    """A key, skey or vkey string that cannot be parsed."""


class LedgerHomeError(InputError):
    """The ledger home is missing or incomplete."""

    hint = "create one with `radledger init DIR` or pass --home / RADLEDGER_HOME"


class DicomError(InputError):
    """A file that is not DICOM, or DICOM that radledger refuses to read (malformed, unsafe)."""


class VerificationError(RadledgerError):
    """Something does not verify. Carries the evidence."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        *,
        index: int | None = None,
        block: int | None = None,
        expected: EvidenceValue = None,
        computed: EvidenceValue = None,
    ) -> None:
        self.what = what
        self.index = index
        self.block = block
        self.expected = expected
        self.computed = computed
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"entry {self.index}")
        if self.block is not None:
            where.append(f"block {self.block}")
        text = (", ".join(where) + ": " if where else "") + self.what
        if self.expected is not None or self.computed is not None:
            text += f" (expected {_show(self.expected)}, computed {_show(self.computed)})"
        return text


class ProofError(VerificationError):
    """An inclusion or consistency proof is rejected."""


class RootMismatch(ProofError):
    """The proof computes another root than the one it was checked against."""


class ProofShapeError(ProofError):
    """Sizes, index or proof length impossible for what the proof claims."""


class SignatureError(VerificationError):
    """A signature, public key or signer that is not acceptable."""


class TamperError(VerificationError):
    """Stored data disagrees with itself or with its signatures."""


class RollbackError(VerificationError):
    """The ledger is behind, or forked from, a checkpoint held by a client."""


class StorageError(RadledgerError):
    """The store cannot be used safely."""


class UnrecognisedDatabase(StorageError):
    """Not a radledger database, or a format version this code does not know."""


class UnsafeStorage(StorageError):
    """A journal mode or filesystem that cannot keep radledger's durability promises."""


class StorageCorrupt(StorageError):
    """The store is damaged; writes are refused until it is repaired or restored."""

    hint = "run `radledger verify` to find the last good entry; restore from a backup"


class StorageFull(StorageError):
    """No space left on the device; nothing partial was written."""

    hint = "free disk space and retry; the ledger is unchanged"


class StorageBusy(StorageError):
    """The single writer could not be acquired in time."""

    hint = "another process holds the writer for a long time; retry later"


class AnchorError(RadledgerError):
    """A public anchor cannot be written or checked: a transaction refused or failed."""


class ChainUnreachable(AnchorError):
    """The RPC endpoint does not answer, or not as an Ethereum JSON-RPC node."""

    hint = "check --rpc (for example http://127.0.0.1:8545) and that the node is running"


class AnchorKeyError(AnchorError):
    """The Ethereum signing key file is missing, malformed, or readable by others."""

    hint = ("the key file holds one private key as 64 hex digits (0x optional), mode 0600; "
            "`radledger anchor key` creates or imports one")


class NotAnchorContract(AnchorError):
    """The contract address holds no code, or other code than RadledgerAnchor's."""

    hint = "deploy one with `radledger anchor deploy` and pass its address as --contract"


class OrthancError(RadledgerError):
    """Orthanc answered, but not as the follower expects (an HTTP error, not JSON)."""


class OrthancUnreachable(OrthancError):
    """The Orthanc server does not answer: down, wrong address or port, timeout, TLS."""

    hint = "check --url (for example http://127.0.0.1:8042) and that Orthanc is running"


class OrthancAuthError(OrthancError):
    """Orthanc refused the credentials."""

    hint = ("check --user, and --password or RADLEDGER_ORTHANC_PASSWORD; the user needs "
            "read access to /changes, /studies, /series and /instances")


# -- raised by the services and the HTTP shell ---------------------------------------------


class NotFound(InputError):
    """The entry, tile or proof asked for does not exist (yet)."""


class NotRegistered(InputError):
    """Nothing in the ledger is about what was asked for."""


class TokenRejected(InputError):
    """A bearer token that is missing, unknown or revoked (HTTP 401)."""


class PermissionDenied(InputError):
    """A valid token whose role does not grant what was asked (HTTP 403)."""


class ReleaseRefused(InputError):
    """Some members may not be released as asked; ``members`` says which and why."""

    def __init__(self, message: str, members: dict[int, str]) -> None:
        super().__init__(message)
        self.members = members


class ReleaseExists(InputError):
    """A release of this name and version is in the ledger already; ``index`` is its entry.
    Versions are never replaced: give a new one."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class NothingToRelease(InputError):
    """Every member was left out (``exclude_unconsented``): a release needs at least one."""


class EntryTooLargeForBundle(InputError):
    """An entry over 65,535 bytes cannot be written in a tlog-tiles entry bundle."""


class BodyTooLarge(InputError):
    """A request body over the server's limit (HTTP 413)."""


class RequestTimedOut(RadledgerError):
    """A request still running after the server's time limit (HTTP 504); what it had
    started may have completed (api.timeouts)."""


class RateLimited(InputError):
    """Too many requests from one token; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MultipartError(InputError):
    """A request body that is not well-formed multipart/form-data (HTTP 400)."""


class ForkRefused(StorageError):
    """The database refused a second root for a size already cosigned (never expected: the
    witness checks first; this is the constraint that backs the check)."""


class BundleError(InputError):
    """A bundle that is not a well-formed radledger bundle."""


class AnchorReceiptError(InputError):
    """A receipt that is not a well-formed anchor receipt."""
