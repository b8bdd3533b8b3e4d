"""The CLI: every command, its --json shape (pinned: other tools build on it), exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from radledger.cli.main import app, run
from radledger.core import merkle
from radledger.core.checkpoint import open_checkpoint
from radledger.core.note import parse_vkey

from helpers import raw_db


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RADLEDGER_HOME", str(tmp_path / "home"))

    def invoke(*args: str, stdin: bytes = b"") -> Result:
        monkeypatch.setattr(sys, "argv", ["radledger", *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = 0
        try:
            run()
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture()
def ledger(cli):  # type: ignore[no-untyped-def]
    assert cli("init", "--origin", "example.org/lab", "--actor", "alice").code == 0
    return cli


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"kind": "x-lab.qc-check", "body": {"n": i}}).encode() + b"\n"
        for i in range(start, start + n)
    )


def test_init_prints_the_verifier_key(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("init", "--origin", "example.org/lab", "--json")
    assert result.code == 0
    out = json.loads(result.out)
    assert out["origin"] == "example.org/lab" and out["tree_size"] == 2
    assert parse_vkey(out["vkey"]).name == "example.org/lab"
    again = cli("init", "--origin", "example.org/lab")
    assert again.code == 2 and again.err.startswith("error: ") and "already holds" in again.err


def test_init_rejects_an_origin_with_a_space(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("init", "--origin", "bad origin")
    assert result.code == 2 and "origin" in result.err and "Traceback" not in result.err


def test_append_stream_acknowledges_each_entry(ledger) -> None:  # type: ignore[no-untyped-def]
    result = ledger("append", "-", stdin=lines(50))
    assert result.code == 0, result.err
    acks = [line.split() for line in result.out.splitlines()]
    assert [int(i) for i, _ in acks] == list(range(2, 52))
    shown = json.loads(ledger("show", "30", "--json").out)
    assert shown["leaf_hash"] == acks[28][1]
    assert shown["entry"]["body"] == {"n": 28}


@pytest.mark.parametrize(("bad", "message"), [
    (b'{"kind": "x-a", "body": {"v": NaN}}', "NaN"),
    (b'{"kind": "no.such-kind", "body": {}}', "unknown kind"),
    (b'{"kind": "x-a", "body": {}, "refs": [4]}', "ref 4 is not an existing entry"),
    (b'{"kind": "x-a", "body": {}, "subject": {"Bad Key": "x"}}', "subject key"),
])
def test_append_stream_keeps_good_lines_before_a_bad_one(ledger, bad: bytes, message: str  # type: ignore[no-untyped-def]
                                                         ) -> None:
    stream = lines(3) + bad + b"\n" + lines(2, 100)
    result = ledger("append", "-", stdin=stream)
    assert result.code == 2
    assert len(result.out.splitlines()) == 3
    assert "stdin line 4" in result.err and message in result.err, result.err
    assert json.loads(ledger("verify", "--json").out)["tree_size"] == 5


@pytest.mark.parametrize(("line", "message"), [
    (b'{"kind":"x-a","body":{},"kind":"x-b"}', "duplicate"),
    (b'{"kind":"x-a","body":{"n":9007199254740993}}', "2**53"),
    (b'{"kind":"x-a","body":{"s":"\\ud800"}}', "surrogate"),
    (b'{"kind":"nope","body":{}}', "unknown kind"),
    (b'{"kind":"x-a","body":[]}', "'body' must be a JSON object"),
    (b'{"kind":"x-a","body":{},"extra":1}', "unexpected field"),
    (b"not json", "stdin line 1"),
])
def test_append_rejects_bad_lines_with_a_typed_error(ledger, line: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    result = ledger("append", "-", stdin=line + b"\n")
    assert result.code == 2
    assert result.err.startswith("error: ") and message in result.err, result.err
    assert "Traceback" not in result.err


def test_append_one_entry_from_options(ledger) -> None:  # type: ignore[no-untyped-def]
    result = ledger("append", "--kind", "x-lab.note", "--body", '{"ok": true}',
                    "--subject", '{"study": "abc"}', "--ref", "1", "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["index"] == 2 and len(out["leaf_hash"]) == 64
    entry = json.loads(ledger("show", "2", "--json").out)["entry"]
    assert entry["subject"] == {"study": "abc"} and entry["refs"] == [1]
    bad = ledger("append", "--kind", "x-a", "--body", "{")
    assert bad.code == 2 and "--body is not valid JSON" in bad.err


def test_show_json_shape_is_pinned(ledger) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(ledger("show", "1", "--json").out)
    assert set(out) == {"index", "leaf_hash", "entry", "block"}
    assert out["index"] == 1 and out["block"] == 0
    assert set(out["entry"]) == {"v", "kind", "actor", "claimed_time", "subject", "body",
                                 "refs", "sig"}
    missing = ledger("show", "99")
    assert missing.code == 2 and "no entry 99" in missing.err


def test_log_lists_entries(ledger) -> None:  # type: ignore[no-untyped-def]
    ledger("append", "-", stdin=lines(5))
    text = ledger("log", "--start", "2", "--limit", "3").out.splitlines()
    assert len(text) == 3 and text[0].split()[:2] == ["2", "x-lab.qc-check"]
    objects = [json.loads(line) for line in ledger("log", "--json").out.splitlines()]
    assert [o["index"] for o in objects] == list(range(7))


def test_checkpoint_and_key_show_verify_together(ledger) -> None:  # type: ignore[no-untyped-def]
    ledger("append", "-", stdin=lines(7))
    note = ledger("checkpoint").out
    verifier = parse_vkey(ledger("key", "show").out.strip())
    cp = open_checkpoint(note, verifier, origin="example.org/lab")
    assert cp.tree_size == 9
    as_json = json.loads(ledger("checkpoint", "--json").out)
    assert as_json == {"origin": "example.org/lab", "tree_size": 9, "root": cp.root_hash.hex(),
                       "block": 1, "note": note}


def test_proof_json_shapes_verify(ledger) -> None:  # type: ignore[no-untyped-def]
    ledger("append", "-", stdin=lines(20))
    inc = json.loads(ledger("proof", "inclusion", "5", "--size", "13", "--json").out)
    assert set(inc) == {"index", "tree_size", "leaf_hash", "proof", "root"}
    merkle.verify_inclusion(bytes.fromhex(inc["leaf_hash"]), 5, 13,
                            [bytes.fromhex(h) for h in inc["proof"]], bytes.fromhex(inc["root"]))
    plain = ledger("proof", "inclusion", "5", "--size", "13").out.split()
    assert plain == inc["proof"]
    con = json.loads(ledger("proof", "consistency", "3", "22", "--json").out)
    assert set(con) == {"size1", "size2", "proof", "root1", "root2"}
    merkle.verify_consistency(3, 22, [bytes.fromhex(h) for h in con["proof"]],
                              bytes.fromhex(con["root1"]), bytes.fromhex(con["root2"]))
    too_big = ledger("proof", "inclusion", "5", "--size", "99")
    assert too_big.code == 2 and "outside the sealed tree" in too_big.err


def test_verify_json_shape_and_exit_code_on_tamper(ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ledger("append", "-", stdin=lines(10))
    ok = json.loads(ledger("verify", "--json").out)
    assert ok == {"ok": True, "tree_size": 12, "problems": []}
    conn = raw_db(tmp_path / "home" / "ledger.sqlite3")
    (data,) = conn.execute("SELECT data FROM entries WHERE idx = 6").fetchone()
    conn.execute("UPDATE entries SET data = ? WHERE idx = 6", (data.replace(b"4", b"5"),))
    bad = ledger("verify", "--json")
    assert bad.code == 1
    out = json.loads(bad.out)
    assert out["ok"] is False and out["problems"][0]["index"] == 6
    assert set(out["problems"][0]) == {"index", "what", "expected", "computed"}
    text = ledger("verify")
    assert text.code == 1 and "entry 6" in text.err


def test_verify_against_a_held_checkpoint(ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ledger("append", "-", stdin=lines(10))
    held = tmp_path / "held.checkpoint"
    held.write_text(ledger("checkpoint").out)
    ledger("append", "-", stdin=lines(5, 10))
    good = ledger("verify", "--against", str(held))
    assert good.code == 0 and "consistent with" in good.out
    held.write_text(ledger("checkpoint").out)  # now held at size 17
    conn = raw_db(tmp_path / "home" / "ledger.sqlite3")
    conn.execute("DELETE FROM checkpoints WHERE height >= 2")
    conn.execute("DELETE FROM blocks WHERE height >= 2")
    conn.execute("DELETE FROM entries WHERE idx >= 12")
    conn.execute("DELETE FROM nodes WHERE (idx + 1) << level > 12")
    assert ledger("verify").code == 0  # a consistent truncation is invisible from inside
    rolled = ledger("verify", "--against", str(held), "--json")
    assert rolled.code == 1
    problem = json.loads(rolled.out)["problems"][0]
    assert "rolled back" in problem["what"] and (problem["expected"], problem["computed"]) == (
        17, 12)


def test_missing_home_is_a_clear_error(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("log")
    assert result.code == 2 and "no ledger at" in result.err and "radledger init" in result.err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "radledger"
    home = str(tmp_path / "h")
    subprocess.run([exe, "init", home], check=True, capture_output=True)
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "verify" in done.stdout
    appended = subprocess.run([exe, "append", "-", "--home", home], input=lines(3),
                              capture_output=True, check=True)
    assert len(appended.stdout.splitlines()) == 3
    usage = subprocess.run([exe, "show"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2


def _command_paths() -> list[str]:
    def walk(command: Any, prefix: str) -> list[str]:
        if hasattr(command, "commands"):
            return [p for name, sub in sorted(command.commands.items())
                    for p in walk(sub, f"{prefix} {name}".strip())]
        return [prefix]

    return walk(typer.main.get_command(app), "")


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    paths = _command_paths()
    assert len(paths) >= 9
    missing = [p for p in paths if f"`radledger {p}" not in readme]
    assert not missing, f"commands missing from the README's command table: {missing}"


def test_key_add_sign_as_revoke_and_list(ledger) -> None:  # type: ignore[no-untyped-def]
    added = json.loads(ledger("key", "add", "bob", "--json").out)
    assert added["actor"].startswith("bob+") and added["index"] == 2
    assert parse_vkey(added["vkey"]).name == "bob"
    as_bob = ledger("append", "--as", "bob", "--kind", "x-lab.note", "--body", "{}", "--json")
    assert as_bob.code == 0, as_bob.err
    entry = json.loads(ledger("show", "3", "--json").out)["entry"]
    assert entry["actor"] == added["actor"]
    stream = ledger("append", "-", "--as", "bob", stdin=lines(2))
    assert stream.code == 0 and len(stream.out.splitlines()) == 2
    again = ledger("key", "add", "bob")
    assert again.code == 2 and "already exists" in again.err
    bad_name = ledger("key", "add", "../evil")
    assert bad_name.code == 2 and "key name" in bad_name.err
    revoked = ledger("key", "revoke", added["actor"], "--reason", "left the lab")
    assert revoked.code == 0 and "revoked" in revoked.out
    refused = ledger("append", "--as", "bob", "--kind", "x-lab.note", "--body", "{}")
    assert refused.code == 1 and "was revoked at entry 6" in refused.err
    listed = json.loads(ledger("key", "list", "--json").out)
    assert [(k["role"], k["registered_at"], k["revoked_at"]) for k in listed] == [
        ("ledger", 0, None), ("actor", 1, None), ("actor", 2, 6)]
    assert ledger("verify").code == 0
    unknown = ledger("append", "--as", "carol", "--kind", "x-a", "--body", "{}")
    assert unknown.code == 2 and "no key named 'carol'" in unknown.err
