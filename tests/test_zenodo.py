"""The Zenodo download path against a loopback server that speaks Zenodo's REST API with the real zips."""

import hashlib
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lipagent.cli import main
from lipagent.config import ZenodoRecord
from lipagent.data.zenodo import ChecksumError, ZenodoFile, parse_record, verify

FILES = ("s2.zip", "alignments.zip")


class FakeZenodo:
    def __init__(self, grid_dir, wrong_md5=()):
        self.blobs = {name: (grid_dir / name).read_bytes() for name in FILES}
        self.wrong_md5 = set(wrong_md5)
        self.gets = Counter()
        zenodo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _body(self):
                if self.path == "/api/records/3625687":
                    return json.dumps(zenodo.record()).encode(), "application/json"
                for name, blob in zenodo.blobs.items():
                    if self.path == f"/api/records/3625687/files/{name}/content":
                        return blob, "application/zip"
                return None, None

            def _answer(self, send_body):
                body, kind = self._body()
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    zenodo.gets[self.path] += 1
                    self.wfile.write(body)

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self):
        def md5(name):
            digest = hashlib.md5(self.blobs[name]).hexdigest()
            return "0" * 32 if name in self.wrong_md5 else digest

        files = [
            {
                "key": name,
                "size": len(blob),
                "checksum": f"md5:{md5(name)}",
                "links": {"self": f"{self.url}/api/records/3625687/files/{name}/content"},
            }
            for name, blob in self.blobs.items()
        ]
        return {"id": 3625687, "files": files + [{"key": "s1.zip", "size": 10**9, "checksum": "md5:x", "links": {}}]}


@pytest.fixture
def zenodo(grid_dir):
    server = FakeZenodo(grid_dir)
    yield server
    server.server.shutdown()


def _prepare(zenodo_url, tmp_path, out="out", *extra):
    return main(
        [
            "prepare",
            "--speakers",
            "s2",
            "--out",
            str(tmp_path / out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--zenodo-url",
            zenodo_url,
            "--num-proc",
            "1",
            *extra,
        ]
    )


def test_record_parsing():
    record = {"files": [{"key": "s1.zip", "size": 5, "checksum": "md5:abc", "links": {}}]}
    [file] = parse_record(record, ZenodoRecord()).values()
    assert file.md5 == "abc" and file.url == "https://zenodo.org/api/records/3625687/files/s1.zip/content"


def test_dry_run_lists_files_and_sizes_without_fetching_them(zenodo, tmp_path, capsys):
    assert _prepare(zenodo.url, tmp_path, "out", "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "s2.zip" in printed and "alignments.zip" in printed and "794.9 kB" in printed and "total" in printed
    assert not any("content" in path for path in zenodo.gets)
    assert not (tmp_path / "out").exists()


def test_download_verify_build_and_reuse_the_cache(zenodo, tmp_path, capsys):
    assert _prepare(zenodo.url, tmp_path) == 0
    assert "1 mosaics" in capsys.readouterr().out
    content_gets = {p: n for p, n in zenodo.gets.items() if p.endswith("/content")}
    assert sorted(content_gets.values()) == [1, 1]
    assert _prepare(zenodo.url, tmp_path, "again") == 0
    assert {p: n for p, n in zenodo.gets.items() if p.endswith("/content")} == content_gets, "cached files refetched"


def test_checksum_mismatch_is_a_clear_error_and_the_download_is_dropped(grid_dir, tmp_path, capsys):
    server = FakeZenodo(grid_dir, wrong_md5={"s2.zip"})
    try:
        assert _prepare(server.url, tmp_path) == 2
    finally:
        server.server.shutdown()
    err = capsys.readouterr().err
    assert "s2.zip" in err and "md5" in err and "run again" in err
    assert not (tmp_path / "out").exists()


def test_verify_checks_size_and_md5(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    good = hashlib.md5(b"hello").hexdigest()
    verify(path, ZenodoFile("f", 5, good, ""))
    with pytest.raises(ChecksumError, match="bytes"):
        verify(path, ZenodoFile("f", 6, good, ""))
    with pytest.raises(ChecksumError, match="md5"):
        verify(path, ZenodoFile("f", 5, "0" * 32, ""))


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("extra", [(), ("--dry-run",)])
def test_an_unreachable_zenodo_is_one_sentence_that_points_to_grid_dir(tmp_path, capsys, extra):
    assert _prepare(_closed_port_url(), tmp_path, "out", *extra) == 2
    err = capsys.readouterr().err
    assert "Zenodo could not be reached" in err and "--grid-dir" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
