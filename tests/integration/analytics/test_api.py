"""The API's guard rails on real chDB: bearer auth (401 / 503), 422 listing every bad parameter, and
hostile filter values that must come back as correct empty answers, never as SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from adapters.clickhouse import ClickHouseStore
from analytics.api import ENDPOINTS, create_app
from analytics.service import AnalyticsService
from tests.integration.analytics import knownanswer as ka
from tests.integration.analytics.client import ApiClient

pytestmark = [pytest.mark.clickhouse]
TOKEN = "s3cret-token"
RANGE = {"from": ka.iso(ka.FROM), "to": ka.iso(ka.TO)}


@pytest.fixture(scope="module")
def service(clickhouse: Client) -> AnalyticsService:
    store = ClickHouseStore(clickhouse, f"api_{uuid.uuid4().hex[:10]}")
    store.migrate()
    ka.load(store, ka.plan(120, seed=3))
    return AnalyticsService(clickhouse, store.database)


@pytest.fixture(scope="module")
def api(service: AnalyticsService) -> ApiClient:
    return ApiClient(create_app(service, SecretStr(TOKEN), clock=lambda: ka.TO))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("path", list(ENDPOINTS))
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
def test_401_without_the_right_token(api: ApiClient, path: str, headers: dict[str, str]) -> None:
    response = api.get(path, params=RANGE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]


@pytest.mark.parametrize("token", [None, SecretStr("")])
def test_503_when_no_token_is_configured(service: AnalyticsService, token: SecretStr | None) -> None:
    api = ApiClient(create_app(service, token))
    for path in ENDPOINTS:
        response = api.get(path, params=RANGE, headers={"Authorization": "Bearer anything"})
        assert response.status_code == 503
        assert response.json() == {"error": "api_token is not configured"}


def test_200_with_the_token(api: ApiClient) -> None:
    for path in ENDPOINTS:
        assert api.get(path, params=RANGE, headers=AUTH).status_code == 200, path


def test_422_lists_every_problem(api: ApiClient) -> None:
    params = {
        "from": "yesterday",
        "to": "2026-13-01",
        "bucket": "7",
        "tag": "no-equals-sign",
        "provider": "",
        "colour": "red",
    }
    response = api.get("/api/timeseries", params=params, headers=AUTH)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e.split(":", 1)[0] for e in errors] == ["colour", "from", "to", "provider", "tag", "bucket"]
    assert all(len(e.split(": ", 1)[1]) > 5 for e in errors)


def test_422_range_and_breakdown_problems(api: ApiClient) -> None:
    backwards = api.get("/api/summary", params={"from": RANGE["to"], "to": RANGE["from"]}, headers=AUTH)
    assert backwards.status_code == 422 and backwards.json() == {"errors": ["to: must be after from"]}
    long = api.get(
        "/api/summary", params={"from": "2026-01-01T00:00:00Z", "to": "2026-06-01T00:00Z"}, headers=AUTH
    )
    assert long.json() == {"errors": ["from: the range may span at most 93 days"]}
    params = {
        **RANGE,
        "by": "recipient_domain; DROP TABLE x",
        "order": "rate",
        "limit": "0",
        "min_volume": "x",
    }
    bad = api.get("/api/breakdown", params=params, headers=AUTH)
    assert bad.status_code == 422
    assert [e.split(":", 1)[0] for e in bad.json()["errors"]] == ["by", "order", "limit", "min_volume"]
    unknown = api.get("/api/summary", params={**RANGE, "mailbox_provider": "gmail.com"}, headers=AUTH)
    assert unknown.status_code == 422 and unknown.json()["errors"][0].startswith(
        "mailbox_provider: 'gmail.com'"
    )
    twice = api.get("/api/summary", params=[("from", RANGE["from"]), ("from", RANGE["from"])], headers=AUTH)
    assert twice.json() == {"errors": ["from: given 2 times, expected once"]}
    minutes = api.get("/api/timeseries", params={"from": "2026-01-01T00:00Z", "to": "2026-03-01T00:00Z",
                                                 "bucket": "60"}, headers=AUTH)  # fmt: skip
    assert minutes.json()["errors"][0].startswith("bucket: 60 s gives more than 5000 buckets")


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_422_for_times_and_numbers_out_of_range(api: ApiClient, path: str) -> None:
    cases = [
        ({"from": "0000-01-01T00:00:00Z", "to": "9999-12-31T23:59:59-14:00"}, ["from", "to"]),
        ({"from": "9999-12-31T23:00:00+14:00", "to": "9999-12-31T23:59:59+14:00"}, ["from", "to"]),
        ({"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:30Z"}, ["from", "to"]),  # ceiling: 10000
        ({"from": "0001-01-01T00:00:00+01:00"}, ["from"]),  # year 0 in UTC
        ({"to": "0001-01-01T00:30:00"}, ["to"]),  # and a default range starting before year 1
        ({"from": "1900-01-01T00:00:00Z", "to": "1900-01-02T00:00:00Z"}, ["from", "to"]),
        ({"from": "2200-01-01T00:00:00Z", "to": "2200-01-02T00:00:00Z"}, ["from", "to"]),  # DateTime ends
        ({"from": "9" * 5000, "to": "+" + "9" * 30}, ["from", "to"]),
    ]
    if path == "/api/breakdown":
        cases.append(({**RANGE, "limit": "9" * 5000, "min_volume": str(10**40)}, ["limit", "min_volume"]))
    if path == "/api/alerts":
        cases.append(({**RANGE, "limit": "-" + "9" * 30}, ["limit"]))
    for params, names in cases:
        response = api.get(path, params=params, headers=AUTH)
        assert response.status_code == 422, (params, response.text)
        errors = response.json()["errors"]
        assert [e.split(":", 1)[0] for e in errors] == names, errors
    far = api.get(path, params={"from": "2105-12-31T00:00:00Z", "to": "2105-12-31T23:59:59Z"}, headers=AUTH)
    assert far.status_code == 200 and far.json()["to"] == "2106-01-01T00:00:00Z", "the last day still works"


HOSTILE = [
    "' OR 1=1 --",
    "gmail.example' OR '1'='1",
    "x'); DROP TABLE email_events; --",
    "{f_provider:String}",
    "\\' OR 1=1 /*",
    "gmail.example\x00",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", ["provider", "sender_domain", "recipient_domain", "tag"])
def test_injection_attempts_are_plain_values(
    api: ApiClient, service: AnalyticsService, name: str, value: str
) -> None:
    value = f"campaign={value}" if name == "tag" else value
    summary = api.get("/api/summary", params={**RANGE, name: value}, headers=AUTH)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["filters"] == {name: value}
    assert body["messages"] == 0 and set(body["volumes"].values()) == {0}
    assert body["time_to_deliver_ms"]["count"] == 0 and body["rates"]["delivered"] is None
    for path in ("/api/timeseries", "/api/latency"):
        assert api.get(path, params={**RANGE, name: value}, headers=AUTH).json()["points"] == []
    assert api.get("/api/breakdown", params={**RANGE, name: value}, headers=AUTH).json()["rows"] == []
    # and nothing was harmed
    [(events,)] = service.client.query(f"SELECT count() FROM {service.database}.email_events").result_rows
    assert events > 0


def test_answers_name_the_range_actually_used(api: ApiClient) -> None:
    body = api.get("/api/summary", params={"from": "2026-11-20T10:00:59.5+01:00"}, headers=AUTH).json()
    assert body["from"] == "2026-11-20T09:00:00Z" and body["to"] == ka.iso(ka.TO)
    assert datetime.fromisoformat(body["to"]).tzinfo == UTC


VALID = {  # a valid value for each documented parameter
    **RANGE,
    "provider": "twilio",
    "sender_domain": "shop.example",
    "recipient_domain": "gmail.example",
    "mailbox_provider": "google",
    "tag": "campaign=a",
    "bucket": "300",
    "by": "tag",
    "order": "messages",
    "limit": "5",
    "min_volume": "0",
}


def test_openapi_documents_exactly_what_each_endpoint_accepts(api: ApiClient) -> None:
    answer = api.get("/api/openapi.json")  # public: no token
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"] == "3.1.0" and set(document["paths"]) == set(ENDPOINTS)
    for path, item in document["paths"].items():
        names = [p["name"] for p in item["get"]["parameters"]]
        assert set(item["get"]["responses"]) >= {"200", "401", "422", "503"}
        # Every documented parameter at once is accepted...
        assert api.get(path, params={n: VALID[n] for n in names}, headers=AUTH).status_code == 200, path
        # ...and every parameter some other endpoint takes, but this one does not, is refused by name.
        others = sorted(set(VALID) - set(names))
        if others:
            refused = api.get(path, params={**RANGE, **{n: VALID[n] for n in others}}, headers=AUTH)
            assert refused.status_code == 422
            assert sorted(p.split(":")[0] for p in refused.json()["errors"]) == others, path
        for parameter in item["get"]["parameters"]:
            if "enum" in parameter["schema"]:
                for choice in parameter["schema"]["enum"]:
                    params = {**RANGE, parameter["name"]: str(choice)}
                    if parameter["name"] == "bucket":
                        params["from"] = ka.iso(ka.TO - timedelta(hours=1))  # a small enough range for 60 s
                    assert api.get(path, params=params, headers=AUTH).status_code == 200, (path, choice)
