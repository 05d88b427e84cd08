"""The deployed stack, run natively with the same commands and nginx config as
docker-compose (training/bench/stack.py): a throwaway PostgreSQL cluster, migrations,
data load, a short training run, two uvicorn instances and a real nginx; every request
goes through nginx.

Latency figures for the outage are printed by `recsys bench outage`, not asserted here.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.schemas import ErrorResponse
from tests.conftest import require
from training.bench import nginx
from training.bench.asking import NO_ANSWER
from training.bench.nginx import Limits, run_nginx
from training.bench.outage import Phases, outage, summary
from training.bench.pgcluster import pg_bin
from training.bench.server import free_port
from training.bench.stack import Stack, native_stack

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]
USERS = [str(n) for n in range(1, 944)]
RECOMMENDATIONS, ROUTE = "recsys_http_request_duration_seconds_count", "/recommendations/{user_id}"


@pytest.fixture(scope="module")
def stack(movielens_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require(pg_bin() is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    require(nginx.installed(), "nginx is not installed (apt-get install nginx-light)")
    workdir = tmp_path_factory.mktemp("stack")
    # A generous rate limit here: the load below comes from one address (the JSON 429
    # is provoked on a second nginx with compose's default limit).
    with native_stack(
        workdir,
        movielens_dir=movielens_dir,
        train_args=("--epochs", "1", "--max-users", "80"),
        limits=Limits(rate="100000r/s", burst=100000),
    ) as stack:
        yield stack


def access_lines(stack: Stack) -> list[list[dict]]:
    """Each instance's access-log lines (written out within a quarter second)."""
    time.sleep(0.5)
    per_instance = []
    for server in stack.instances:
        text = server.log.read_text(errors="replace")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        per_instance.append([line for line in lines if line.get("logger") == "app.access"])
    return per_instance


def metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_requests_through_nginx_reach_both_instances_with_their_request_ids(stack) -> None:
    with httpx.Client(base_url=stack.base) as http:
        for n in range(40):
            response = http.get(f"/recommendations/{USERS[n]}", headers={"X-Request-ID": f"r-{n}"})
            assert response.status_code == 200 and response.json()["items"]
            assert response.headers["x-request-id"] == f"r-{n}"
        generated = http.get("/feature/1").headers["x-request-id"]
    seen = [{line["request_id"] for line in lines} for lines in access_lines(stack)]
    ours = {f"r-{n}" for n in range(40)}
    assert all(ids & ours for ids in seen), "a instance got none of the requests"
    assert set.union(*seen) >= ours | {generated}
    nginx_log = (stack.nginx_dir / "access.log").read_text()
    upstreams = {json.loads(line)["upstream_addr"] for line in nginx_log.splitlines()}
    assert upstreams >= {s.base.removeprefix("http://") for s in stack.instances}


def test_nginx_errors_are_json_in_the_api_error_shape(stack) -> None:
    with httpx.Client(base_url=stack.base) as http:
        answers = {
            414: http.get("/recommendations/" + "u" * 9000),
            400: http.get("/healthz", headers={"X-Big": "b" * 9000}),
            413: http.post("/events", content=b"x" * 300_000),  # past 256k
            404: http.get("/_recsys/error/502"),
            422: http.get("/recommendations/1", params={"k": "many"}),  # the API's own
        }
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith("application/json")
        ErrorResponse.model_validate(response.json())
        assert response.headers["x-request-id"]


def test_the_rate_limit_answers_json_429_with_retry_after(stack, tmp_path: Path) -> None:
    """compose's default limit (50 r/s, burst 100), on a second nginx before the same
    instances: 300 requests at once from one address."""
    upstreams = [s.base.removeprefix("http://") for s in stack.instances]
    with run_nginx(upstreams, free_port(), tmp_path / "nginx", Limits()) as base:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base) as http:
                return await asyncio.gather(*(http.get("/healthz") for _ in range(300)))

        responses = asyncio.run(burst())
    limited = [r for r in responses if r.status_code == 429]
    assert limited and len(limited) < 300, {r.status_code for r in responses}
    assert {r.status_code for r in responses} <= {200, 429}
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert limited[0].headers["retry-after"] == "1"
    ErrorResponse.model_validate(limited[0].json())


@pytest.mark.parametrize("fault", ["paused", "stopped"])
def test_a_database_outage_through_nginx_fails_nothing_and_recovers(stack, fault) -> None:
    cluster = stack.cluster
    down, up = (
        (cluster.pause, cluster.resume) if fault == "paused" else (cluster.stop, cluster.start)
    )
    pids = [server.process.pid for server in stack.instances]
    fallbacks = sum(metric(s.base, "recsys_fallbacks_total") for s in stack.instances)
    probes: dict[str, int] = {}
    served_after_probe: list[float] = []  # per instance, /recommendations in the 2 s after

    def fault_and_probe() -> None:
        down()
        time.sleep(1.5)
        probes["feature"] = httpx.get(f"{stack.base}/feature/1").status_code
        probes["healthz"] = httpx.get(f"{stack.base}/healthz", timeout=1).status_code
        probes["readyz"] = httpx.get(f"{stack.instances[0].base}/readyz", timeout=2).status_code
        # A 503 from /feature (database down) is no fault of the instance: nginx must not
        # count it against the instance, which would then get no traffic for 10 s.
        before = [metric(s.base, RECOMMENDATIONS, route=ROUTE) for s in stack.instances]
        time.sleep(2.0)
        after = [metric(s.base, RECOMMENDATIONS, route=ROUTE) for s in stack.instances]
        served_after_probe.extend(b - a for a, b in zip(before, after, strict=True))

    run = asyncio.run(outage(stack.base, USERS, fault_and_probe, up, Phases(outage=10.0)))
    figures = summary(run)
    print(f"\n{fault}: {figures}")
    assert figures["server_errors"] == 0 and figures["dropped"] == 0, figures
    assert {a.status for a in run.answers} == {200}, {a.status for a in run.answers} - {NO_ANSWER}
    assert all(a.value is False for a in run.answers if a.ended < run.down)
    assert figures["outage_fallback_share"] == 1.0  # after its first second
    assert 0 <= figures["personalised_after_s"] <= 10, figures
    assert probes == {"feature": 503, "healthz": 200, "readyz": 503}
    assert len(served_after_probe) == 2 and min(served_after_probe) > 0, served_after_probe
    assert [s.process.poll() for s in stack.instances] == [None, None]  # no restart
    assert [s.process.pid for s in stack.instances] == pids
    assert sum(metric(s.base, "recsys_fallbacks_total") for s in stack.instances) > fallbacks
    assert all(metric(s.base, "recsys_database_errors_total") > 0 for s in stack.instances)
    assert all(metric(s.base, "recsys_database_breaker_open") == 0 for s in stack.instances)
