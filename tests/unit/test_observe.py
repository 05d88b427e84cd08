"""Per-request observation on a small FastAPI app: the request id, the latency series by
route template and status, and the access log's lines (what the service's own routes
add is checked in tests/integration/test_api.py)."""

import asyncio
import io
import json
import subprocess
import sys

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY

from app.accesslog import AccessLog
from app.edges import HeadAsGet
from app.errors import install_error_handlers
from app.observe import Observe, set_outcome


def small_app(stream: io.BytesIO) -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str, request: Request) -> dict:
        set_outcome(request.scope, "found")
        return {"id": thing_id}

    @app.get("/broken")
    async def broken() -> dict:
        raise RuntimeError("boom")

    install_error_handlers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(Observe, access=AccessLog("json", stream))
    return app


def count(route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("recsys_http_request_duration_seconds_count", labels) or 0


@pytest.fixture
def stream() -> io.BytesIO:
    return io.BytesIO()


@pytest.fixture
async def client(stream: io.BytesIO):
    transport = httpx.ASGITransport(small_app(stream), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def lines(stream: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_safe_request_id_is_kept_and_echoed(client) -> None:
    response = await client.get("/things/a", headers={"X-Request-ID": "abc-123.x:y_z"})
    assert response.headers["x-request-id"] == "abc-123.x:y_z"


@pytest.mark.parametrize("sent", [None, "has space", "x" * 129, 'quote"d'])
async def test_a_missing_or_unsafe_request_id_is_replaced(client, sent) -> None:
    headers = {"X-Request-ID": sent} if sent else {}
    response = await client.get("/things/a", headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != sent and len(generated) == 32 and generated.isalnum()


async def test_latency_is_counted_by_route_template_method_and_status(client) -> None:
    before = count("/things/{thing_id}", "GET", "200")
    before_head = count("/things/{thing_id}", "HEAD", "200")
    before_404 = count("unmatched", "GET", "404")
    before_500 = count("/broken", "GET", "500")
    await client.get("/things/one")
    await client.get("/things/two")
    await client.head("/things/three")
    await client.get("/nowhere")
    assert (await client.get("/broken")).status_code == 500
    assert count("/things/{thing_id}", "GET", "200") == before + 2
    assert count("/things/{thing_id}", "HEAD", "200") == before_head + 1
    assert count("unmatched", "GET", "404") == before_404 + 1
    assert count("/broken", "GET", "500") == before_500 + 1


async def test_the_access_log_has_one_json_line_per_request_without_the_path(
    client, stream: io.BytesIO
) -> None:
    await client.get("/things/secret-user-42", headers={"X-Request-ID": "rid-1"})
    await client.get("/things/a?x=1", params={"bad": "1"})
    await client.get("/broken")
    await asyncio.sleep(0.4)  # the buffer is written out within FLUSH_SECONDS
    first, _, broken = lines(stream)
    assert first["request_id"] == "rid-1" and first["route"] == "/things/{thing_id}"
    assert first["status"] == 200 and first["outcome"] == "found" and first["latency_ms"] >= 0
    assert first["method"] == "GET" and first["level"] == "INFO" and first["time"]
    assert "secret-user-42" not in stream.getvalue().decode()
    assert broken["status"] == 500 and broken["outcome"] == "internal_error"


async def test_the_access_log_writes_out_a_full_buffer_at_once() -> None:
    stream = io.BytesIO()
    log = AccessLog("json", stream)
    for n in range(2000):
        log.write(request_id=str(n), route="/x" * 20, status=200)
    assert len(lines(stream)) > 1000  # written without waiting for the timer
    log.flush()
    assert [line["request_id"] for line in lines(stream)] == [str(n) for n in range(2000)]


async def test_text_format_is_one_line_per_request() -> None:
    stream = io.BytesIO()
    log = AccessLog("text", stream)
    log.write(request_id="r1", status=200)
    log.flush()
    text = stream.getvalue().decode()
    assert text.count("\n") == 1 and "request_id=r1 status=200" in text


def test_log_records_are_json_with_the_request_id_of_the_request_being_handled() -> None:
    code = (
        "import logging; from app.logs import configure; from app.observe import request_id\n"
        "configure('info', 'json')\n"
        "logging.getLogger('app.x').info('outside')\n"
        "request_id.set('rid-9')\n"
        "logging.getLogger('uvicorn.error').warning('inside %s', 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    outside, inside = (json.loads(line) for line in done.stderr.splitlines())
    assert outside["logger"] == "app.x" and outside["message"] == "outside"
    assert "request_id" not in outside and outside["level"] == "INFO"
    assert inside["request_id"] == "rid-9" and inside["message"] == "inside 1"
    assert inside["level"] == "WARNING" and inside["time"]


def test_uvicorns_access_log_stays_off_when_the_app_configures_logging() -> None:
    # A plain `uvicorn app.main:app` leaves root unconfigured, so the app applies its own
    # config at start; uvicorn then asks hasHandlers() of its access logger per connection.
    code = (
        "import logging; from app.logs import configure\n"
        "configure('info', 'json')\n"
        "access = logging.getLogger('uvicorn.access')\n"
        "print(access.hasHandlers(), logging.getLogger('uvicorn.error').hasHandlers())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr
