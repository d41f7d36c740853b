"""``POST /logout`` (services.md §1): it ends exactly one session (refresh family) — the one of
the refresh token presented in the cookie or the body, or, with only an access token, the session
(``sid``) that token belongs to — and the refresh token of that session then gets 401."""

from __future__ import annotations

import jwt
from fastapi.testclient import TestClient

from tests.integration.auth.support import (
    BASE,
    bearer,
    csrf_headers,
    login,
    refresh,
    register,
)


def assert_session_ended(client: TestClient, refresh_token: str) -> None:
    client.cookies.clear()
    resp = refresh(client, refresh_token)
    assert resp.status_code == 401, resp.text
    assert resp.json()["code"] == "invalid_refresh_token"


def second_session(client: TestClient, email: str) -> dict[str, str]:
    """Another login of the same user (its own refresh family), cookies dropped."""
    resp = login(client, email)
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    tokens: dict[str, str] = resp.json()
    return tokens


def test_bearer_only_logout_ends_the_session_of_the_access_token(client: TestClient) -> None:
    first = register(client)
    other = second_session(client, first["user"]["email"])
    client.cookies.clear()
    # A refreshed pair belongs to the same session: its access token names that session.
    rotated = refresh(client, first["refresh_token"]).json()
    client.cookies.clear()
    sid = jwt.decode(rotated["access_token"], options={"verify_signature": False})["sid"]
    assert sid == jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]

    resp = client.post(f"{BASE}/logout", headers=bearer(rotated["access_token"]))
    assert resp.status_code == 204, resp.text
    assert_session_ended(client, rotated["refresh_token"])
    # Only that session: the user's other login goes on.
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_cookie_logout_ends_the_cookie_session(client: TestClient) -> None:
    user = register(client)
    other = second_session(client, user["user"]["email"])
    browser = login(client, user["user"]["email"])  # its cookies stay in the client
    assert client.cookies.get("refresh_token") == browser.json()["refresh_token"]
    resp = client.post(f"{BASE}/logout", headers=csrf_headers(client))
    assert resp.status_code == 204, resp.text
    cleared = {c.split("=", 1)[0] for c in resp.headers.get_list("set-cookie")}
    assert cleared == {"access_token", "refresh_token", "csrf_token"}
    assert_session_ended(client, browser.json()["refresh_token"])
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_body_logout_ends_the_session_of_the_refresh_token(client: TestClient) -> None:
    pair = register(client)
    other = second_session(client, pair["user"]["email"])
    client.cookies.clear()
    resp = client.post(f"{BASE}/logout", json={"refresh_token": pair["refresh_token"]})
    assert resp.status_code == 204, resp.text
    assert_session_ended(client, pair["refresh_token"])
    assert refresh(client, other["refresh_token"]).status_code == 200
    # Again, nothing left to end: still 204.
    again = client.post(f"{BASE}/logout", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 204


def test_the_refresh_token_presented_wins_over_the_bearer(client: TestClient) -> None:
    pair = register(client)
    other = second_session(client, pair["user"]["email"])
    resp = client.post(
        f"{BASE}/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(other["access_token"]),
    )
    assert resp.status_code == 204, resp.text
    assert_session_ended(client, pair["refresh_token"])
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_an_access_cookie_alone_ends_its_session_with_csrf(client: TestClient) -> None:
    pair = register(client)
    client.cookies.delete("refresh_token")  # e.g. a client that never sends it to /logout
    assert client.cookies.get("access_token") == pair["access_token"]
    refused = client.post(f"{BASE}/logout", headers={"Origin": "http://testserver"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    resp = client.post(f"{BASE}/logout", headers=csrf_headers(client))
    assert resp.status_code == 204, resp.text
    assert_session_ended(client, pair["refresh_token"])


def test_an_access_token_that_does_not_verify_ends_nothing(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    signed, _, signature = pair["access_token"].rpartition(".")
    forged = f"{signed}.{signature[::-1]}"
    for headers in (bearer(forged), bearer(pair["refresh_token"]), {"Authorization": "Basic x"}):
        resp = client.post(f"{BASE}/logout", headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.json()["code"] == "unauthorized"
    assert refresh(client, pair["refresh_token"]).status_code == 200


def test_logout_without_any_token_is_204(client: TestClient) -> None:
    client.cookies.clear()
    assert client.post(f"{BASE}/logout").status_code == 204
