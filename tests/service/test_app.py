"""App-wide behaviour: authentication and roles on every route, docs, dashboard page."""

from __future__ import annotations

import pytest

from reviewsense.service.security import generate_key

# Routes anyone may call (health, docs, the dashboard page and its files).
PUBLIC = {"/healthz", "/readyz", "/metrics", "/", "/static", "/openapi.json", "/docs"}
PUBLIC |= {"/docs/oauth2-redirect", "/redoc"}
# Roles allowed per (method, route template), plus a body and concrete path to call it with.
ROLES = {
    ("POST", "/v1/reviews"): ({"ingest"}, {"title_id": "t", "text": "good"}),
    ("POST", "/v1/classify"): ({"ingest"}, {"texts": ["good"]}),
    ("GET", "/v1/flags"): ({"support", "read"}, None),
    ("POST", "/v1/flags/{flag_id}/resolve"): ({"support"}, None),
    ("GET", "/v1/titles"): ({"support", "read"}, None),
    ("GET", "/v1/titles/{title_id}/sentiment"): ({"support", "read"}, None),
    ("GET", "/v1/users"): ({"support"}, None),
    ("GET", "/v1/users/{user_id}/reviews"): ({"support"}, None),
    ("GET", "/v1/stream"): ({"support", "read"}, None),
    ("GET", "/v1/me"): ({"ingest", "support", "read"}, None),
}
STREAMING = {"/v1/stream"}  # an allowed call never ends; checked for 401/403 only


def app_routes(routes, prefix: str = "") -> list[tuple[str, str]]:
    """(method, template) of every route the app serves, read from the app itself."""
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router wrapper
        if included is not None:
            out += app_routes(included.routes, prefix + route.include_context.prefix)
            continue
        methods = getattr(route, "methods", None) or {"GET"}  # a mount serves GET
        out += [(m, prefix + route.path) for m in sorted(set(methods) - {"HEAD"})]
    return out


def test_every_route_is_either_public_or_in_the_role_table(client_keys):
    routes = app_routes(client_keys[0].app.routes)
    assert len(routes) > 8
    unknown = [r for r in routes if r[1] not in PUBLIC and r not in ROLES]
    assert unknown == [], f"new routes: add auth and a row to ROLES: {unknown}"


def _concrete(template: str) -> str:
    return template.replace("{flag_id}", "1").replace("{title_id}", "t").replace("{user_id}", "u")


ROUTES = [
    (m, _concrete(p), body, allowed)
    for (m, p), (allowed, body) in ROLES.items()
    if p not in STREAMING
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES)
def test_every_route_needs_a_valid_key_and_the_right_role(client_keys, method, path, body, allowed):
    client, keys = client_keys

    def call(headers):
        return client.request(method, path, json=body, headers=headers)

    assert call({}).status_code == 401
    assert call({"X-API-Key": "nonsense"}).status_code == 401
    assert call({"X-API-Key": generate_key()[1]}).status_code == 401
    assert call({}).headers["www-authenticate"] == "ApiKey"
    for role, key in keys.items():
        status = call({"X-API-Key": key}).status_code
        if role in allowed:
            assert status not in (401, 403), (role, path, status)
        else:
            assert status == 403, (role, path, status)


def test_stream_needs_a_key_and_role(client_keys):
    client, keys = client_keys
    assert client.get("/v1/stream").status_code == 401
    assert client.get("/v1/stream", headers={"X-API-Key": keys["ingest"]}).status_code == 403


def test_a_key_in_the_query_string_is_refused(client_keys):
    client, keys = client_keys
    r = client.get(f"/v1/titles?api_key={keys['read']}", headers={"X-API-Key": keys["read"]})
    assert r.status_code == 400 and "header" in r.json()["detail"]


def test_health_docs_and_dashboard_need_no_key(client_keys):
    client, _ = client_keys
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in [
        "/v1/reviews",
        "/v1/classify",
        "/v1/flags",
        "/v1/flags/{flag_id}/resolve",
        "/v1/titles",
        "/v1/titles/{title_id}/sentiment",
        "/v1/stream",
    ]:
        assert path in spec["paths"], path
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "reviewsense" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    # CSP forbids inline code: the page must load its script and styles from files.
    assert "<style" not in page.text and "<script>" not in page.text and "style=" not in page.text
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


def test_me_reports_the_role(client_keys):
    client, keys = client_keys
    assert client.get("/v1/me", headers={"X-API-Key": keys["read"]}).json()["role"] == "read"


def test_query_validation_errors_name_the_parameter(client_keys):
    client, keys = client_keys
    r = client.get("/v1/flags?limit=0", headers={"X-API-Key": keys["read"]})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    r = client.get("/v1/titles?sort=bogus", headers={"X-API-Key": keys["read"]})
    assert r.status_code == 422 and "sort" in r.json()["detail"]
