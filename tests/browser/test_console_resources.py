"""The console's events, locations and review queue as people drive them in Chromium: a member
creates a location and an event and submits it; an approver approves it from "To review"; the
member sees it approved with its history; a save over someone else's change is explained (412)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.console_support import ConsolePage, open_console, sign_in
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def draft(suite: Suite, token: str, title: str, day: str, **fields: Any) -> dict[str, Any]:
    """A draft event of the token's user on `day` (YYYY-MM-DD), made through the API."""
    body = {"title": title, "startsAt": f"{day}T18:00:00Z", "endsAt": f"{day}T20:00:00Z", **fields}
    resp, event = await suite.request("POST", "/v2/event/list", token=token, json=body)
    assert resp.status == 201, event
    assert isinstance(event, dict)
    return event


async def console_at(browser: Any, suite: Suite, email: str, password: str, route: str) -> ConsolePage:
    """A new browser session signed in as `email`, at the console's `route` (#/...)."""
    console = await open_console(browser, suite)
    await sign_in(console, email, password)
    await console.page.goto(f"{console.origin}/console/{route}")
    return console


async def test_member_submits_and_approver_approves_an_event(suite: Suite, browser: Any) -> None:
    member, member_password, member_token = await suite.new_user(["member"])
    approver, approver_password, _ = await suite.new_user(["approver"])

    console = await console_at(browser, suite, member["email"], member_password, "#/locations/new")
    page = console.page
    await page.get_by_label("Name").fill("Main hall")
    await page.get_by_label("Time zone").fill("Europe/Paris")
    await page.get_by_label("Capacity").fill("120")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="Main hall")).to_be_visible()

    await page.goto(f"{console.origin}/console/#/events")
    await page.get_by_role("link", name="New event").click()
    await page.get_by_label("Title").fill("Console demo night")
    await page.get_by_label("Description").fill("Drinks and a demo.")
    await page.get_by_label("Starts").fill("2027-03-04T18:00")
    await page.get_by_label("Ends").fill("2027-03-04T21:00")
    await page.get_by_label("Location").select_option(label="Main hall")
    await page.get_by_label("Capacity").fill("80")
    await page.get_by_label("Tags").fill("launch, party")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="Console demo night")).to_be_visible()
    event_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator(".facts")).to_contain_text("draft")

    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator(".facts")).to_contain_text("pending")
    # The owner never reviews their own event: no Approve for them.
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(page.get_by_role("button", name="Withdraw")).to_be_visible()
    console.assert_clean()

    resp, stored = await suite.request("GET", f"/v2/event/{event_id}", token=member_token)
    assert resp.status == 200 and stored["status"] == "pending"
    # 18:00 in Paris (the browser's zone) in March is 17:00 UTC.
    assert stored["startsAt"] == "2027-03-04T17:00:00.000Z" and stored["capacity"] == 80
    assert stored["tags"] == ["launch", "party"] and stored["locationId"]

    console = await open_console(browser, suite)
    page = console.page
    await sign_in(console, approver["email"], approver_password)
    await page.get_by_role("link", name="To review").click()
    # Other tests' pending events share the database: search narrows the queue to this one.
    await page.get_by_label("Search").fill("console demo night")
    await page.get_by_label("Search").press("Enter")
    row = page.locator("tr", has_text="Console demo night")
    await expect(row).to_be_visible()
    await console.screenshot("review")
    await row.get_by_role("button", name="Approve").press("Enter")
    await expect(page.locator("tr", has_text="Console demo night")).to_have_count(0)
    console.assert_clean()

    console = await console_at(browser, suite, member["email"], member_password, f"#/events/{event_id}")
    page = console.page
    await expect(page.locator(".facts")).to_contain_text("approved")
    history = page.locator(".history")
    await expect(history.locator("tbody tr")).to_have_count(2)
    await expect(history).to_contain_text("Submit")
    await expect(history).to_contain_text("Approve")
    await console.screenshot("event")
    await page.get_by_role("button", name="Cancel").click()
    await page.get_by_role("dialog").get_by_role("button", name="Keep it").click()
    await expect(page.locator(".facts")).to_contain_text("approved")

    await page.goto(f"{console.origin}/console/#/events?mine=1")
    await expect(page.locator("tr", has_text="Console demo night")).to_be_visible()
    await console.screenshot("events")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("tr", has_text="Console demo night")).to_be_visible()
    await console.screenshot("events-390")
    console.assert_clean()


async def test_filters_sort_and_pages_of_the_event_list_by_keyboard(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user(["member"])
    for title, tag in (("Board games night", "games"), ("Quiet reading", "books"), ("Chess club", "games")):
        await draft(suite, token, title, "2027-05-01", tags=[tag])

    console = await console_at(browser, suite, user["email"], password, "#/events?limit=2")
    page = console.page
    # Keyboard only: Space ticks the box, Enter in a field submits the filters.
    await page.get_by_label("Mine only").focus()
    await page.keyboard.press("Space")
    await page.get_by_label("Tag").focus()
    await page.keyboard.type("games")
    await page.keyboard.press("Enter")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("tbody")).not_to_contain_text("Quiet reading")

    await page.get_by_label("Tag").fill("")
    await page.get_by_label("Status").select_option("draft")
    await page.get_by_label("Sort").select_option(label="Title, A to Z")
    await page.get_by_role("button", name="Filter").press("Enter")
    await expect(rows.first).to_contain_text("Board games night")
    await expect(rows).to_have_count(2)
    await page.get_by_role("button", name="Next page").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Quiet reading")
    await expect(page.get_by_role("button", name="Next page")).to_have_count(0)
    await page.go_back()
    await expect(rows.first).to_contain_text("Board games night")
    console.assert_clean()


async def test_a_refusal_shows_the_apis_words(suite: Suite, browser: Any) -> None:
    """An admin who edited a pending event may not approve it (four-eyes rule): the button is
    offered (only the API knows who edited), and its 403 is shown as the API words it."""
    _, _, token = await suite.new_user(["member"])
    event = await draft(suite, token, "Garden party", "2027-07-01")
    resp, _ = await suite.request("POST", f"/v2/event/{event['id']}/submit", token=token)
    assert resp.status == 200
    admin = await suite.admin_token()
    resp, _ = await suite.request("PATCH", f"/v2/event/{event['id']}", token=admin, json={"capacity": 40})
    assert resp.status == 200

    console = await console_at(browser, suite, ADMIN_EMAIL, ADMIN_PASSWORD, f"#/events/{event['id']}")
    page = console.page
    await page.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("nobody may approve content they wrote (four-eyes rule)")
    await expect(page.locator(".facts")).to_contain_text("pending")
    console.assert_clean(403)


async def test_saving_over_someone_elses_change_is_explained(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user(["member"])
    event = await draft(suite, token, "Team lunch", "2027-06-01")

    console = await console_at(browser, suite, user["email"], password, f"#/events/{event['id']}")
    page = console.page
    await expect(page.get_by_role("heading", name="Team lunch")).to_be_visible()

    # Someone else (here: the API, as the same owner) changes it while the page is open.
    resp, _ = await suite.request(
        "PATCH", f"/v2/event/{event['id']}", token=token, json={"title": "Team lunch (moved)"}
    )
    assert resp.status == 200

    await page.get_by_label("Title").fill("Team lunch, mine")
    await page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert").filter(has_text="Someone else changed this event since you opened it.")
    await expect(alert).to_be_visible()
    await alert.get_by_role("button", name="Reload their version").click()
    await expect(page.get_by_role("heading", name="Team lunch (moved)")).to_be_visible()

    # Their version is what the form holds now: saving it again works.
    await page.get_by_label("Title").fill("Team lunch, mine")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="Team lunch, mine")).to_be_visible()

    # A 422 lands on the field it names.
    await page.get_by_label("Ends").fill("2027-06-01T17:00")
    await page.get_by_role("button", name="Save").click()
    ends = page.get_by_label("Ends")
    await expect(ends).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-endsAt-error")).to_have_text("must not be before startsAt")
    console.assert_clean(412, 422)

    resp, stored = await suite.request("GET", f"/v2/event/{event['id']}", token=token)
    assert stored["title"] == "Team lunch, mine" and stored["version"] == 3


async def test_a_location_is_edited_and_kept_while_an_event_uses_it(suite: Suite, browser: Any) -> None:
    user, password, token = await suite.new_user(["member"])
    resp, hall = await suite.request("POST", "/v2/location/list", token=token, json={"name": "Small hall"})
    assert resp.status == 201
    await draft(suite, token, "Poetry evening", "2027-08-01", locationId=hall["id"])

    console = await console_at(browser, suite, user["email"], password, "#/locations")
    page = console.page
    await page.get_by_label("Search").fill("small hall")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name="Small hall").click()
    await page.get_by_label("Name").fill("Small hall, first floor")
    await page.get_by_label("Time zone").fill("Mars/Olympus")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#f-timezone-error")).to_have_text(
        "must be an IANA time zone such as Europe/Paris"
    )
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="Small hall, first floor")).to_be_visible()

    await page.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("alert")).to_contain_text("an event still refers to this location")
    await expect(page.get_by_role("heading", name="Small hall, first floor")).to_be_visible()
    console.assert_clean(409, 422)
