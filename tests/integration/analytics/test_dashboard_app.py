"""The dashboard app: the page, its local assets (plotly.js from the wheel, nothing from elsewhere), the API
behind the same token, and the URL `mailpulse dashboard` prints."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from adapters.clickhouse import ClickHouseStore
from analytics.dashboard import STATIC, dashboard_app, plotly_js
from analytics.service import AnalyticsService
from mailpulse.runtime import api_token, dashboard_url
from mailpulse.settings import Settings
from tests.integration.analytics.client import ApiClient

pytestmark = [pytest.mark.clickhouse]


@pytest.fixture
def client(store: ClickHouseStore) -> ApiClient:
    service = AnalyticsService(store.client, store.database)
    return ApiClient(dashboard_app(service, SecretStr("s3cret"), refresh_s=7, worst_min_volume=25))


def test_the_page_carries_its_settings_and_a_same_origin_policy(client: ApiClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<meta name="mailpulse-refresh-s" content="7">' in page.text
    assert '<meta name="mailpulse-worst-min-volume" content="25">' in page.text
    assert "{{" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for chart in ("chart-volume", "chart-rates", "chart-funnel", "chart-latency", "chart-worst"):
        assert f'id="{chart}"' in page.text


def test_every_asset_is_served_locally(client: ApiClient) -> None:
    page = client.get("/dashboard").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/dashboard/static/") for a in assets), assets
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
    script = client.get("/dashboard/static/dashboard.js").text
    assert not re.search(r"https?://", script)  # no CDN, no third party
    bundle = client.get("/dashboard/static/plotly.min.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert bundle.content == plotly_js().read_bytes()
    assert plotly_js().stat().st_size > 1_000_000  # the real bundle, not a stub
    assert {p.name for p in STATIC.iterdir()} >= {"dashboard.html", "dashboard.js", "dashboard.css"}


def test_the_api_answers_only_with_the_token(client: ApiClient, store: ClickHouseStore) -> None:
    assert client.get("/api/funnel").status_code == 401
    assert client.get("/api/funnel", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/api/funnel", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and [s["messages"] for s in ok.json()["steps"]] == [0, 0, 0, 0, 0]
    unset = ApiClient(dashboard_app(AnalyticsService(store.client, store.database), None))
    assert unset.get("/api/summary").status_code == 503
    assert unset.get("/dashboard").status_code == 200  # the page itself holds no data


def test_health_and_the_root_redirect(client: ApiClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    root = client.get("/")
    assert root.status_code in (302, 307) and root.headers["location"] == "/dashboard"


def test_the_printed_url_carries_the_token_the_page_reads() -> None:
    token = SecretStr("a&b#c d")
    url = dashboard_url("0.0.0.0", 8090, token)
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("127.0.0.1:8090", "/dashboard")
    assert parse_qs(parts.fragment)["token"] == ["a&b#c d"]  # what URLSearchParams gives the page


def test_a_token_is_generated_only_when_none_is_configured() -> None:
    configured = Settings(api_token=SecretStr("mine"))
    assert api_token(configured).get_secret_value() == "mine"
    first, second = api_token(Settings()), api_token(Settings())
    assert first.get_secret_value() != second.get_secret_value()
    assert len(first.get_secret_value()) >= 32
