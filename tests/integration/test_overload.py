"""Past its in-flight bound the service refuses at once (503 + Retry-After) and answers
everything it admitted; the bound is released as requests finish."""

import asyncio
from pathlib import Path

import pytest

from app.settings import ArtifactSettings, DatabaseSettings, ServingSettings, Settings
from tests.conftest import app_client

pytestmark = [pytest.mark.movielens, pytest.mark.model]


@pytest.mark.parametrize("loaded_database", ["sqlite"], indirect=True)
async def test_a_flood_past_the_bound_gets_503_not_a_longer_queue(
    loaded_database: str, artifacts_dir: Path
) -> None:
    settings = Settings(
        database=DatabaseSettings(url=loaded_database),
        artifacts=ArtifactSettings(dir=artifacts_dir),
        serving=ServingSettings(max_in_flight=4),
    )
    async with app_client(settings) as client:
        paths = [f"/recommendations/{n % 943 + 1}" for n in range(60)] + ["/feature/1"] * 20
        answers = await asyncio.gather(*(client.get(path) for path in paths))
        statuses = {response.status_code for response in answers}
        assert statuses == {200, 503}, statuses
        for response in answers:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"]["code"] == "overloaded"
                assert "more than 4 requests in flight" in response.json()["error"]["message"]
        # Once the flood is over the bound is free again: nothing leaked.
        assert client.app.state.admission.in_flight == 0
        assert (await client.get("/recommendations/1")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "recsys_rejected_total" in metrics
        # Refused before routing, yet counted under the route they asked for.
        assert (
            'recsys_http_request_duration_seconds_count{method="GET",'
            'route="/recommendations/{user_id}",status="503"}'
        ) in metrics
