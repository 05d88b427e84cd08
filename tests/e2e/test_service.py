"""End to end: a real `recsys serve` (uvicorn) process, and real nginx in front of it."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from training.bench import nginx
from training.bench.nginx import run_nginx
from training.bench.server import ServerError, free_port, run_server

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]


@pytest.fixture(scope="module")
def server(loaded_database: str, artifacts_dir: Path, tmp_path_factory) -> Iterator[str]:
    """`recsys serve` as `recsys bench serve` starts it (one runner for both)."""
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {"RECSYS_DATABASE_URL": loaded_database, "RECSYS_ARTIFACTS_DIR": str(artifacts_dir)}
    with run_server(env, log, timeout=90) as running:
        yield running.base
    assert "Traceback" not in log.read_text(), log.read_text()


def test_uvicorn_serves_recommendations_over_http(server: str) -> None:
    body = httpx.get(f"{server}/recommendations/1", params={"returnMetadata": "true"}).json()
    assert len({item["id"] for item in body["items"]}) == 10
    assert all(item["title"] for item in body["items"])
    feature = httpx.get(f"{server}/feature/1").json()["feature"][0]
    assert len(feature["histories"]) == 272  # user 1's ratings in u.data


def test_concurrent_requests_all_answered(server: str) -> None:
    """Concurrent requests share batched model calls; each still gets its own answer."""
    import asyncio

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=30) as client:
            return await asyncio.gather(
                *(client.get(f"/recommendations/{u}", params={"k": 5}) for u in range(1, 41))
            )

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 40
    assert [r.json()["user_id"] for r in responses] == [str(u) for u in range(1, 41)]
    assert len({tuple(i["id"] for i in r.json()["items"]) for r in responses}) > 20


def test_nginx_proxies_and_answers_json_when_upstream_is_gone(server: str, tmp_path: Path):
    require(nginx.installed(), "nginx is not installed (apt-get install nginx-light)")
    upstream = server.removeprefix("http://")
    with run_nginx([upstream], free_port(), tmp_path) as proxy:
        response = httpx.get(f"{proxy}/recommendations/1", params={"k": 3})
        assert response.status_code == 200 and len(response.json()["items"]) == 3
        assert response.headers.get("x-request-id")
        bad = httpx.get(f"{proxy}/recommendations/1", params={"k": 0})
        assert bad.status_code == 422 and "'k'" in bad.json()["error"]["message"]
    dead_upstream = f"127.0.0.1:{free_port()}"
    with run_nginx([dead_upstream], free_port(), tmp_path / "dead") as proxy:
        response = httpx.get(f"{proxy}/recommendations/1")
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]


def test_server_refuses_to_start_without_a_published_version(tmp_path: Path, databases):
    env = {
        "RECSYS_DATABASE_URL": databases.migrated("sqlite"),
        "RECSYS_ARTIFACTS_DIR": str(tmp_path / "empty"),
    }
    with pytest.raises(ServerError, match="exited with code") as refused:  # noqa: SIM117
        with run_server(env, tmp_path / "server.log", timeout=90):
            pass
    assert "no published model version" in str(refused.value)
    assert "recsys train" in str(refused.value)


@pytest.mark.parametrize("loaded_database", ["sqlite"], indirect=True)
def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    loaded_database: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    """The access log names the client: the peer, unless the peer is a configured proxy,
    whose X-Forwarded-For is then believed."""
    spoofed = "203.0.113.9"
    for trusted in ("", "127.0.0.1"):
        env = {
            "RECSYS_DATABASE_URL": loaded_database,
            "RECSYS_ARTIFACTS_DIR": str(artifacts_dir),
            "RECSYS_SERVING_ACCESS_LOG": "true",
            "RECSYS_SERVING_TRUSTED_PROXIES": trusted,
        }
        log = tmp_path / f"server-{trusted or 'none'}.log"
        with run_server(env, log, timeout=90) as running:
            headers = {"X-Forwarded-For": spoofed}
            assert httpx.get(f"{running.base}/healthz", headers=headers).status_code == 200
        lines = [json.loads(line) for line in log.read_text().splitlines() if '"/healthz"' in line]
        assert lines, log.read_text()
        assert (lines[-1]["client"] == spoofed) == bool(trusted), lines[-1]


HEAD = b"GET /healthz HTTP/1.1\r\nHost: x"
ONE_HUGE_HEADER = HEAD + b"\r\nX-Big: " + b"a" * 2_000_000
MANY_LARGE_HEADERS = HEAD + b"".join(b"\r\nX-%d: " % n + b"b" * 5000 for n in range(8))
LONG_TARGET = b"GET /healthz?q=" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x"


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        (ONE_HUGE_HEADER, 431, "headers_too_large"),
        (MANY_LARGE_HEADERS, 431, "headers_too_large"),
        (LONG_TARGET, 414, "uri_too_long"),
    ],
)
def test_uvicorn_reached_directly_refuses_oversized_headers_with_json(
    server: str, request_head: bytes, status: int, code: str
) -> None:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request_head + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"server: uvicorn" not in head.lower()
    assert json.loads(body)["error"]["code"] == code
    # An ordinary request on the same server still works.
    assert httpx.get(f"{server}/healthz").status_code == 200
