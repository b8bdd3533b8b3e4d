"""Following a real Orthanc (issue 7): each instance registered once with source orthanc and
no Orthanc ID in clear, stable studies recorded, resumption from the cursor (also after a
crash between the registrations and the cursor), instances altered inside Orthanc's storage
found by --verify, and typed errors for a wrong password or a server that is down.

Each test starts its own Orthanc (the Debian package's ``Orthanc`` binary, not its service)
on free ports with a temporary storage folder, authentication on and ``StableAge`` 1 s.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from pydicom import dcmread

from radledger.core.pseudonym import pseudonym
from radledger.dicom.synthetic import Acquisition, canary_patient, fake_patients, write_study
from radledger.errors import OrthancError, OrthancUnreachable
from radledger.ledger.orthanc import STABLE_STUDY, Follower
from radledger.ledger.orthanc_http import HttpOrthanc
from radledger.ledger.setup import Workspace, init_ledger, open_ledger, open_workspace
from radledger.ledger.verify import verify_ledger
from radledger.storage.orthanc_state import STATE_FILE, OrthancState

from bad_dicom import TEST_FILES

USER, PASSWORD = "follower", "pw-Zq8-never-printed"
CANARY = "CANARY7ORTHANC"
# pydicom test files with distinct SOP Instance UIDs: uncompressed, RLE, JPEG 2000, RGB RLE
# with two frames; and a JPEG in the JPEG 2000 file's study that Orthanc stores but radledger
# rejects (its pixel data cannot be decoded)
PYDICOM_FILES = ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm")
UNDECODABLE = "JPEG-lossy.dcm"
# the CLI as `radledger` will run it once `orthanc` is mounted in cli/main.py
CLI = ("import sys\nfrom radledger.cli import main\n"
       "from radledger.cli.orthanccmds import orthanc_app\n"
       "if not any(g.name == 'orthanc' for g in main.app.registered_groups):\n"
       "    main.app.add_typer(orthanc_app, name='orthanc')\n"
       "main.run()\n")


def _orthanc_binary() -> str:
    found = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc; `make system-deps`)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    """A running Orthanc with its storage folder, and a few REST calls for the tests."""

    url: str
    storage: Path
    process: subprocess.Popen[bytes]

    def call(self, method: str, path: str, data: bytes | None = None) -> object:
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def upload(self, files: list[Path]) -> list[str]:
        """POST each file; returns the Orthanc instance IDs."""
        ids = []
        for path in files:
            answer = self.call("POST", "/instances", path.read_bytes())
            assert isinstance(answer, dict) and answer["Status"] == "Success", answer
            ids.append(str(answer["ID"]))
        return ids

    def wait_stable(self, studies: int, timeout: float = 20.0) -> None:
        """Wait until Orthanc has logged ``studies`` StableStudy changes in all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            changes = self.call("GET", "/changes?since=0&limit=10000")
            assert isinstance(changes, dict)
            if sum(c["ChangeType"] == "StableStudy" for c in changes["Changes"]) >= studies:
                return
            time.sleep(0.2)
        raise AssertionError(f"Orthanc did not declare {studies} studies stable in time")

    def stored_file(self, instance_id: str) -> Path:
        """Where Orthanc keeps an instance's file: StorageDirectory/xx/yy/<uuid>."""
        info = self.call("GET", f"/instances/{instance_id}/attachments/dicom/info")
        assert isinstance(info, dict)
        uuid = str(info["Uuid"])
        return self.storage / uuid[:2] / uuid[2:4] / uuid


def start_orthanc(folder: Path) -> Orthanc:
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = {
        "Name": "radledger-test", "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"), "HttpPort": port,
        "DicomPort": _free_port(), "DicomServerEnabled": False,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "StableAge": 1,
        # no read cache: --verify must see what is on disk now, not what was read before
        "MaximumStorageCacheSize": 0, "Plugins": [],
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([_orthanc_binary(), str(folder / "orthanc.json")],
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = Orthanc(f"http://127.0.0.1:{port}", folder / "storage", process)
    deadline = time.monotonic() + 20
    while True:
        try:
            server.call("GET", "/system")
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("Orthanc did not start:\n"
                                     + (folder / "orthanc.log").read_text()[-2000:]) from None
            time.sleep(0.05)


@pytest.fixture()
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = start_orthanc(tmp_path / "orthanc")
    yield server
    server.process.kill()  # its storage is thrown away; a clean shutdown takes ~2 s
    server.process.wait()


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    _, ledger = init_ledger(tmp_path / "home", "example.org/orthanc", "alice")
    # closed now, not whenever the garbage collector gets to it: see entries()
    ledger.store.close()
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom warns about some of its own test files; that is not a test failure."""


def study(tmp_path: Path, name: str, patient_seed: int, slices: int = 3) -> list[Path]:
    return write_study(tmp_path / name, next(fake_patients(1, seed=patient_seed)),
                       Acquisition(slices=slices, rows=32, columns=32, seed=patient_seed))


def follow(home: Path, server: Orthanc | str, *args: str, password: str = PASSWORD
           ) -> subprocess.CompletedProcess[str]:
    url = server if isinstance(server, str) else server.url
    env = {**os.environ, "RADLEDGER_ORTHANC_PASSWORD": password}
    return subprocess.run([sys.executable, "-c", CLI, "orthanc", "follow", "--url", url,
                           "--user", USER, "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def entries(home: Path, kind: str) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    """The entries of one kind. The connection is closed before returning: this process
    holds no connection while a follower process writes (an open one, left to the garbage
    collector, has been seen to make a later open here fail as "malformed")."""
    _, ledger = open_ledger(home)
    store = ledger.store
    try:
        return [(i, json.loads(d)) for i, k, _, d in store.entries(0, store.entry_count())
                if k == kind]
    finally:
        store.close()


def size_of(home: Path) -> int:
    _, ledger = open_ledger(home)
    try:
        return ledger.store.entry_count()
    finally:
        ledger.store.close()


def workspace(home: Path, url: str) -> tuple[Workspace, Follower]:
    """The follower service in this process, as the CLI builds it."""
    loaded, ledger = open_ledger(home)
    space = open_workspace(loaded, ledger)
    state = OrthancState.open_or_create(home / STATE_FILE, loaded.ledger_id)
    return space, Follower(space, loaded.actor_signer, HttpOrthanc(url, USER, PASSWORD), state)


def test_follow_once_registers_each_instance_once_and_records_stable_studies(
        orthanc: Orthanc, home: Path, tmp_path: Path) -> None:
    pydicom_ids = orthanc.upload([TEST_FILES / name for name in PYDICOM_FILES])
    (undecodable,) = orthanc.upload([TEST_FILES / UNDECODABLE])
    canary_files = write_study(tmp_path / "canary", canary_patient(CANARY),
                               Acquisition(slices=4, rows=32, columns=32))
    canary_ids = orthanc.upload(canary_files)
    studies = {str(dcmread(TEST_FILES / n).StudyInstanceUID) for n in PYDICOM_FILES}
    orthanc.wait_stable(len(studies) + 1)

    done = follow(home, orthanc, "--once", "--json")
    assert done.returncode == 3, done.stderr  # the run finished; one instance was rejected
    events = [json.loads(line) for line in done.stdout.splitlines()]
    (summary,) = [e for e in events if e["event"] == "pass"]
    assert summary["instances"] == {"registered": len(PYDICOM_FILES) + 4, "new-version": 0,
                                    "already-registered": 0, "rejected": 1, "gone": 0}
    assert summary["stable_studies"]["recorded"] == len(studies) + 1
    (rejected,) = [e for e in events if e["event"] == "instance" and e["status"] == "rejected"]
    assert rejected["path"] == f"{orthanc.url}/instances/{undecodable}"
    assert rejected["error"].startswith(f"DicomError: {orthanc.url}/instances/{undecodable}: "
                                        "pixel data cannot be decoded")

    loaded, ledger = open_ledger(home)
    ledger.store.close()
    registered = entries(home, "instance.registered")
    assert len(registered) == len(PYDICOM_FILES) + 4
    for orthanc_id in pydicom_ids + canary_ids:
        locator = f"{orthanc.url}/instances/{orthanc_id}"
        key = pseudonym(loaded.project_key, "FilePath", locator)
        (entry,) = [e for _, e in registered if e["body"]["source"]["path_key"] == key]
        assert entry["body"]["source"] == {"type": "orthanc", "orthanc": orthanc.url,
                                           "path_key": key}

    # one stable-study entry per study, naming its instances' registrations
    stable = entries(home, STABLE_STUDY)
    assert len(stable) == len(studies) + 1
    canary_study = pseudonym(loaded.project_key, "StudyInstanceUID",
                             str(dcmread(canary_files[0]).StudyInstanceUID))
    (canary_event,) = [e for _, e in stable if e["subject"]["study"] == canary_study]
    assert canary_event["subject"]["patient"] == pseudonym(
        loaded.project_key, "PatientID", f"{CANARY}-ID")
    assert canary_event["body"] == {"orthanc": orthanc.url, "instances": 4, "registered": 4}
    assert canary_event["refs"] == sorted(i for i, e in registered
                                          if e["subject"]["study"] == canary_study)

    # no PHI and no Orthanc ID in the ledger database, nor the password anywhere
    ledger_bytes = b"".join(p.read_bytes() for p in home.glob("ledger.sqlite3*"))
    assert ledger_bytes, "the ledger database was not found"
    for secret in (CANARY, *pydicom_ids, *canary_ids, *(i.split("-")[0] for i in canary_ids),
                   *studies):
        assert secret.encode() not in ledger_bytes, secret
    everything = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert PASSWORD.encode() not in everything
    assert CANARY.encode() not in everything
    assert PASSWORD not in done.stdout + done.stderr
    _, ledger = open_ledger(home)
    assert verify_ledger(ledger.store, loaded.ledger_verifier, workers=1).ok
    ledger.store.close()

    human = follow(home, orthanc, "--once")  # nothing pending: the rejection is not repeated
    assert human.returncode == 0, human.stderr
    assert "changes" in human.stdout and "0 registered" in human.stdout


def test_a_restart_resumes_from_the_cursor_and_registers_nothing_twice(
        orthanc: Orthanc, home: Path, tmp_path: Path) -> None:
    orthanc.upload(study(tmp_path, "first", 1))
    orthanc.wait_stable(1)
    first = follow(home, orthanc, "--once")
    assert first.returncode == 0, first.stderr
    assert "3 registered" in first.stdout and "1 recorded" in first.stdout
    size = size_of(home)

    again = follow(home, orthanc, "--once", "--json")  # nothing pending: nothing read again
    (summary,) = [json.loads(line) for line in again.stdout.splitlines()]
    assert summary["since"] == summary["last"] > 0
    assert set(summary["instances"].values()) == {0}
    assert size_of(home) == size

    orthanc.upload(study(tmp_path, "second", 2, slices=2))
    orthanc.wait_stable(2)
    third = follow(home, orthanc, "--once", "--json")
    (summary,) = [json.loads(line) for line in third.stdout.splitlines()
                  if '"pass"' in line]
    assert summary["instances"] == {"registered": 2, "new-version": 0,
                                    "already-registered": 0, "rejected": 0, "gone": 0}
    assert summary["stable_studies"] == {"recorded": 1, "already-recorded": 0, "gone": 0}
    hashes = [e["body"]["file_sha256"] for _, e in entries(home, "instance.registered")]
    assert len(hashes) == len(set(hashes)) == 5


def test_a_crash_before_the_cursor_is_written_replays_the_page_idempotently(
        orthanc: Orthanc, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orthanc.upload(study(tmp_path, "s", 3))
    orthanc.wait_stable(1)

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt("killed after the page was registered")

    space, follower = workspace(home, orthanc.url)
    with monkeypatch.context() as patch:
        patch.setattr(OrthancState, "set_cursor", crash)
        with pytest.raises(KeyboardInterrupt):
            follower.follow_once()
    size = space.ledger.store.entry_count()
    assert len(entries(home, "instance.registered")) == 3  # durable before the cursor
    assert follower.state.cursor(orthanc.url) == 0

    replay = workspace(home, orthanc.url)[1].follow_once()
    assert replay.counts["already-registered"] == 3 and replay.counts["registered"] == 0
    assert replay.studies == {"recorded": 0, "already-recorded": 1, "gone": 0}
    assert space.ledger.store.entry_count() == size
    # losing the state file altogether is the same: everything replayed, nothing appended
    (home / STATE_FILE).unlink()
    for suffix in ("-wal", "-shm"):
        (home / (STATE_FILE + suffix)).unlink(missing_ok=True)
    again = workspace(home, orthanc.url)[1].follow_once()
    assert again.counts["already-registered"] == 3 and again.studies["already-recorded"] == 1
    assert space.ledger.store.entry_count() == size


def test_verify_reports_instances_altered_or_deleted_inside_orthanc(
        orthanc: Orthanc, home: Path, tmp_path: Path) -> None:
    ids = orthanc.upload(study(tmp_path, "s", 4, slices=3))
    orthanc.wait_stable(1)
    first = follow(home, orthanc, "--once", "--verify")
    assert first.returncode == 0, first.stderr
    assert "verify: 3 instances: 3 ok, 0 modified, 0 missing" in first.stdout

    stored = orthanc.stored_file(ids[1])
    data = bytearray(stored.read_bytes())
    data[-3] ^= 0xFF  # a pixel, altered behind Orthanc's back
    stored.write_bytes(bytes(data))
    orthanc.call("DELETE", f"/instances/{ids[2]}")

    done = follow(home, orthanc, "--once", "--verify", "--json")
    assert done.returncode == 1, done.stderr
    (report,) = [json.loads(line) for line in done.stdout.splitlines() if '"verify"' in line]
    assert report["ok"] is False
    assert report["counts"] == {"ok": 1, "modified": 1, "missing": 1}
    problems = {p["path"]: p for p in report["instances"]}
    modified = problems[f"{orthanc.url}/instances/{ids[1]}"]
    assert (modified["status"], modified["changed"]) == ("modified", ["pixels"])
    assert problems[f"{orthanc.url}/instances/{ids[2]}"]["status"] == "missing"

    human = follow(home, orthanc, "--once", "--verify")
    assert human.returncode == 1
    assert f"MODIFIED {orthanc.url}/instances/{ids[1]} (pixels changed)" in human.stderr
    assert "Traceback" not in human.stderr


def test_a_wrong_password_is_a_typed_error_that_never_shows_it(
        orthanc: Orthanc, home: Path) -> None:
    wrong = "wrong-Pw-4411-secret"
    done = follow(home, orthanc, "--once", password=wrong)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: Orthanc at {orthanc.url} refused the credentials "
                                  f"of user '{USER}' (HTTP 401)")
    assert "hint:" in done.stderr and "Traceback" not in done.stderr
    assert wrong not in done.stdout + done.stderr
    with_url = subprocess.run(
        [sys.executable, "-c", CLI, "orthanc", "follow", "--once", "--home", str(home),
         "--url", f"http://{USER}:{wrong}@127.0.0.1:1"], capture_output=True, text=True,
        check=False)
    assert with_url.returncode == 2 and "carries credentials" in with_url.stderr
    assert wrong not in with_url.stdout + with_url.stderr
    helped = subprocess.run([sys.executable, "-c", CLI, "orthanc", "follow", "--help"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "RADLEDGER_ORTHANC_PASSWORD": wrong})
    assert "RADLEDGER_ORTHANC_PASSWORD" in helped.stdout and wrong not in helped.stdout


def test_orthanc_down_is_a_typed_error(home: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    done = follow(home, url, "--once")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot reach Orthanc at {url}: ")
    assert "hint: check --url" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(OrthancUnreachable):
        HttpOrthanc(url, USER, PASSWORD, timeout=2).get_json("/changes?last")


def test_the_service_follows_new_uploads_until_sigterm(
        orthanc: Orthanc, home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "RADLEDGER_ORTHANC_PASSWORD": PASSWORD}
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "orthanc", "follow", "--url", orthanc.url, "--user",
         USER, "--home", str(home), "--interval", "0.2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        orthanc.upload(study(tmp_path, "live", 5, slices=2))
        deadline = time.monotonic() + 20
        while len(entries(home, STABLE_STUDY)) < 1:
            assert time.monotonic() < deadline, "the follower did not pick up the upload"
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in err and PASSWORD not in out + err
    events = [json.loads(line) for line in out.splitlines()]
    assert sum(e["event"] == "instance" and e["status"] == "registered" for e in events) == 2
    assert any(e["event"] == "pass" and e["stable_studies"]["recorded"] for e in events)
    assert len(entries(home, "instance.registered")) == 2


class FakeOrthanc:
    """A stand-in server holding a change log and files (the ``OrthancClient`` seam)."""

    url = "http://fake.invalid:8042"

    def __init__(self, changes: list[dict[str, object]], files: dict[str, bytes]) -> None:
        self.changes, self.files = changes, files

    def get_json(self, path: str) -> object:
        if path == "/changes?last":
            return {"Changes": self.changes[-1:], "Done": True,
                    "Last": self.changes[-1]["Seq"] if self.changes else 0}
        if path.startswith("/changes?since="):
            since = int(path.removeprefix("/changes?since=").partition("&")[0])
            page = [c for c in self.changes if int(str(c["Seq"])) > since]
            return {"Changes": page, "Done": True,
                    "Last": page[-1]["Seq"] if page else since}
        return None

    def download(self, path: str, into: IO[bytes]) -> bool:
        data = self.files.get(path.split("/")[2])
        if data is None:
            return False
        into.write(data)
        return True


def test_a_new_orthanc_database_is_followed_from_its_start(home: Path, tmp_path: Path) -> None:
    (one, two) = study(tmp_path, "fake", 6, slices=2)
    ids = ["0000000a-0000000b-0000000c-0000000d-0000000e",
           "1000000a-1000000b-1000000c-1000000d-1000000e"]
    loaded, ledger = open_ledger(home)
    space = open_workspace(loaded, ledger)
    state = OrthancState.open_or_create(home / STATE_FILE, loaded.ledger_id)
    fake = FakeOrthanc([{"Seq": 1, "ChangeType": "NewInstance", "ID": ids[0]}],
                       {ids[0]: one.read_bytes()})
    follower = Follower(space, loaded.actor_signer, fake, state)  # type: ignore[arg-type]
    assert follower.follow_once().counts["registered"] == 1
    state.set_cursor(fake.url, 50)  # as if the old database had logged 50 changes
    fake.changes.append({"Seq": 2, "ChangeType": "NewInstance", "ID": ids[1]})
    fake.files[ids[1]] = two.read_bytes()
    report = follower.follow_once()
    assert report.restarted and report.last == 2 and state.cursor(fake.url) == 2
    assert report.counts["registered"] == 1 and report.counts["already-registered"] == 1

    fake.changes.append({"Seq": 3, "ChangeType": "NewInstance", "ID": "../../etc/passwd"})
    with pytest.raises(OrthancError, match="malformed resource ID"):
        follower.follow_once()
    assert state.cursor(fake.url) == 2  # nothing skipped
    fake.changes[-1]["ID"] = "2000000a-2000000b-2000000c-2000000d-2000000e"  # deleted since
    assert follower.follow_once().counts["gone"] == 1
    ledger.store.close()
