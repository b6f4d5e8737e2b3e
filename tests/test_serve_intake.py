"""The service's front door: keys checked and sizes bounded before any body is read, clean 4xx
for what the parsers cannot take, list uploads spooled in the data directory, protected
metrics and API documents served without a CDN, and a bounded number of decodes at once.

Requests that must not be read are driven straight through the ASGI interface with a body
that is produced lazily, so the test counts exactly how many bytes the server took."""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.service import Role
from hashwatch.web.app import create_app
from hashwatch.web.settings import ServeSettings
from tests.media import scene
from tests.serve_helpers import make_key, settings

MiB = 1024 * 1024


class Sent:
    """What a lazily produced body cost the server: the bytes it asked for."""

    def __init__(self) -> None:
        self.taken = 0


def call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
    sent: Sent,
) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI interface; ``chunks`` are handed over only when asked."""
    status = 0
    out_headers: dict[str, str] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent.taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return status, out_headers, bytes(body)


def endless(chunk: bytes, total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hashwatch]:
    root = tmp_path_factory.mktemp("intake")
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{root / 'hw.sqlite3'}", data_dir=root / "data")
    )
    hw.lists.create("agency")
    yield hw
    hw.close()


@pytest.fixture(scope="module")
def keys(shared: Hashwatch) -> dict[Role, dict[str, str]]:
    return {role: make_key(shared, role, f"intake-{role.value}") for role in Role}


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spot = tmp_path / "system-tmp"
    spot.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spot))
    return spot


def _app(hw: Hashwatch, **changes: Any) -> FastAPI:
    return create_app(hw, settings(background=False, **changes))


def _multipart(payload: bytes, boundary: str = "hwboundary") -> tuple[bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.txt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def test_a_caller_without_the_right_key_is_refused_before_the_body_is_read(
    shared: Hashwatch, keys: dict[Role, dict[str, str]], system_tmp: Path
) -> None:
    app = _app(shared)
    spool = shared.settings.data_dir / "spool"
    bad = {"Authorization": "Bearer hw_not_a_key"}
    json_ct = {"Content-Type": "application/json"}
    multipart = {"Content-Type": "multipart/form-data; boundary=hwboundary"}
    cases = [
        ("POST", "/v1/lists", {**json_ct}, 401),
        ("POST", "/v1/lists", {**json_ct, **bad}, 401),
        ("POST", "/v1/lists", {**json_ct, **keys[Role.MATCHER]}, 403),
        ("POST", "/v1/lists/agency/import", {**multipart}, 401),
        ("POST", "/v1/lists/agency/import", {**multipart, **bad}, 401),
        ("POST", "/v1/lists/agency/import", {**multipart, **keys[Role.MATCHER]}, 403),
        ("POST", "/v1/keys", {**json_ct, **keys[Role.CURATOR]}, 403),
        ("POST", "/v1/match", {**multipart, **bad}, 401),
        ("POST", "/v1/hash", {**multipart}, 401),
    ]
    for method, path, headers, expected in cases:
        sent = Sent()
        status, _h, body = call(app, method, path, headers, endless(b"[" * MiB, 50 * MiB), sent)
        assert (status, sent.taken) == (expected, 0), (path, headers, body)
    assert list(spool.iterdir()) == [] and list(system_tmp.iterdir()) == []


def test_bodies_are_capped_while_they_stream(
    shared: Hashwatch, keys: dict[Role, dict[str, str]], system_tmp: Path
) -> None:
    app = _app(shared, max_json_bytes=MiB, max_list_upload_bytes=2 * MiB, max_upload_bytes=MiB)
    chunk = 64 * 1024
    spool = shared.settings.data_dir / "spool"
    curator = keys[Role.CURATOR]
    # No Content-Length: the body is counted as it arrives and stopped at the cap.
    json_body = endless(b" " * chunk, 40 * MiB)
    sent = Sent()
    status, _h, _b = call(
        app, "POST", "/v1/lists", {**curator, "Content-Type": "application/json"}, json_body, sent
    )
    assert status == 413 and sent.taken <= MiB + chunk
    for path, cap in (("/v1/lists/agency/import", 2 * MiB), ("/v1/hash", MiB)):
        head, _ = _multipart(b"")
        head = head[: head.index(b"\r\n\r\n") + 4]
        sent = Sent()
        body = iter([head, *endless(b"0" * chunk, 40 * MiB)])
        status, _h, reply = call(
            app,
            "POST",
            path,
            {**curator, "Content-Type": "multipart/form-data; boundary=hwboundary"},
            body,
            sent,
        )
        assert status == 413, reply
        assert sent.taken <= cap + 64 * 1024 + 2 * chunk
    # A declared length over the cap is refused before a byte is read.
    sent = Sent()
    status, _h, _b = call(
        app,
        "POST",
        "/v1/lists/agency/entries",
        {**curator, "Content-Type": "application/json", "Content-Length": str(5 * MiB)},
        endless(b" " * chunk, 5 * MiB),
        sent,
    )
    assert (status, sent.taken) == (413, 0)
    assert list(spool.iterdir()) == [] and list(system_tmp.iterdir()) == []


def test_the_match_call_takes_its_full_number_of_signals(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    signals = [{"type": "sha1_base32", "value": "A" * 32} for _ in range(1000)]
    with TestClient(_app(shared, max_json_bytes=16 * 1024)) as c:
        r = c.post("/v1/match", headers=keys[Role.MATCHER], json={"signals": signals})
        assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("nested", b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("invalid UTF-8", b'{"name": "caf\xe9\xff"}'),
        ("5,000-digit integer", b'{"name": "x", "pdq_threshold": ' + b"9" * 5000 + b"}"),
    ],
)
def test_json_the_parser_cannot_take_is_a_422(
    shared: Hashwatch, keys: dict[Role, dict[str, str]], what: str, body: bytes
) -> None:
    with TestClient(_app(shared), raise_server_exceptions=False) as c:
        for path in ("/v1/lists", "/v1/match", "/v1/lists/agency/entries", "/v1/keys"):
            r = c.post(
                path,
                content=body,
                headers={**keys[Role.ADMIN], "Content-Type": "application/json"},
            )
            assert r.status_code == 422, (what, path, r.text[:200])
            assert len(r.content) < 300


def test_a_422_does_not_echo_large_inputs(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    with TestClient(_app(shared)) as c:
        r = c.post(
            "/v1/lists",
            headers=keys[Role.CURATOR],
            json={"name": "echo", "description": "A" * 50_000, "pdq_threshold": 10**300},
        )
        assert r.status_code == 422
        assert len(r.content) < 1000 and "AAAAAAAAAAAAAAAAAAAA" not in r.text
        locs = [e["loc"] for e in r.json()["detail"]]
        assert ["body", "description"] in locs and ["body", "pdq_threshold"] in locs


def test_a_multipart_boundary_over_256_characters_is_a_422(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    body, boundary = _multipart(b"0" * 32, "b" * 300)
    with TestClient(_app(shared), raise_server_exceptions=False) as c:
        for path in ("/v1/lists/agency/import", "/v1/match", "/v1/hash"):
            r = c.post(
                path,
                content=body,
                headers={
                    **keys[Role.CURATOR],
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
            )
            assert r.status_code == 422, (path, r.text)


def test_list_names_the_store_refuses_are_4xx_over_http(
    hw: Hashwatch,
) -> None:
    curator = make_key(hw, Role.CURATOR)
    body, boundary = _multipart(b"0" * 32 + b"\n")
    ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with TestClient(_app(hw), raise_server_exceptions=False) as c:
        for name in ("a\r\nb", "a\x00b", "n" * 300):
            r = c.post(
                f"/v1/lists/{quote(name)}/import", content=body, headers={**curator, **ctype}
            )
            assert 400 <= r.status_code < 500, (name[:5], r.status_code, r.text)
            r = c.post("/v1/lists", headers=curator, json={"name": name})
            assert 400 <= r.status_code < 500, (name[:5], r.status_code, r.text)


def test_list_uploads_are_spooled_in_the_data_directory_and_left_overs_removed(
    tmp_path: Path, system_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    hw.lists.create("agency")
    curator = make_key(hw, Role.CURATOR)
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    # What a killed server left: a file of a process that is gone, and one of unknown origin.
    gone = spool / "list-999999999-0123456789abcdef.upload"
    gone.write_bytes(b"0" * 32)
    stray = spool / "leftover.tmp"
    stray.write_bytes(b"x")
    app = _app(hw)
    assert not gone.exists() and not stray.exists()
    assert os.stat(spool).st_mode & 0o777 == 0o700
    seen: list[tuple[Path, int]] = []
    original = hw.lists.import_file

    def spy(name: str, path: str, **kw: Any) -> Any:
        seen.append((Path(path), os.stat(path).st_mode & 0o777))
        return original(name, path, **kw)

    monkeypatch.setattr(hw.lists, "import_file", spy)
    md5s = b"".join(f"{n:032x}\n".encode() for n in range(1, 2001))
    body, boundary = _multipart(md5s)
    with TestClient(app) as c:
        r = c.post(
            "/v1/lists/agency/import?format=text&hash_type=md5",
            content=body,
            headers={**curator, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 2000 and r.json()["file"] == "l.txt"
    assert seen and seen[0][0].parent == spool and seen[0][1] == 0o600
    assert list(spool.iterdir()) == [] and list(system_tmp.iterdir()) == []
    hw.close()


LOCAL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


def test_api_documents_need_a_key_unless_public_and_load_nothing_from_outside(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    with TestClient(_app(shared)) as c:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers=keys[Role.MATCHER]).status_code == 200
    with TestClient(_app(shared, public_docs=True)) as c:
        assert c.get("/openapi.json").json()["info"]["title"] == "hashwatch"
        for page in ("/docs", "/redoc"):
            html = c.get(page).text
            urls = [a or b for a, b in LOCAL.findall(html)]
            assert urls and all(u.startswith("/") for u in urls), urls
            assert "http://" not in html and "https://" not in html
            for url in urls:
                assert c.get(url).status_code == 200, url


def test_metrics_need_an_admin_key_unless_public(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    with TestClient(_app(shared)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=keys[Role.CURATOR]).status_code == 403
        assert "hashwatch_index_hashes" in c.get("/metrics", headers=keys[Role.ADMIN]).text
    with TestClient(_app(shared, metrics_public=True)) as c:
        assert c.get("/metrics").status_code == 200


def _picture() -> bytes:
    buf = io.BytesIO()
    scene(5, (320, 240)).save(buf, "PNG")
    return buf.getvalue()


def test_decodes_beyond_the_slots_and_the_queue_get_503_with_retry_after(
    shared: Hashwatch, keys: dict[Role, dict[str, str]]
) -> None:
    picture = {"file": ("scene.png", _picture(), "image/png")}
    matcher = keys[Role.MATCHER]
    app = _app(shared, decode_concurrency=1, decode_queue=1, decode_wait_s=60, retry_after_s=7)
    decoders = app.state.decoders
    with TestClient(app) as c:
        decoders.acquire()  # every slot busy
        queued: list[int] = []
        waiter = threading.Thread(
            target=lambda: queued.append(
                c.post("/v1/hash", headers=matcher, files=picture).status_code
            )
        )
        waiter.start()
        deadline = time.monotonic() + 30
        while decoders.waiting < 1:  # the first upload waits in the queue
            assert time.monotonic() < deadline and waiter.is_alive()
            time.sleep(0.01)
        r = c.post("/v1/match", headers=matcher, files=picture)  # the queue is full
        assert r.status_code == 503 and r.headers["Retry-After"] == "7"
        decoders.release()
        waiter.join(timeout=60)
        assert queued == [200]
        assert c.post("/v1/hash", headers=matcher, files=picture).status_code == 200


def test_serve_options_open_the_documents_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from hashwatch.cli.main import app as cli

    environ = {k: v for k, v in os.environ.items() if not k.startswith("HASHWATCH_SERVE_")}
    monkeypatch.setattr(os, "environ", environ)  # serve writes the workers' settings here
    seen: list[ServeSettings] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(ServeSettings.from_env()))
    db = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    base = ["--db", db, "--data-dir", str(tmp_path / "data"), "serve"]
    for extra in ([], ["--public-docs", "--metrics-public"]):
        result = CliRunner().invoke(cli, [*base, *extra], prog_name="hashwatch")
        assert result.exit_code == 0, result.output
    assert [(s.public_docs, s.metrics_public) for s in seen] == [(False, False), (True, True)]
