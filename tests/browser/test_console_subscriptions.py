"""The console's subscription and delivery pages as a user drives them in Chromium, against the
suite behind its real nginx: sign in through the form, subscribe a local receiver and see the
secret once, ping it and see the delivery succeed, retry a failed delivery, watch an approval
arrive, the 401 path, sign out. Every test also checks that nothing was fetched from outside
the edge's origin and that no console error (a CSP violation among them) was logged."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from playwright.async_api import expect

from shared.config import Settings
from tests.browser.console_support import (
    SESSION_ENDED,
    ConsolePage,
    console_settings,
    open_console,
    sign_in,
)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.factories import MERGE, new_event, new_subscription
from tests.receiver import Answer, start_receiver

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    return console_settings(database_url, amqp_prefix, signing_pem)


async def open_subscription(console: ConsolePage, subscription_id: str) -> None:
    await console.page.goto(f"{console.origin}/console/#/subscriptions/{subscription_id}")
    await expect(console.page.get_by_role("heading", name=re.compile(r"^Subscription "))).to_be_visible()


def delivery_rows(console: ConsolePage, status: str, topic: str) -> Any:
    table = console.page.locator("table", has=console.page.locator("caption", has_text="Deliveries"))
    return table.locator("tbody tr").filter(has_text=status).filter(has_text=topic)


async def test_the_console_is_served_under_its_own_headers(suite: Suite) -> None:
    resp, _ = await suite.request("GET", "/console/")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"]
    resp, _ = await suite.request("GET", "/console/js/app.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    async with suite.session.get(suite.edge_url + "/console", allow_redirects=False) as moved:
        assert moved.status == 301 and moved.headers["Location"] == "/console/"
    # The API's answers are not the console's: no CSP of its own there.
    resp, _ = await suite.request("GET", "/v2/topic/list", token=await suite.admin_token())
    assert resp.status == 200 and "Content-Security-Policy" not in resp.headers


async def test_sign_in_subscribe_a_receiver_ping_it_and_sign_out(suite: Suite, browser: Any) -> None:
    user, password, _ = await suite.new_user()
    receiver = await start_receiver()
    try:
        console = await open_console(browser, suite)
        page = console.page
        await sign_in(console, user["email"], password)
        await expect(page.get_by_role("navigation", name="Main")).to_contain_text(user["email"])
        # A member sees neither the review queue nor the users.
        await expect(page.get_by_role("link", name="To review")).to_have_count(0)
        await expect(page.get_by_role("link", name="Users")).to_have_count(0)

        await page.get_by_role("link", name="New subscription").click()
        await page.get_by_label("URL", exact=True).fill(receiver.url)
        await page.get_by_role("checkbox", name=re.compile(r"^event\.approved\b")).check()
        await page.get_by_label("Description").fill("my receiver")
        await page.get_by_role("button", name="Create").click()
        dialog = page.get_by_role("dialog")
        secret = await dialog.locator(".secret").inner_text()
        assert secret.startswith("whsec_")
        await dialog.get_by_role("button", name="Close").click()
        await expect(page.get_by_role("heading", name=f"Subscription {receiver.url}")).to_be_visible()
        await expect(page.get_by_text(secret)).to_have_count(0)  # shown once: not on the page

        await page.get_by_role("button", name="Show secret").click()
        await expect(page.get_by_role("dialog").locator(".secret")).to_have_text(secret)
        await page.get_by_role("dialog").get_by_role("button", name="Close").click()

        await page.get_by_role("button", name="Send test ping").click()
        await expect(delivery_rows(console, "succeeded", "webhook.ping")).to_have_count(1)
        (ping,) = await receiver.wait_for(1)
        assert ping.headers["webhook-signature"].startswith("v1,")
        row = delivery_rows(console, "succeeded", "webhook.ping")
        await expect(row).to_contain_text("200")
        await expect(page.get_by_role("img", name=re.compile("1 succeeded"))).to_be_visible()
        await console.screenshot("subscription")

        await row.get_by_role("link").click()
        await expect(page.get_by_role("heading", name="Delivery of webhook.ping")).to_be_visible()
        await expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
        headers = page.locator("table", has=page.locator("caption", has_text="Request headers"))
        await expect(headers).to_contain_text("webhook-signature")
        assert ping.headers["webhook-signature"] not in await headers.inner_text()  # masked
        await console.screenshot("delivery")

        await page.get_by_role("link", name="Subscriptions", exact=True).click()
        listed = page.locator("tbody tr").filter(has_text=receiver.url)
        await expect(listed).to_contain_text("Active")
        await expect(listed).to_contain_text("succeeded")
        # Times read in the browser's zone (Europe/Paris here), the UTC value on hover.
        shown = listed.locator("time")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", await shown.get_attribute("title") or "")
        assert (await shown.get_attribute("datetime") or "").endswith("Z")
        await console.screenshot("subscriptions", full_page=False)

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert await console.token() is None
        await page.goto(f"{suite.edge_url}/console/#/subscriptions")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        console.assert_clean()
    finally:
        await receiver.stop()


async def test_a_failed_delivery_retried_succeeds(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user()
    receiver = await start_receiver(Answer(status=500, body=b"receiver is down"))
    try:
        sub = await new_subscription(suite, token, url=receiver.url, topics=["event.approved"])
        console = await open_console(browser, suite)
        await sign_in(console, user["email"], password)
        await open_subscription(console, sub["id"])
        page = console.page
        await page.get_by_role("button", name="Send test ping").click()
        failed = delivery_rows(console, "failed", "webhook.ping")
        await expect(failed).to_contain_text("500")
        await page.get_by_label("Status", exact=True).select_option("failed")
        await expect(failed).to_have_count(1)
        await failed.get_by_role("link").click()
        await expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
        await expect(page.locator(".attempt pre")).to_have_text("receiver is down")
        await page.get_by_role("button", name="Retry").click()
        await expect(page.get_by_role("heading", name="Attempt 2")).to_be_visible()
        await expect(page.locator("dl.facts .status")).to_have_text("succeeded")
        await receiver.wait_for(2)
        await page.get_by_role("link", name="← The subscription").click()
        await expect(delivery_rows(console, "succeeded", "webhook.ping")).to_have_count(1)
        console.assert_clean()
    finally:
        await receiver.stop()


async def test_an_approval_arrives_in_the_delivery_table(suite: Suite, browser: Any) -> None:
    """A member subscribed to event.approved, an event of theirs approved by an approver: the
    member watches the delivery arrive without reloading."""
    user, password, token = await suite.new_user()
    _, _, approver_token = await suite.new_user(["approver"])
    receiver = await start_receiver()
    try:
        sub = await new_subscription(suite, token, url=receiver.url, topics=["event.approved"])
        console = await open_console(browser, suite)
        await sign_in(console, user["email"], password)
        await open_subscription(console, sub["id"])
        await expect(console.page.get_by_text("No deliveries yet.")).to_be_visible()
        event = await new_event(suite, token)
        resp, body = await suite.request("POST", f"/v2/event/{event['id']}/submit", token=token)
        assert resp.status == 200, body
        resp, body = await suite.request("POST", f"/v2/event/{event['id']}/approve", token=approver_token)
        assert resp.status == 200, body
        (delivered,) = await receiver.wait_for(1)
        envelope = orjson.loads(delivered.body)
        assert envelope["type"] == "event.approved" and envelope["data"]["id"] == event["id"]
        # The table's event id is the webhook's (its webhook-id header).
        row = delivery_rows(console, "succeeded", "event.approved")
        await expect(row).to_contain_text(delivered.webhook_id)
        # On a phone: the table becomes a card per delivery, nothing scrolls sideways.
        await console.page.set_viewport_size({"width": 390, "height": 844})
        await expect(row).to_be_visible()
        assert await console.page.evaluate("() => document.documentElement.scrollWidth") <= 390
        await console.screenshot("subscription-390")
        console.assert_clean()
    finally:
        await receiver.stop()


async def test_a_revoked_token_returns_to_sign_in_with_the_message(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user()
    sub = await new_subscription(suite, token, topics=["event.approved"])
    console = await open_console(browser, suite)
    await sign_in(console, user["email"], password)
    await open_subscription(console, sub["id"])
    resp, body = await suite.request(
        "PATCH",
        "/v2/user/me",
        token=token,
        json={"password": "a-new-password-2", "currentPassword": password},
        headers=MERGE,
    )
    assert resp.status == 200, body
    page = console.page
    await page.get_by_role("button", name="Send test ping").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text(SESSION_ENDED)
    assert await console.token() is None
    await sign_in(console, user["email"], "a-new-password-2")
    console.assert_clean(401)


async def test_the_api_s_422_shows_on_the_field_it_names(suite: Suite, browser: Any) -> None:
    """At 390 px wide (a phone): each problem of the API's 422 under the field it names."""
    user, password, _ = await suite.new_user()
    console = await open_console(browser, suite, width=390, height=844)
    await sign_in(console, user["email"], password)
    page = console.page
    await page.get_by_role("link", name="New subscription").click()
    await page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/hook")
    await page.get_by_role("checkbox", name=re.compile(r"^event\.approved\b")).check()
    await page.get_by_label("Filter").fill('{"data.capacity": {"between": 3}}')
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_label("Filter")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("[data-field=filter] .error")).to_contain_text(
        "filter.data.capacity.between: unknown operator"
    )
    await expect(page.get_by_label("URL", exact=True)).not_to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Filter").fill("")
    await page.get_by_label("Topic patterns").fill("nosuch.topic")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator("fieldset[data-field=topics] .error")).to_contain_text("nosuch.topic")
    await expect(page.get_by_label("Filter")).not_to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    await console.screenshot("new-subscription-390")
    console.assert_clean(422)


async def test_edit_disable_enable_rotate_and_delete(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user()
    sub = await new_subscription(suite, token, topics=["event.approved"])
    console = await open_console(browser, suite)
    await sign_in(console, user["email"], password)
    await open_subscription(console, sub["id"])
    page = console.page
    facts = page.locator("dl.facts")

    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_role("heading", name="Edit subscription")).to_be_visible()
    await expect(page.get_by_label("URL", exact=True)).to_have_value(sub["url"])
    await page.get_by_label("Description").fill("changed here")
    await page.get_by_label("Rate limit").fill("5")
    await page.get_by_role("button", name="Add header").click()
    await page.get_by_label("Header name").fill("X-Receiver-Token")
    await page.get_by_label("Header value").fill("abc")
    await page.get_by_role("button", name="Save").click()
    await expect(facts).to_contain_text("changed here")
    await expect(facts).to_contain_text("X-Receiver-Token")
    await expect(facts).to_contain_text("5 a second")

    await page.get_by_role("button", name="Disable").click()
    await expect(facts.locator(".status")).to_have_text("Disabled")
    await page.get_by_role("button", name="Enable").click()
    await expect(facts.locator(".status")).to_have_text("Active")

    await page.get_by_role("button", name="Rotate secret").click()
    await page.get_by_role("dialog").get_by_role("button", name="Rotate secret").click()
    rotated = await page.get_by_role("dialog").locator(".secret").inner_text()
    assert rotated.startswith("whsec_") and rotated != sub["secret"]
    await page.get_by_role("dialog").get_by_role("button", name="Close").click()

    # "Delete" asks first; from the keyboard: the dialog opens on "Cancel", Tab reaches "Delete".
    await page.get_by_role("button", name="Delete").focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(sub["url"])
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Subscriptions", exact=True)).to_be_visible()
    await expect(page.get_by_text("No subscriptions yet")).to_be_visible()
    resp, _ = await suite.request("GET", f"/v2/subscription/{sub['id']}", token=token)
    assert resp.status == 404
    console.assert_clean()


async def test_recover_failed_and_replay_over_a_window(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user()
    _, _, approver_token = await suite.new_user(["approver"])
    receiver = await start_receiver(Answer(status=503))
    try:
        sub = await new_subscription(suite, token, url=receiver.url, topics=["event.approved"])
        event = await new_event(suite, token)
        for step, holder in (("submit", token), ("approve", approver_token)):
            resp, body = await suite.request("POST", f"/v2/event/{event['id']}/{step}", token=holder)
            assert resp.status == 200, body
        console = await open_console(browser, suite)
        await sign_in(console, user["email"], password)
        await open_subscription(console, sub["id"])
        page = console.page
        (first,) = await receiver.wait_for(1)
        ours = first.webhook_id  # the event's id, the same on every delivery of it
        await expect(delivery_rows(console, "failed", ours)).to_contain_text("503")

        # The window's default start is an hour ago, in the browser's zone.
        await page.get_by_role("button", name="Recover failed").click()
        await expect(page.get_by_role("status")).to_contain_text(
            "1 failed or skipped delivery is being sent again"
        )
        await expect(delivery_rows(console, "succeeded", ours)).to_have_count(1)
        # Replay sends every event of the window the subscription would get now: other tests'
        # approved events too (a member may read them), so only ours is counted.
        await page.get_by_role("button", name="Replay").click()
        await expect(page.get_by_role("status")).to_contain_text("being sent again as")
        await expect(delivery_rows(console, "succeeded", ours)).to_have_count(2)
        assert sum(r.webhook_id == ours for r in await receiver.wait_for(3)) >= 3

        # A window that ends before it starts: the API's 422, on the form.
        await page.get_by_label("Until").fill("2020-01-01T00:00")
        await page.get_by_role("button", name="Replay").click()
        await expect(page.locator("form .form-alert")).to_be_visible()
        console.assert_clean(422)
    finally:
        await receiver.stop()


async def test_keyboard_sign_in_and_a_page_that_fails_to_load(suite: Suite, browser: Any) -> None:
    user, password, _ = await suite.new_user()
    console = await open_console(browser, suite)
    page = console.page
    await expect(page.get_by_label("Email")).to_be_focused()
    await page.keyboard.type(user["email"])
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Subscriptions", exact=True)).to_be_visible()

    await page.route("**/console/js/pages/events.js", lambda route: route.abort())
    await page.get_by_role("link", name="Events").click()
    await expect(page.get_by_role("heading", name="This page is not available")).to_be_visible()
    await expect(page.get_by_role("link", name="Subscriptions", exact=True)).to_be_visible()  # the nav stays
    console.problems = [p for p in console.problems if "net::ERR_FAILED" not in p]
    console.assert_clean()


async def test_the_delivery_table_pages_and_filters(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user()
    receiver = await start_receiver()
    try:
        sub = await new_subscription(suite, token, url=receiver.url, topics=["event.approved"])
        for _ in range(3):
            resp, body = await suite.request("POST", f"/v2/subscription/{sub['id']}/ping", token=token)
            assert resp.status == 202, body
        await receiver.wait_for(3)
        console = await open_console(browser, suite)
        await sign_in(console, user["email"], password)
        page = console.page
        await page.goto(f"{console.origin}/console/#/subscriptions/{sub['id']}?limit=2")
        rows = delivery_rows(console, "", "webhook.ping")
        await expect(rows).to_have_count(2)
        await expect(page.get_by_role("button", name="First page")).to_have_count(0)
        await page.get_by_role("button", name="Next page").click()
        await expect(rows).to_have_count(1)
        await expect(page.get_by_role("button", name="Next page")).to_have_count(0)
        await page.get_by_role("button", name="First page").click()
        await expect(rows).to_have_count(2)
        await page.get_by_label("Status", exact=True).select_option("failed")
        await expect(page.get_by_text("No failed deliveries.")).to_be_visible()
        await page.get_by_label("Status", exact=True).select_option("succeeded")
        await expect(rows).to_have_count(2)
        console.assert_clean()
    finally:
        await receiver.stop()


async def test_an_administrator_sees_every_subscription_with_its_owner(suite: Suite, browser: Any) -> None:
    _, _, token = await suite.new_user()
    sub = await new_subscription(suite, token, topics=["event.approved"])
    console = await open_console(browser, suite)
    await sign_in(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    for link in ("Subscriptions", "Events", "To review", "Locations", "Users"):
        await expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True)
        ).to_be_visible()
    # The list holds every test's subscriptions, oldest first: this one may be pages away.
    await expect(page.locator("thead")).to_contain_text("Owner")
    await open_subscription(console, sub["id"])
    await expect(page.locator("dl.facts")).to_contain_text("event.approved")
    console.assert_clean()
