"""The HTTP API through the real ASGI app (httpx.ASGITransport): tokens and roles, the one
error shape, appends recorded as access, and the C2SP tlog-tiles read path, from which a
monitor rebuilds the signed root without any other help."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from radledger.api import create_app
from radledger.cli.tokencmds import token_app
from radledger.core import merkle
from radledger.core.checkpoint import open_checkpoint
from radledger.core.tlog_tiles import (
    TILE_WIDTH,
    TileRef,
    format_tile_index,
    parse_tile_path,
    tile_path,
)
from radledger.errors import InputError, LedgerHomeError
from radledger.ledger.drafts import Draft
from radledger.ledger.home import LedgerHome
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.tokens import create_token, open_tokens, revoke_token

from helpers import qc

ORIGIN = "example.org/api"


class Api:
    """A synchronous client for an app, its lifespan running (as under uvicorn)."""

    def __init__(self, app: FastAPI) -> None:
        self._runner = asyncio.Runner()
        self._lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        self._runner.run(self._lifespan.__aenter__())
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://ledger.test")

    def request(self, method: str, url: str, token: str | None = None,
                **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self._runner.run(self._client.request(method, url, headers=headers, **kwargs))

    def get(self, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, token, **kwargs)

    def post(self, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, token, **kwargs)

    def post_many(self, url: str, token: str, bodies: list[Any]) -> list[httpx.Response]:
        """POST every body at once (each handled on its own worker thread)."""
        headers = {"Authorization": f"Bearer {token}"}

        async def all_at_once() -> list[httpx.Response]:
            return list(await asyncio.gather(*(
                self._client.post(url, headers=headers, json=body) for body in bodies)))

        return self._runner.run(all_at_once())

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.run(self._lifespan.__aexit__(None, None, None))
        self._runner.close()


@pytest.fixture
def home(tmp_path: Path) -> LedgerHome:
    created, ledger = init_ledger(tmp_path / "home", ORIGIN, "service")
    ledger.store.close()
    return created


@pytest.fixture
def tokens(home: LedgerHome) -> dict[str, str]:
    store = open_tokens(home)
    try:
        return {role: create_token(store, role, role) for role in
                ("admin", "writer", "reader", "phi-reader", "auditor", "reviewer")}
    finally:
        store.close()


@contextmanager
def _api(home: LedgerHome, **options: Any) -> Iterator[Api]:
    api = Api(create_app(home.path, **options))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def api(home: LedgerHome) -> Iterator[Api]:
    with _api(home) as running:
        yield running


@pytest.fixture
def private_api(home: LedgerHome) -> Iterator[Api]:
    with _api(home, public_log=False) as running:
        yield running


def _error(response: httpx.Response, status: int, code: str) -> str:
    """Assert the one error shape, exactly; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


DRAFT = {"kind": "x-lab.qc-check", "body": {"n": 1, "passed": True}}

# (method, path, role or None) for every route that needs a token
PROTECTED = [("GET", "/entries/0", "reader"), ("GET", "/proof/inclusion/0", "reader"),
             ("POST", "/entries", "writer")]


# -- the one error shape --------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "_role"), PROTECTED)
def test_missing_invalid_and_malformed_tokens_are_401_with_a_challenge(
        api: Api, tokens: dict[str, str], method: str, path: str, _role: str) -> None:
    for headers in ({}, {"Authorization": "Bearer rlt_not-a-token"},
                    {"Authorization": f"Basic {tokens['admin']}"}):
        response = api.request(method, path, headers=headers, json=DRAFT)
        _error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_a_role_without_the_permission_is_403(api: Api, tokens: dict[str, str], method: str,
                                              path: str, role: str) -> None:
    may_read = {"writer", "phi-reader", "auditor"}
    lacking = [r for r in tokens if r not in {"admin", role}
               and not (role == "reader" and r in may_read)]
    assert lacking
    for other in lacking:
        message = _error(api.request(method, path, tokens[other], json=DRAFT), 403,
                         "forbidden")
        assert other in message


def test_unknown_route_wrong_method_and_validation_are_in_the_shape(
        api: Api, tokens: dict[str, str]) -> None:
    _error(api.get("/no/such/route"), 404, "not_found")
    response = api.request("DELETE", "/checkpoint")
    _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]
    _error(api.get("/entries/-1", tokens["reader"]), 422, "invalid_request")
    _error(api.get("/entries/abc", tokens["reader"]), 422, "invalid_request")
    _error(api.get("/proof/inclusion/0?tree_size=0", tokens["reader"]), 422,
           "invalid_request")


def test_missing_entries_and_tiles_are_404(api: Api, tokens: dict[str, str]) -> None:
    _error(api.get("/entries/2", tokens["reader"]), 404, "not_found")
    _error(api.get("/proof/inclusion/99", tokens["reader"]), 404, "not_found")
    _error(api.get("/tile/0/000"), 404, "not_found")  # 2 entries: only .p/1 and .p/2
    _error(api.get("/tile/0/000.p/3"), 404, "not_found")
    _error(api.get("/tile/entries/001.p/1"), 404, "not_found")
    _error(api.get("/tile/1/000.p/1"), 404, "not_found")


@pytest.mark.parametrize("path", ["0/1", "0/0001", "0/x000/001", "00/000", "64/000",
                                  "0/000.p/0", "0/000.p/256", "0/000.p/07", "0/000.p",
                                  "entries", "x/000", "0/001/002"])
def test_non_canonical_tile_paths_are_400(api: Api, path: str) -> None:
    _error(api.get(f"/tile/{path}"), 400, "bad_request")


def test_bodies_over_the_limit_are_413_declared_or_streamed(home: LedgerHome,
                                                             tokens: dict[str, str]) -> None:
    with _api(home, max_body=4096) as api:
        big = json.dumps({"kind": "x-lab.big", "body": {"pad": "x" * 5000}}).encode()
        _error(api.post("/entries", tokens["writer"], content=big,
                        headers={"Content-Type": "application/json"}), 413, "body_too_large")

        async def chunks(data: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(data), 1000):
                yield data[start:start + 1000]

        response = api.post("/entries", tokens["writer"], content=chunks(big))
        _error(response, 413, "body_too_large")
        # the limit is checked before the token: nobody can make the server read 1 GiB
        _error(api.post("/entries", content=big), 413, "body_too_large")
        assert api.get("/entries/2", tokens["reader"]).status_code == 404  # nothing appended


def test_bad_json_is_400_and_bad_drafts_are_422(api: Api, tokens: dict[str, str]) -> None:
    writer = tokens["writer"]
    _error(api.post("/entries", writer, content=b"{not json"), 400, "invalid_json")
    _error(api.post("/entries", writer, content=b'{"kind": "x", "kind": "y"}'), 400,
           "invalid_json")
    _error(api.post("/entries", writer, json=[1]), 422, "invalid_entry")
    _error(api.post("/entries", writer, json={"kind": "x-lab.a"}), 422, "invalid_entry")
    _error(api.post("/entries", writer, json={**DRAFT, "extra": 1}), 422, "invalid_entry")
    _error(api.post("/entries", writer, json={**DRAFT, "refs": [5]}), 422, "invalid_entry")
    key = {"name": "x", "public_key": "A" * 43 + "=", "role": "actor"}
    message = _error(api.post("/entries", writer, json={"kind": "key.registered", "body": key}),
                     422, "invalid_entry")
    assert "radledger key" in message


# -- tokens ---------------------------------------------------------------------------------
def test_a_reader_cannot_append_and_nothing_is_written(api: Api,
                                                       tokens: dict[str, str]) -> None:
    _error(api.post("/entries", tokens["reader"], json=DRAFT), 403, "forbidden")
    _error(api.get("/entries/2", tokens["reader"]), 404, "not_found")


def test_a_revoked_token_is_refused(home: LedgerHome, api: Api,
                                    tokens: dict[str, str]) -> None:
    assert api.get("/entries/0", tokens["reader"]).status_code == 200
    store = open_tokens(home)
    try:
        revoke_token(store, "reader")
        with pytest.raises(InputError, match="no token named"):
            revoke_token(store, "reader")
        again = create_token(store, "reader", "reader")  # the name may be given out again
    finally:
        store.close()
    _error(api.get("/entries/0", tokens["reader"]), 401, "unauthorized")
    assert api.get("/entries/0", again).status_code == 200


def test_only_the_sha256_of_a_token_is_stored(home: LedgerHome,
                                              tokens: dict[str, str]) -> None:
    raw = b"".join(p.read_bytes() for p in home.path.glob("tokens.sqlite3*"))
    conn = sqlite3.connect(home.path / "tokens.sqlite3")
    try:
        digests = {row[0] for row in conn.execute("SELECT token_sha256 FROM tokens")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    for token in tokens.values():
        assert token.encode() not in raw
        assert hashlib.sha256(token.encode()).digest() in digests


def test_token_commands(home: LedgerHome) -> None:
    runner = CliRunner()
    at = ["--home", str(home.path)]
    made = runner.invoke(token_app, ["create", "--role", "writer", "--name", "pacs-bridge",
                                     *at, "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["token"].startswith("rlt_")
    listed = runner.invoke(token_app, ["list", *at, "--json"])
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "pacs-bridge" and row["role"] == "writer"
    assert row["revoked_at"] is None and row["created_at"].endswith("Z")
    assert runner.invoke(token_app, ["revoke", "pacs-bridge", *at]).exit_code == 0
    (row,) = json.loads(runner.invoke(token_app, ["list", *at, "--json"]).stdout)
    assert row["revoked_at"] is not None
    bad_role = runner.invoke(token_app, ["create", "--role", "root", "--name", "x", *at])
    assert isinstance(bad_role.exception, InputError)
    bad_name = runner.invoke(token_app, ["create", "--role", "reader", "--name", "a b", *at])
    assert isinstance(bad_name.exception, InputError)
    twice = [runner.invoke(token_app, ["create", "--role", "reader", "--name", "y", *at])
             for _ in range(2)]
    assert twice[0].exit_code == 0 and isinstance(twice[1].exception, InputError)


# -- appending ------------------------------------------------------------------------------
def test_appending_signs_seals_and_records_the_access(home: LedgerHome, api: Api,
                                                      tokens: dict[str, str]) -> None:
    response = api.post("/entries", tokens["writer"], json={
        **DRAFT, "subject": {"study": "ab" * 32}, "refs": [1]})
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["index"] == 2 and out["access_index"] == 3
    assert response.headers["location"] == "/entries/2"
    entry = api.get("/entries/2", tokens["reader"]).json()
    assert entry["leaf_hash"] == out["leaf_hash"]
    assert entry["entry"]["kind"] == "x-lab.qc-check"
    assert entry["entry"]["refs"] == [1]
    assert entry["entry"]["actor"].startswith("service+")
    access = api.get("/entries/3", tokens["auditor"]).json()["entry"]
    assert access["kind"] == "access.recorded"
    assert access["body"] == {"action": "append", "target": "entry/2", "via": "api",
                              "on_behalf_of": "writer"}
    proof = api.get("/proof/inclusion/2", tokens["reader"]).json()
    assert proof["tree_size"] == 4
    merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), 2, 4,
                            [bytes.fromhex(h) for h in proof["proof"]],
                            bytes.fromhex(proof["root"]))
    # an admin may append too; the ledger verifies as a whole afterwards
    assert api.post("/entries", tokens["admin"], json=DRAFT).status_code == 201
    _, ledger = open_ledger(home.path)
    try:
        assert ledger.store.entry_count() == 6
    finally:
        ledger.store.close()


def test_concurrent_appends_each_get_their_access_record_next(
        api: Api, tokens: dict[str, str]) -> None:
    bodies = [{"kind": "x-lab.qc-check", "body": {"n": n}} for n in range(24)]
    responses = api.post_many("/entries", tokens["writer"], bodies)
    assert [r.status_code for r in responses] == [201] * 24
    pairs = sorted((r.json()["index"], r.json()["access_index"]) for r in responses)
    assert pairs == [(i, i + 1) for i in range(2, 50, 2)]
    for index, access in pairs:
        record = api.get(f"/entries/{access}", tokens["reader"]).json()["entry"]
        assert record["body"]["target"] == f"entry/{index}"


# -- the read path --------------------------------------------------------------------------
def test_the_read_path_is_public_unless_configured(private_api: Api,
                                                   tokens: dict[str, str]) -> None:
    for path in ("/checkpoint", "/tile/0/000.p/2", "/tile/entries/000.p/2"):
        _error(private_api.get(path), 401, "unauthorized")
        _error(private_api.get(path, tokens["reviewer"]), 403, "forbidden")
        assert private_api.get(path, tokens["reader"]).status_code == 200


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over node hashes, by its literal definition (the test's oracle)."""
    if len(hashes) == 1:
        return hashes[0]
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(hashes[:split]), _mth(hashes[split:]))


class TileReader:
    """A monitor's view: the tiles a checkpoint of ``size`` requires, fetched over HTTP."""

    def __init__(self, api: Api, size: int) -> None:
        self.api, self.size, self.fetched = api, size, set[str]()

    def ref(self, level: int | None, index: int) -> TileRef:
        width = (self.size >> (8 * (level or 0))) - index * TILE_WIDTH
        return TileRef(level, index, None if width >= TILE_WIDTH else width)

    def get(self, ref: TileRef) -> bytes:
        path = tile_path(ref)
        assert parse_tile_path(path) == ref
        response = self.api.get(f"/tile/{path}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        cache = response.headers["cache-control"]
        assert ("immutable" in cache) == (ref.width is None)
        self.fetched.add(path)
        return response.content

    def hashes(self, level: int, index: int) -> list[bytes]:
        data = self.get(self.ref(level, index))
        assert len(data) == 32 * self.ref(level, index).count
        return [data[i:i + 32] for i in range(0, len(data), 32)]

    def node(self, tree_level: int, index: int) -> bytes:
        """The perfect subtree hash at (tree_level, index), from one tile at tile level
        tree_level // 8: the MTH of the 2**(tree_level % 8) hashes under it."""
        tile_level, height = divmod(tree_level, 8)
        first = index << height
        tile, offset = divmod(first, TILE_WIDTH)
        hashes = self.hashes(tile_level, tile)[offset:offset + (1 << height)]
        assert len(hashes) == 1 << height
        return _mth(hashes)

    def root(self) -> bytes:
        """The root of the tree of ``size``: its perfect subtrees, largest first, folded
        from the right."""
        subtrees, start = [], 0
        for level in reversed(range(self.size.bit_length())):
            if self.size >> level & 1:
                subtrees.append(self.node(level, start >> level))
                start += 1 << level
        root = subtrees[-1]
        for left in reversed(subtrees[:-1]):
            root = merkle.node_hash(left, root)
        return root


def test_a_monitor_rebuilds_the_signed_root_from_tiles_alone(home: LedgerHome) -> None:
    _, ledger = open_ledger(home.path)
    try:  # 2 genesis entries + 700 + 333 = 1035: 4 full level-0 tiles, one of width 11
        ledger.append_drafts([qc(n) for n in range(700)], home.actor_signer)
        ledger.append_drafts([qc(n) for n in range(700, 1033)], home.actor_signer)
    finally:
        ledger.store.close()
    with _api(home) as api:
        response = api.get("/checkpoint")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        checkpoint = open_checkpoint(response.text, home.ledger_verifier, origin=ORIGIN)
        size = checkpoint.tree_size
        assert size == 1035
        monitor = TileReader(api, size)
        assert monitor.root() == checkpoint.root_hash
        assert "1/000.p/4" in monitor.fetched and "0/004.p/11" in monitor.fetched

        # level 0 alone, through the core's RFC 6962 root (a second, independent oracle)
        leaves = [h for n in range(-(-size // TILE_WIDTH)) for h in monitor.hashes(0, n)]
        assert len(leaves) == size and merkle.root(leaves) == checkpoint.root_hash
        # each level-1 hash is the MTH of the full level-0 tile under it
        level1 = monitor.hashes(1, 0)
        assert level1 == [_mth(leaves[n * 256:(n + 1) * 256]) for n in range(4)]

        # entry bundles: uint16-prefixed entries that hash to the level-0 tiles' leaves
        entries: list[bytes] = []
        for n in range(-(-size // TILE_WIDTH)):
            bundle = monitor.get(monitor.ref(None, n))
            while bundle:
                length = int.from_bytes(bundle[:2], "big")
                entries.append(bundle[2:2 + length])
                bundle = bundle[2 + length:]
        assert [merkle.leaf_hash(e) for e in entries] == leaves
        assert json.loads(entries[1000])["body"]["n"] == 998

        # a partial tile is a prefix of what comes later; beyond the checkpoint is 404
        assert api.get("/tile/0/004.p/5").content == monitor.get(TileRef(0, 4, 11))[:160]
        _error(api.get("/tile/0/004.p/12"), 404, "not_found")
        _error(api.get("/tile/0/004"), 404, "not_found")


def test_openapi_and_docs_describe_the_routes(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    assert {"/checkpoint", "/tile/{path}", "/entries", "/entries/{index}",
            "/proof/inclusion/{index}"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert spec["paths"]["/entries"]["post"]["requestBody"]["content"]["application/json"]
    assert api.get("/docs").status_code == 200


def test_create_app_refuses_a_missing_home(tmp_path: Path) -> None:
    with pytest.raises(LedgerHomeError):
        create_app(tmp_path / "nowhere")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_app_under_uvicorn(home: LedgerHome, tokens: dict[str, str]) -> None:
    port = _free_port()
    code = "import typer; from radledger.cli.servecmds import serve; typer.run(serve)"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--home", str(home.path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{url}/checkpoint", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1].decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.status_code == 200 and response.text.startswith(ORIGIN + "\n")
        entry = httpx.get(f"{url}/entries/1", headers={
            "Authorization": f"Bearer {tokens['reader']}"}, timeout=5)
        assert entry.json()["entry"]["kind"] == "key.registered"
    finally:
        server.terminate()
        server.communicate(timeout=20)


@pytest.mark.parametrize(("index", "path"), [(0, "000"), (7, "007"), (999, "999"),
                                             (1000, "x001/000"), (1234067, "x001/x234/067")])
def test_tile_index_encoding_follows_tlog_tiles(index: int, path: str) -> None:
    assert format_tile_index(index) == path
    assert parse_tile_path(f"3/{path}.p/9") == TileRef(3, index, 9)
    assert parse_tile_path(f"entries/{path}") == TileRef(None, index, None)


def test_an_entry_too_large_for_a_bundle_is_named(home: LedgerHome) -> None:
    _, ledger = open_ledger(home.path)
    try:
        ledger.append_drafts([Draft("x-lab.big", {"pad": "x" * 70_000})], home.actor_signer)
    finally:
        ledger.store.close()
    with _api(home) as api:
        assert api.get("/tile/0/000.p/3").status_code == 200
        assert api.get("/tile/entries/000.p/2").status_code == 200
        message = _error(api.get("/tile/entries/000.p/3"), 501, "entry_too_large_for_bundle")
        assert "entry 2" in message and "/entries/2" in message


def test_a_flooding_token_gets_429_and_the_others_and_the_writer_carry_on(
        home: LedgerHome, tokens: dict[str, str]) -> None:
    from radledger.api.ratelimit import TokenBuckets  # noqa: PLC0415

    now = [1000.0]
    limits = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    with _api(home, limits=limits) as api:
        statuses = [api.get("/entries/0", tokens["reader"]).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        flooded = api.get("/entries/0", tokens["reader"])
        _error(flooded, 429, "rate_limited")
        assert flooded.headers["retry-after"] == "1"
        appended = api.post("/entries", tokens["writer"], json=DRAFT)  # another token
        assert appended.status_code == 201, appended.text
        now[0] += 1.0  # two more requests a second
        assert api.get("/entries/0", tokens["reader"]).status_code == 200
