"""The load generator's own options, against a real HTTP server and the real wrk."""

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import require
from training.bench.wrk import run_wrk


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service's clients
    served: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        _Counting.served.append(self.path)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Counting.served.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("requests", [1, 3])
def test_stop_after_sends_exactly_that_many_requests(
    server: str, tmp_path: Path, requests: int
) -> None:
    """The cold-path figures time the first answers on a connection: wrk must send no
    more than asked, and report each of them."""
    require(shutil.which("wrk") is not None, "wrk is not installed (apt-get install -y wrk)")
    paths = tmp_path / "paths"
    paths.write_text("/a\n/b\n")
    result = run_wrk(server, paths, connections=1, seconds=1, stop_after=requests)
    assert result.requests == requests and result.errors == 0
    assert len(_Counting.served) == requests and set(_Counting.served) <= {"/a", "/b"}
    assert 0 < result.p50_ms <= result.max_ms


def test_without_stop_after_wrk_runs_for_its_duration(server: str, tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (apt-get install -y wrk)")
    paths = tmp_path / "paths"
    paths.write_text("/a\n")
    result = run_wrk(server, paths, connections=1, seconds=1)
    assert result.requests > 3 and len(_Counting.served) >= result.requests  # one cut off
