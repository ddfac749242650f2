from __future__ import annotations

import httpx


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/missing/42")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/missing/42" not in text
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"' in text
