"""End to end: a real `recsys serve` (uvicorn) process, and real nginx in front of it."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.e2e.nginx_runner import NginxError, find_nginx, free_port, run_nginx

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(process: subprocess.Popen, base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("server did not become healthy in time")


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


@pytest.fixture(scope="module")
def server(loaded_database: str, artifacts_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {"RECSYS_DATABASE_URL": loaded_database, "RECSYS_ARTIFACTS_DIR": str(artifacts_dir)}
    process = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base)
        yield base
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


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


def nginx_installed() -> bool:
    try:
        find_nginx()
    except NginxError:
        return False
    return True


def test_nginx_proxies_and_answers_json_when_upstream_is_gone(server: str, tmp_path: Path):
    require(nginx_installed(), "nginx is not installed (apt-get install nginx-light)")
    upstream = server.removeprefix("http://")
    with run_nginx(upstream, free_port(), tmp_path) as proxy:
        response = httpx.get(f"{proxy}/recommendations/1", params={"k": 3})
        assert response.status_code == 200 and len(response.json()["items"]) == 3
        assert response.headers.get("x-request-id")
        bad = httpx.get(f"{proxy}/recommendations/1", params={"k": 0})
        assert bad.status_code == 422 and "'k'" in bad.json()["error"]["message"]
    dead_upstream = f"127.0.0.1:{free_port()}"
    with run_nginx(dead_upstream, free_port(), tmp_path / "dead") as proxy:
        response = httpx.get(f"{proxy}/recommendations/1")
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]


def test_server_refuses_to_start_without_a_published_version(tmp_path: Path, databases):
    env = {
        "RECSYS_DATABASE_URL": databases.migrated("sqlite"),
        "RECSYS_ARTIFACTS_DIR": str(tmp_path / "empty"),
    }
    process = start_server(env, free_port())
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail("server kept running without any model version")
    output = process.stdout.read()
    assert process.returncode != 0
    assert "no published model version" in output and "recsys train" in output
