"""The ledger home: one folder holding the database, the keys and the config.

::

    radledger-home/
      radledger.toml        origin, ledger id, database (a file in the home, or a
                            postgresql:// URL: storage/postgres.py), default actor
      ledger.sqlite3        the ledger (entries, tree nodes, blocks, checkpoints)
      side.sqlite3          the side store: lookup index and ingested files' paths (local,
                            erasable, never exported; created on first use)
      keys/ledger.skey      the ledger's checkpoint signing key (C2SP skey form), mode 0600
      keys/actor.skey       the operator's own signing key, mode 0600
      keys/project.key      the project pseudonym key (32 random bytes, hex), mode 0600
      keys/anchor.key       the Ethereum key paying for public anchors (hex), mode 0600;
                            only if `radledger anchor key` made or imported it
      anchors.sqlite3       public anchor receipts (radledger/ledger/anchor.py; created on
                            first anchor)

Keys never enter the database; the project key in particular stays outside it so that
pseudonyms cannot be reversed by someone holding only the database.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from radledger.core.ed25519 import SigningKey
from radledger.core.note import Signer, Verifier, format_skey, parse_skey
from radledger.errors import InputError, KeyFormatError, LedgerHomeError
from radledger.storage.files import write_secret

CONFIG = "radledger.toml"
DATABASE = "ledger.sqlite3"
SIDE_DATABASE = "side.sqlite3"
HOME_ENV = "RADLEDGER_HOME"
DEFAULT_HOME = "radledger-home"
_ORIGIN = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True)
class LedgerHome:
    """A loaded ledger home."""

    path: Path
    origin: str
    ledger_id: str
    database: Path
    ledger_signer: Signer
    actor_signer: Signer
    project_key: bytes
    database_url: str | None = None  # a PostgreSQL ledger (then ``database`` is unused)

    @property
    def side_database(self) -> Path:
        """The side store's file, beside the ledger database."""
        return self.database.parent / SIDE_DATABASE

    @property
    def ledger_verifier(self) -> Verifier:
        """The pinned verifier of this ledger's checkpoints."""
        return Verifier(self.origin, self.ledger_signer.signing_key.public_key)


def resolve_home(option: str | None) -> Path:
    """--home, else $RADLEDGER_HOME, else ./radledger-home."""
    return Path(option or os.environ.get(HOME_ENV) or DEFAULT_HOME)


def is_database_url(text: str) -> bool:
    """Whether a config's ``database`` (or ``--database``) names a PostgreSQL database rather
    than a file in the home."""
    return text.startswith(("postgresql://", "postgres://"))


def check_origin(origin: str) -> str:
    """An origin is printable ASCII without spaces or '+', at most 200 characters.

    It names the log in checkpoints and the ledger key in signed notes, so it may hold
    neither a newline nor a space nor a plus sign. Raises InputError.
    """
    if not _ORIGIN.match(origin) or "+" in origin:
        raise InputError(
            f"origin {origin!r:.80} must be 1-200 printable ASCII characters without spaces "
            "or '+' (for example radledger.example.org/study-42)"
        )
    return origin


def default_actor_name() -> str:
    """The operator's login name, made safe as a key name."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    cleaned = re.sub(r"[^A-Za-z0-9._@-]", "-", name)[:64]
    return cleaned or "operator"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def create_home(path: Path, origin: str | None, actor_name: str | None,
                database_url: str | None = None) -> LedgerHome:
    """Create the folder and keys (not the database or config). Refuses an existing ledger.

    ``database_url``: a ``postgresql://`` URL to keep the ledger in PostgreSQL instead of
    ``ledger.sqlite3`` in the home."""
    if (path / CONFIG).exists():
        raise LedgerHomeError(f"{path} already holds a ledger ({CONFIG} exists)")
    ledger_id = secrets.token_hex(8)
    origin = check_origin(origin or f"radledger.local/{ledger_id}")
    actor_name = actor_name or default_actor_name()
    if not re.match(r"^[^\s+]{1,200}$", actor_name):
        raise InputError(f"actor name {actor_name!r:.80} must have no spaces or '+'")
    keys = path / "keys"
    if keys.exists() or (path / DATABASE).exists():
        raise LedgerHomeError(f"{path} holds an incomplete ledger (keys or database without "
                              f"{CONFIG}); move it away and run init again")
    keys.mkdir(parents=True, mode=0o700)
    ledger_signer = Signer(origin, SigningKey.generate())
    actor_signer = Signer(actor_name, SigningKey.generate())
    project_key = secrets.token_bytes(32)
    for file, signer in (("ledger.skey", ledger_signer), ("actor.skey", actor_signer)):
        write_secret(keys / file, format_skey(signer.name, signer.signing_key) + "\n")
    write_secret(keys / "project.key", project_key.hex() + "\n")
    return LedgerHome(path, origin, ledger_id, path / DATABASE, ledger_signer, actor_signer,
                      project_key, database_url)


def write_config(home: LedgerHome) -> None:
    """Write radledger.toml last, atomically: its presence marks a complete ledger home."""
    path, actor_name = home.path, home.actor_signer.name
    origin, ledger_id = home.origin, home.ledger_id
    config = (
        "# radledger ledger home; the keys live in keys/, never in the database\n"
        f"format = 1\norigin = {_toml_string(origin)}\nledger_id = {_toml_string(ledger_id)}\n"
        f"database = {_toml_string(home.database_url or DATABASE)}\n"
        f"actor = {_toml_string(actor_name)}\n"
    )
    tmp = path / (CONFIG + ".tmp")
    tmp.write_text(config)
    os.replace(tmp, path / CONFIG)


def load_home(path: Path) -> LedgerHome:
    """Load a ledger home. Raises LedgerHomeError naming what is missing or malformed."""
    config_path = path / CONFIG
    if not config_path.is_file():
        raise LedgerHomeError(f"no ledger at {path} ({CONFIG} not found)")
    try:
        config = tomllib.loads(config_path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LedgerHomeError(f"{config_path} is not valid TOML: {exc}") from None
    for field in ("origin", "ledger_id", "database"):
        if not isinstance(config.get(field), str):
            raise LedgerHomeError(f"{config_path} lacks the string setting {field!r}")
    try:
        ledger_signer = parse_skey(_read(path / "keys" / "ledger.skey"))
        actor_signer = parse_skey(_read(path / "keys" / "actor.skey"))
        project_key = bytes.fromhex(_read(path / "keys" / "project.key"))
    except (KeyFormatError, ValueError) as exc:
        raise LedgerHomeError(f"a key file in {path / 'keys'} is malformed: {exc}") from None
    if ledger_signer.name != config["origin"]:
        raise LedgerHomeError(
            f"keys/ledger.skey is for {ledger_signer.name!r}, not origin {config['origin']!r}"
        )
    if is_database_url(config["database"]):
        return LedgerHome(path, config["origin"], config["ledger_id"], path / DATABASE,
                          ledger_signer, actor_signer, project_key, config["database"])
    database = Path(config["database"])
    return LedgerHome(path, config["origin"], config["ledger_id"],
                      database if database.is_absolute() else path / database,
                      ledger_signer, actor_signer, project_key)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise LedgerHomeError(f"cannot read {path}: {exc.strerror}") from None
