"""The users API: admins manage users; members manage only their own name, email, password."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.conftest import ADMIN_EMAIL, Suite


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@test.local"


async def test_admin_creates_reads_replaces_patches_and_deletes_a_user(suite: Suite) -> None:
    admin = await suite.admin_token()
    email = _email()
    resp, user = await suite.request(
        "POST",
        "/v2/user/list",
        token=admin,
        json={"email": email, "password": "first-password", "name": "Ada", "roles": ["approver"]},
    )
    assert resp.status == 201
    assert resp.headers["Location"] == f"/v2/user/{user['id']}"
    assert user["email"] == email and user["roles"] == ["approver"] and user["active"] is True
    assert not {"password", "passwordHash", "password_hash"} & set(user)

    resp, got = await suite.request("GET", f"/v2/user/{user['id']}", token=admin)
    assert resp.status == 200 and got == user

    replaced = {**got, "name": "Ada L.", "roles": ["member"], "email": _email()}
    resp, put = await suite.request("PUT", f"/v2/user/{user['id']}", token=admin, json=replaced)
    assert resp.status == 200, put
    assert (put["name"], put["roles"], put["email"]) == ("Ada L.", ["member"], replaced["email"])

    resp, patched = await suite.request(
        "PATCH",
        f"/v2/user/{user['id']}",
        token=admin,
        json={"name": None},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status == 200, patched
    assert patched["name"] == "" and patched["email"] == replaced["email"]

    resp, _ = await suite.request("DELETE", f"/v2/user/{user['id']}", token=admin)
    assert resp.status == 204
    resp, problem = await suite.request("GET", f"/v2/user/{user['id']}", token=admin)
    assert resp.status == 404 and problem["status"] == 404
    resp, _ = await suite.request("DELETE", f"/v2/user/{user['id']}", token=admin)
    assert resp.status == 404


async def test_admin_sets_a_password_and_the_user_logs_in_with_it(suite: Suite) -> None:
    admin = await suite.admin_token()
    user, old_password, _ = await suite.new_user()
    resp, _ = await suite.request(
        "PATCH", f"/v2/user/{user['id']}", token=admin, json={"password": "assigned-by-admin"}
    )
    assert resp.status == 200
    await suite.token(user["email"], "assigned-by-admin")
    resp, _ = await suite.request(
        "POST", "/v2/requesttoken", json={"email": user["email"], "password": old_password}
    )
    assert resp.status == 401


async def test_members_cannot_manage_users(suite: Suite) -> None:
    other, _, _ = await suite.new_user()
    _, _, member = await suite.new_user()
    calls = [
        ("GET", "/v2/user/list", None),
        ("POST", "/v2/user/list", {"email": _email(), "password": "password-123"}),
        ("GET", f"/v2/user/{other['id']}", None),
        ("PUT", f"/v2/user/{other['id']}", {**other, "roles": ["admin"]}),
        ("PATCH", f"/v2/user/{other['id']}", {"roles": ["admin"]}),
        ("DELETE", f"/v2/user/{other['id']}", None),
    ]
    for method, path, body in calls:
        resp, problem = await suite.request(method, path, token=member, json=body)
        assert resp.status == 403, (method, path, problem)
        assert problem["status"] == 403 and problem["title"] == "Forbidden"
    admin = await suite.admin_token()
    resp, unchanged = await suite.request("GET", f"/v2/user/{other['id']}", token=admin)
    assert unchanged == other


async def test_member_changes_own_password_only_with_the_current_one(suite: Suite) -> None:
    user, password, token = await suite.new_user()
    resp, problem = await suite.request(
        "PATCH", "/v2/user/me", token=token, json={"password": "new-password-9"}
    )
    assert resp.status == 422 and problem["errors"][0]["field"] == "currentPassword"
    resp, problem = await suite.request(
        "PATCH", "/v2/user/me", token=token, json={"password": "new-password-9", "currentPassword": "not-it"}
    )
    assert resp.status == 403
    await suite.token(user["email"], password)  # unchanged
    resp, me = await suite.request(
        "PATCH", "/v2/user/me", token=token, json={"password": "new-password-9", "currentPassword": password}
    )
    assert resp.status == 200, me
    await suite.token(user["email"], "new-password-9")


async def test_member_changes_own_name_without_password_and_cannot_change_roles(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, me = await suite.request("PATCH", "/v2/user/me", token=token, json={"name": "Grace"})
    assert resp.status == 200 and me["name"] == "Grace"
    # The name is not a credential: the token stays valid.
    resp, _ = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200
    resp, problem = await suite.request("PATCH", "/v2/user/me", token=token, json={"roles": ["admin"]})
    assert resp.status == 422 and problem["errors"][0]["field"] == "roles"


async def test_duplicate_email_is_a_conflict_whatever_its_case(suite: Suite) -> None:
    admin = await suite.admin_token()
    user, _, _ = await suite.new_user()
    resp, problem = await suite.request(
        "POST",
        "/v2/user/list",
        token=admin,
        json={"email": user["email"].upper(), "password": "password-123"},
    )
    assert resp.status == 409 and "already exists" in problem["detail"]
    other, _, _ = await suite.new_user()
    resp, _ = await suite.request(
        "PATCH", f"/v2/user/{other['id']}", token=admin, json={"email": user["email"]}
    )
    assert resp.status == 409


async def test_user_bodies_are_validated(suite: Suite) -> None:
    admin = await suite.admin_token()
    invalid = {"email": "not-an-email", "password": "short", "roles": ["emperor"], "extra": 1}
    resp, problem = await suite.request("POST", "/v2/user/list", token=admin, json=invalid)
    assert resp.status == 422
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"email", "password", "roles.0", "extra"}
    assert "short" not in str(problem)  # a password is never echoed
    resp, problem = await suite.request("POST", "/v2/user/list", token=admin, json={"name": "x"})
    assert resp.status == 422
    assert {e["field"] for e in problem["errors"]} == {"email", "password"}
    user, _, _ = await suite.new_user()
    resp, problem = await suite.request(
        "PUT", f"/v2/user/{user['id']}", token=admin, json={"email": _email()}
    )
    assert resp.status == 422  # PUT replaces: every writable field is needed
    resp, problem = await suite.request(
        "PATCH", f"/v2/user/{user['id']}", token=admin, json={"id": str(uuid.uuid4())}
    )
    assert resp.status == 400 and "read-only" in problem["detail"]
    resp, same = await suite.request(
        "PATCH",
        f"/v2/user/{user['id']}",
        token=admin,
        json={"id": user["id"], "createdAt": user["createdAt"]},
    )
    assert resp.status == 200 and same["id"] == user["id"]
    resp, _ = await suite.request("GET", "/v2/user/not-a-uuid", token=admin)
    assert resp.status == 404


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("application/json", b"{not json", 400),
        ("application/json", b"", 400),
        ("application/json", b"[1, 2]", 400),
        ("text/plain", b'{"email": "a@b.c", "password": "x"}', 415),
        ("application/x-www-form-urlencoded", b"email=a@b.c&password=x", 415),
    ],
)
async def test_bad_bodies_get_a_problem_never_a_500(
    suite: Suite, content_type: str, data: bytes, status: int
) -> None:
    for path in ("/v2/requesttoken", "/v2/user/list"):
        token = await suite.admin_token()
        resp, problem = await suite.request(
            "POST", path, token=token, data=data, headers={"Content-Type": content_type}
        )
        assert resp.status == status, (path, problem)
        assert resp.content_type == "application/problem+json"
        assert problem["status"] == status and problem["detail"]


async def test_the_last_admin_cannot_be_removed(suite: Suite) -> None:
    admin_token = await suite.admin_token()
    resp, me = await suite.request("GET", "/v2/user/me", token=admin_token)
    # Other tests may have made admins: demote every other active admin first.
    after = None
    while True:
        query = f"?limit=500&cursor={after}" if after else "?limit=500"
        resp, page = await suite.request("GET", f"/v2/user/list{query}", token=admin_token)
        for u in page:
            if u["id"] != me["id"] and "admin" in u["roles"] and u["active"]:
                r, _ = await suite.request(
                    "PATCH", f"/v2/user/{u['id']}", token=admin_token, json={"active": False}
                )
                assert r.status == 200
        link = resp.headers.get("Link")
        if not link:
            break
        after = link.split("cursor=")[1].split(">")[0]
    for method, body in (("DELETE", None), ("PATCH", {"roles": ["member"]}), ("PATCH", {"active": False})):
        resp, problem = await suite.request(method, f"/v2/user/{me['id']}", token=admin_token, json=body)
        assert resp.status == 409, (method, body, problem)
        assert "last active admin" in problem["detail"]
    resp, still = await suite.request("GET", "/v2/user/me", token=admin_token)
    assert still["roles"] == ["admin"] and still["email"] == ADMIN_EMAIL


async def test_user_list_pages_with_a_link_header(suite: Suite) -> None:
    admin = await suite.admin_token()
    for _ in range(3):
        await suite.new_user()
    seen: list[str] = []
    path = "/v2/user/list?limit=2"
    while path:
        resp, page = await suite.request("GET", path, token=admin)
        assert resp.status == 200 and len(page) <= 2
        seen.extend(u["id"] for u in page)
        link = resp.headers.get("Link")
        path = link[link.index("/v2/") : link.index(">")] if link else ""
    assert len(seen) == len(set(seen)) >= 4
    resp, everything = await suite.request("GET", "/v2/user/list?limit=500", token=admin)
    assert [u["id"] for u in everything] == seen
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=%%%", "cursor=WzFd", "bogus=1"):
        resp, problem = await suite.request("GET", f"/v2/user/list?{bad}", token=admin)
        assert resp.status == 400, (bad, problem)


async def test_a_body_that_arrives_in_pieces_is_read_whole(suite: Suite) -> None:
    """TCP may deliver a body in several segments; both sized and chunked bodies are read to
    the end before parsing (a half-read body once answered 400)."""
    from urllib.parse import urlsplit

    import orjson

    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    body = orjson.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    url = urlsplit(suite.auth_url)
    for chunked in (False, True):
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        writer.write(
            f"POST /v2/requesttoken HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n".encode()
        )
        halves = (body[:20], body[20:])
        for half in halves:
            writer.write(b"%x\r\n%s\r\n" % (len(half), half) if chunked else half)
            await writer.drain()
            await asyncio.sleep(0.1)
        if chunked:
            writer.write(b"0\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        assert b" 200 " in status_line, (chunked, status_line)
