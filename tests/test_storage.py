"""RELIABILITY 3 and 5, and the storage edges around them: what the SQLite store refuses to
open, the filesystems it refuses to live on, the durability settings it runs with, and what a
damaged database file turns into (a typed error or verify problems, never a traceback).

Every CLI check runs the real console script in a subprocess: a Python traceback would reach
the user there and nowhere else.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PosixPath

import pytest

from radledger.cli.main import run
from radledger.errors import (
    LedgerHomeError,
    RadledgerError,
    StorageError,
    UnrecognisedDatabase,
    UnsafeStorage,
)
from radledger.ledger.home import LedgerHome, load_home
from radledger.ledger.service import Draft
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger
from radledger.storage import mounts
from radledger.storage.mounts import NETWORK_FILESYSTEMS, filesystem_type
from radledger.storage.sqlite import SQLiteStore

RADLEDGER = Path(sys.executable).parent / "radledger"
CORRUPTION_ENTRIES = 2000


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RADLEDGER), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def drafts(count: int, start: int = 0) -> list[Draft]:
    return [Draft("x-lab.storage-test", {"n": n, "note": f"sample {n:06d}"})
            for n in range(start, start + count)]


@pytest.fixture()
def made(tmp_path: Path) -> LedgerHome:
    home, ledger = init_ledger(tmp_path / "home", origin="example.org/lab", actor_name="alice")
    ledger.append_drafts(drafts(20), home.actor_signer)
    ledger.store.close()
    return home


def assert_error(result: subprocess.CompletedProcess[str], *fragments: str,
                 one_line: bool = True) -> None:
    """Exit 2, ``error: ...`` naming ``fragments``, no traceback; with ``one_line`` nothing
    else on stderr (otherwise only indented ``hint:`` lines may follow)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    first, *rest = result.stderr.splitlines() or [""]
    assert first.startswith("error: "), result.stderr
    assert not rest if one_line else all(r.startswith("  hint: ") for r in rest), rest
    for fragment in fragments:
        assert fragment in first, (fragment, result.stderr)


# -- what is not a radledger database ------------------------------------------------------
def _foreign_sqlite(path: Path) -> None:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients (name) VALUES ('not a ledger')")
    conn.commit()
    conn.close()


def _text_file(path: Path) -> None:
    path.write_text("entries,leaf_hash\n0,ab12\n" * 200)


def _random_bytes(path: Path) -> None:
    path.write_bytes(bytes((i * 131 + 7) % 256 for i in range(8192)))


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _format_changed(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'format'")
    conn.commit()
    conn.close()


def _format_row_missing(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'format'")
    conn.commit()
    conn.close()


def _application_id_changed(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()


@pytest.mark.parametrize(("make", "says"), [
    pytest.param(_foreign_sqlite, "application_id 0x0", id="foreign-sqlite-database"),
    pytest.param(_empty_file, "an empty file", id="empty-file"),
    pytest.param(_format_changed, "format '2'", id="meta-format-changed"),
    pytest.param(_format_row_missing, "format None", id="meta-format-missing"),
    pytest.param(_application_id_changed, "application_id 0x4d2", id="application-id-changed"),
    pytest.param(_text_file, "not an SQLite database", id="text-file"),
    pytest.param(_random_bytes, "not an SQLite database", id="random-bytes"),
])
def test_a_file_that_is_not_a_radledger_database_is_refused(
        made: LedgerHome, make: Callable[[Path], None], says: str) -> None:
    make(made.database)
    with pytest.raises(StorageError) as caught:
        SQLiteStore.open(made.database)
    assert isinstance(caught.value, UnrecognisedDatabase), repr(caught.value)
    assert says in str(caught.value)
    assert_error(cli("log", "--home", str(made.path)), "error: ", says)


def test_refusing_a_foreign_file_leaves_it_untouched(tmp_path: Path) -> None:
    foreign, empty = tmp_path / "clinic.db", tmp_path / "empty.db"
    _foreign_sqlite(foreign)
    _empty_file(empty)
    before = {p: p.read_bytes() for p in (foreign, empty)}
    for path in (foreign, empty):
        with pytest.raises(UnrecognisedDatabase):
            SQLiteStore.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinic.db", "empty.db"]
    assert {p: p.read_bytes() for p in (foreign, empty)} == before


def test_a_missing_database_file_is_named(made: LedgerHome) -> None:
    made.database.unlink()
    with pytest.raises(UnrecognisedDatabase, match="no ledger database at"):
        SQLiteStore.open(made.database)
    assert_error(cli("verify", "--home", str(made.path)), "no ledger database")


# -- filesystems ---------------------------------------------------------------------------
MOUNTINFO = "\n".join([
    "22 1 0:21 / /proc rw,relatime - proc proc rw",
    "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
    "30 27 0:40 / /srv/ledgers rw,relatime - nfs4 fs1:/export rw,vers=4.2",
    "31 30 0:41 / /srv/ledgers/local rw,relatime shared:7 master:2 - ext4 /dev/vdb rw",
    "32 27 0:42 / /mnt/lab\\040share rw,relatime - cifs //nas/lab rw",
    "33 27 0:43 / /home/alice/remote rw,nosuid - fuse.sshfs alice@host: rw",
    "34 27 0:44 / /var/lib/docker/overlay2/merged rw - overlay overlay rw",
    "35 27 0:45 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw",
    "36 27 0:46 / /data rw - ext4 /dev/vdc rw",
    "37 27 0:47 / /data2 rw - nfs nas:/data2 rw",
    "38 27 0:48 / /data rw - nfs4 nas:/over rw",
    "garbage line without the separator",
    "",
])


@pytest.mark.parametrize(("path", "fstype"), [
    ("/srv/ledgers/study-42/ledger.sqlite3", "nfs4"),
    ("/srv/ledgers", "nfs4"),
    ("/srv/ledgers/local/study-42", "ext4"),  # the longest mount point wins
    ("/srv/ledgers/localx", "nfs4"),  # a prefix of a name is not a parent directory
    ("/mnt/lab share/ledger", "cifs"),  # \040 is a space in mountinfo
    ("/mnt/lab", "ext4"),
    ("/home/alice/remote/ledger", "fuse.sshfs"),
    ("/var/lib/docker/overlay2/merged/app", "overlay"),
    ("/tmp/pytest/home", "tmpfs"),
    ("/data2/x", "nfs"),
    ("/data/x", "nfs4"),  # mounted over /data later: the later mount is the one in use
    ("/", "ext4"),
])
def test_filesystem_type_reads_mountinfo(path: str, fstype: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == fstype


def test_filesystem_type_of_a_path_outside_every_mount_is_unknown() -> None:
    assert filesystem_type(Path("/srv"), "30 27 0:40 / /srv/ledgers rw - nfs4 a:/b rw\n") == (
        "unknown")


def fake_mountinfo(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Make mounts.py read ``text`` as /proc/self/mountinfo (and only that file)."""

    class FakeProc(PosixPath):
        def read_text(self, *args: object, **kwargs: object) -> str:  # type: ignore[override]
            if str(self) == "/proc/self/mountinfo":
                return text
            return super().read_text(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mounts, "Path", FakeProc)


def _mounted_as(fstype: str, where: Path) -> str:
    return f"27 1 254:0 / / rw - ext4 /dev/vda rw\n40 27 0:50 / {where} rw - {fstype} x:/y rw\n"


@pytest.mark.parametrize("fstype", ["nfs4", "cifs", "fuse.sshfs"])
def test_a_network_filesystem_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         fstype: str) -> None:
    assert fstype in NETWORK_FILESYSTEMS
    fake_mountinfo(monkeypatch, _mounted_as(fstype, tmp_path.resolve()))
    with pytest.raises(UnsafeStorage, match=f"on a {fstype} filesystem"):
        mounts.refuse_network_filesystem(tmp_path / "home")
    with pytest.raises(UnsafeStorage, match=f"on a {fstype} filesystem"):
        SQLiteStore.create(tmp_path / "ledger.sqlite3", {})
    assert not (tmp_path / "ledger.sqlite3").exists()


@pytest.mark.parametrize("fstype", ["ext4", "overlay", "tmpfs", "xfs", "btrfs"])
def test_a_local_filesystem_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        fstype: str) -> None:
    fake_mountinfo(monkeypatch, _mounted_as(fstype, tmp_path.resolve()))
    mounts.refuse_network_filesystem(tmp_path)
    SQLiteStore.create(tmp_path / "ledger.sqlite3", {}).close()


def test_opening_a_ledger_that_moved_to_nfs_is_refused_by_the_cli(
        made: LedgerHome, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake_mountinfo(monkeypatch, _mounted_as("nfs4", made.path.resolve()))
    with pytest.raises(UnsafeStorage):
        open_ledger(made.path)
    monkeypatch.setattr(sys, "argv", ["radledger", "append", "--kind", "x-lab.a", "--body",
                                      "{}", "--home", str(made.path)])
    with pytest.raises(SystemExit) as exited:
        run()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith("error: ") and "nfs4" in err, err
    fake_mountinfo(monkeypatch, _mounted_as("ext4", made.path.resolve()))
    _, ledger = open_ledger(made.path)
    assert ledger.store.entry_count() == 22  # nothing was appended while refused
    ledger.store.close()


# -- durability settings -------------------------------------------------------------------
def test_wal_and_synchronous_full_are_in_force(made: LedgerHome) -> None:
    _, ledger = open_ledger(made.path)
    conn = ledger.store._conn  # noqa: SLF001 - the settings live on the store's connection
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        ledger.append_drafts(drafts(1, 100), made.actor_signer)
        assert made.database.with_name(made.database.name + "-wal").exists()
    finally:
        ledger.store.close()
    # WAL is a property of the file: a plain connection sees it too
    plain = sqlite3.connect(made.database)
    assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plain.close()


def test_a_fresh_store_is_in_wal_with_synchronous_full(tmp_path: Path) -> None:
    store = SQLiteStore.create(tmp_path / "ledger.sqlite3", {"origin": "example.org/x"})
    try:
        conn = store._conn  # noqa: SLF001
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x52444C47
        assert store.meta()["format"] == "1"
    finally:
        store.close()


# -- damaged database files ----------------------------------------------------------------
def _btree_pages(data: bytes, root: int) -> tuple[list[int], list[int]]:
    """(interior pages, leaf pages) of the SQLite B-tree rooted at page ``root``."""
    page_size = int.from_bytes(data[16:18], "big")
    interior, leaves, todo = [], [], [root]
    while todo:
        page = todo.pop()
        base = (page - 1) * page_size
        head = base + (100 if page == 1 else 0)
        if data[head] in (0x0A, 0x0D):  # leaf index / leaf table page
            leaves.append(page)
            continue
        interior.append(page)
        cells = int.from_bytes(data[head + 3:head + 5], "big")
        todo.append(int.from_bytes(data[head + 8:head + 12], "big"))  # right-most child
        for i in range(cells):
            cell = base + int.from_bytes(data[head + 12 + 2 * i:head + 14 + 2 * i], "big")
            todo.append(int.from_bytes(data[cell:cell + 4], "big"))
    return sorted(interior), sorted(leaves)


class Damage:
    """Edits of a closed, checkpointed database file, addressed by what a page holds."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path)
        self.roots = dict(conn.execute("SELECT name, rootpage FROM sqlite_master "
                                       "WHERE rootpage > 0").fetchall())
        conn.close()
        self.path = path
        self.data = bytearray(path.read_bytes())
        self.page_size = int.from_bytes(self.data[16:18], "big")

    def leaf(self, name: str, last: bool = False) -> int:
        """The middle (or the last, right-most) leaf page of table or index ``name``."""
        leaves = _btree_pages(bytes(self.data), self.roots[name])[1]
        return leaves[-1] if last else leaves[len(leaves) // 2]

    def overwrite(self, page: int, offset: int, new: bytes) -> None:
        start = (page - 1) * self.page_size + offset
        self.data[start:start + len(new)] = new

    def null_first_columns(self, page: int) -> None:
        """Rewrite the record header of the page's first cell: its columns read as NULL."""
        base = (page - 1) * self.page_size
        cell = base + int.from_bytes(self.data[base + 8:base + 10], "big")
        for _ in range(2):  # skip the payload-length and rowid varints
            while self.data[cell] & 0x80:
                cell += 1
            cell += 1
        self.data[cell + 1:cell + 5] = bytes(4)

    def save(self) -> None:
        self.path.write_bytes(bytes(self.data))


def _entries_page_header(d: Damage) -> None:
    d.overwrite(d.leaf("entries"), 0, b"\xff" * 8)


def _entries_record_header(d: Damage) -> None:
    d.null_first_columns(d.leaf("entries"))


def _blocks_page_header(d: Damage) -> None:
    d.overwrite(d.leaf("blocks"), 0, b"\xff" * 8)


def _checkpoints_page_header(d: Damage) -> None:
    d.overwrite(d.leaf("checkpoints"), 0, b"\xff" * 8)


def _nodes_cell_content(d: Damage) -> None:
    d.overwrite(d.leaf("nodes"), 100, bytes(64))


def _entries_cell_content(d: Damage) -> None:
    d.overwrite(d.leaf("entries"), 3000, b"\x5a" * 16)


def _meta_page_header(d: Damage) -> None:
    d.overwrite(d.roots["meta"], 0, b"\xff" * 8)


def _schema_page(d: Damage) -> None:
    d.overwrite(1, 100, b"\xff" * 40)


def _leaf_hash_index_page(d: Damage) -> None:
    d.overwrite(d.leaf("sqlite_autoindex_entries_1"), 0, b"\xff" * 8)


def _middle_of_the_file(d: Damage) -> None:
    middle = len(d.data) // 2
    d.data[middle:middle + 512] = b"\xff" * 512


def _truncated_to_half(d: Damage) -> None:
    del d.data[len(d.data) // 2:]


def _truncated_mid_page(d: Damage) -> None:
    del d.data[len(d.data) // 2 + 1234:]


def _truncated_to_the_header(d: Damage) -> None:
    del d.data[1000:]



DAMAGES = [
    pytest.param(_entries_page_header, id="entries-leaf-page-header"),
    pytest.param(_blocks_page_header, id="blocks-page-header"),
    pytest.param(_checkpoints_page_header, id="checkpoints-page-header"),
    pytest.param(_entries_record_header, id="entries-record-header-null"),
    pytest.param(_leaf_hash_index_page, id="leaf-hash-index-page"),
    pytest.param(_entries_cell_content, id="entries-cell-content"),
    pytest.param(_nodes_cell_content, id="nodes-cell-content"),
    pytest.param(_meta_page_header, id="meta-page-header"),
    pytest.param(_schema_page, id="schema-page"),
    pytest.param(_middle_of_the_file, id="512-bytes-mid-file"),
    pytest.param(_truncated_to_half, id="truncated-to-half"),
    pytest.param(_truncated_mid_page, id="truncated-mid-page"),
    pytest.param(_truncated_to_the_header, id="truncated-to-1000-bytes"),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> LedgerHome:
    """A ledger of a few thousand entries, closed, its WAL checkpointed into the file."""
    path = tmp_path_factory.mktemp("pristine") / "home"
    home, ledger = init_ledger(path, origin="example.org/lab", actor_name="alice")
    for start in range(0, CORRUPTION_ENTRIES, 500):
        ledger.append_drafts(drafts(500, start), home.actor_signer)
    ledger.store.close()
    conn = sqlite3.connect(home.database)
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    conn.close()
    return home


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_database_is_a_typed_error_or_a_verify_failure(
        pristine: LedgerHome, tmp_path: Path, damage: Callable[[Damage], None]) -> None:
    shutil.copytree(pristine.path, tmp_path / "home")
    home = load_home(tmp_path / "home")
    edit = Damage(home.database)
    damage(edit)
    edit.save()
    # in process: StorageError (typed) or a report with problems; nothing else
    try:
        _, ledger = open_ledger(home.path)
        try:
            report = verify_ledger(ledger.store, home.ledger_verifier, workers=1)
        finally:
            ledger.store.close()
        outcome = "problems" if not report.ok else "ok"
    except StorageError as exc:
        outcome = type(exc).__name__
    except RadledgerError as exc:
        pytest.fail(f"damaged storage surfaced as {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - exactly what must not happen
        raise AssertionError(f"unhandled {type(exc).__name__}: {exc}") from exc
    assert outcome != "ok", "verify passed over a damaged database"
    # the CLI: exit 1 (verify failed) or 2 (typed storage error), one clear first line
    result = cli("verify", "--workers", "1", "--home", str(home.path))
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (1, 2), (result.returncode, result.stderr[-2000:])
    assert result.stderr.startswith(("error: ", "FAIL ")), result.stderr[-2000:]
    if outcome == "StorageCorrupt":
        assert result.returncode == 2 and "storage corrupt" in result.stderr


def _last_entries_leaf(d: Damage) -> None:
    d.overwrite(d.leaf("entries", last=True), 0, b"\xff" * 8)


@pytest.mark.slow
@pytest.mark.parametrize("damage", [
    pytest.param(_last_entries_leaf, id="page-the-append-reads"),
    pytest.param(_entries_page_header, id="page-the-append-skips", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError, reason=(
            "GAP (RELIABILITY 3, writes refused): nothing checks integrity before a write, "
            "so an append that never reads the damaged page succeeds and signs a new "
            "checkpoint over a corrupt database"))),
])
def test_writes_are_refused_on_a_damaged_database(
        pristine: LedgerHome, tmp_path: Path, damage: Callable[[Damage], None]) -> None:
    shutil.copytree(pristine.path, tmp_path / "home")
    home = load_home(tmp_path / "home")
    edit = Damage(home.database)
    damage(edit)
    edit.save()
    before = home.database.read_bytes()
    appended = subprocess.run([str(RADLEDGER), "append", "-", "--home", str(home.path)],
                              input='{"kind":"x-lab.a","body":{}}\n', capture_output=True,
                              text=True, timeout=60, check=False)
    assert "Traceback" not in appended.stderr, appended.stderr
    assert (appended.returncode, appended.stdout) == (2, ""), appended
    assert appended.stderr.startswith("error: storage corrupt"), appended.stderr
    assert home.database.read_bytes() == before


# -- init ----------------------------------------------------------------------------------
def test_init_over_an_existing_ledger_changes_nothing(made: LedgerHome) -> None:
    files = {p: p.read_bytes() for p in made.path.rglob("*") if p.is_file()}
    with pytest.raises(LedgerHomeError, match="already holds a ledger"):
        init_ledger(made.path, origin="example.org/other")
    assert_error(cli("init", str(made.path)), "already holds a ledger", one_line=False)
    assert {p: p.read_bytes() for p in made.path.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("leftover", ["keys", "ledger.sqlite3"])
def test_init_refuses_a_half_made_home(tmp_path: Path, leftover: str) -> None:
    """What a crash during init leaves (keys or database, no config) is not overwritten."""
    home = tmp_path / "home"
    home.mkdir()
    if leftover == "keys":
        (home / "keys").mkdir()
        (home / "keys" / "ledger.skey").write_text("PRIVATE+KEY+alice+00\n")
    else:
        (home / leftover).write_bytes(b"SQLite format 3\x00")
    files = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    with pytest.raises(LedgerHomeError, match="incomplete ledger"):
        init_ledger(home)
    assert_error(cli("init", str(home)), "incomplete ledger", one_line=False)
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == files


def test_a_file_open_in_this_process_is_never_read_outside_sqlite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing any descriptor of a file drops this process's POSIX locks on it, so while one
    of our connections has the ledger open, opening it again must not read its header with a
    plain open() (https://www.sqlite.org/howtocorrupt.html, 2.2)."""
    from radledger.storage import sqlite as module  # noqa: PLC0415

    path = tmp_path / "ledger.sqlite3"
    first = module.SQLiteStore.create(path, {"origin": "x"})
    reads: list[Path] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self == path:
            reads.append(self)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy)
    second = module.SQLiteStore.open(path)
    assert reads == []  # the created connection is still open
    first.close()
    second.close()
    module.SQLiteStore.open(path).close()
    assert reads == [path]  # nobody had it open: the header is checked again
