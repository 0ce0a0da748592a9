"""The example project in a real browser: admin contact actions and the test-message page.

Drives Debian's Chromium with Playwright against `manage.py demo` (SQLite, the mounted sandbox,
the contact worker thread), and checks the outcome in the sandbox's JSON inspection API.
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser

APP_ID = "demo-app"


def contact_addresses(site) -> set[str]:
    return {c["emailAddress"] for c in site.sandbox_api(f"contacts?appId={APP_ID}")["contacts"]}


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the sandbox")
        time.sleep(0.25)


def run_user_action(page, site, usernames: list[str], action: str) -> None:
    page.goto(site.url + "/admin/auth/user/?o=1")
    for username in usernames:
        row = page.locator("#result_list tbody tr", has_text=username).first
        row.locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def assert_djangos_breadcrumbs(page) -> None:
    """Django's own breadcrumbs, styled by the admin's CSS: an <ol> from 6.1, a <div> before."""
    import django

    tag = "ol" if django.VERSION >= (6, 1) else "div"
    crumbs = page.locator(f"{tag}.breadcrumbs")
    assert crumbs.count() == 1
    assert crumbs.locator("a", has_text="Home").count() == 1
    assert crumbs.locator("a", has_text="Users").count() == 1
    # Styled (the admin's --breadcrumbs-bg), not a bare list of links.
    background = crumbs.evaluate("element => getComputedStyle(element).backgroundColor")
    assert background == "rgb(38, 75, 93)", background


def test_sync_and_delete_contacts_from_the_user_admin(admin_page, example_site):
    page, site = admin_page, example_site
    demo_users = {"ada.lovelace@example.com", "alan.turing@example.com"}
    # The worker delivers the demo users the demo command created.
    wait_for(lambda: demo_users <= contact_addresses(site))

    run_user_action(page, site, ["ada", "alan"], "delete_sendflare_contact")
    # The confirmation page names the addresses, like Django's "Delete selected".
    page.wait_for_selector("text=ada.lovelace@example.com")
    assert page.locator("text=alan.turing@example.com").count() >= 1
    assert_djangos_breadcrumbs(page)
    assert demo_users <= contact_addresses(site)  # nothing happens before confirming
    page.click("input[type=submit]")
    page.wait_for_selector("ul.messagelist")
    messages = page.inner_text("ul.messagelist")
    assert "ada.lovelace@example.com" in messages and "alan.turing@example.com" in messages
    assert not demo_users & contact_addresses(site)
    # The do-not-sync mark holds: a save of the user does not bring the contact back.
    page.goto(site.url + "/admin/auth/user/?q=ada")
    page.click("#result_list tbody tr a")
    page.fill("#id_first_name", "Augusta Ada")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    time.sleep(3)  # more than the worker's interval
    assert "ada.lovelace@example.com" not in contact_addresses(site)

    run_user_action(page, site, ["ada", "alan"], "sync_to_sendflare")
    page.wait_for_selector("ul.messagelist")
    assert demo_users <= contact_addresses(site)
    ada = next(
        c
        for c in site.sandbox_api(f"contacts?appId={APP_ID}")["contacts"]
        if c["emailAddress"] == "ada.lovelace@example.com"
    )
    assert ada["firstName"] == "Augusta Ada"


def test_send_a_test_message_and_find_it_in_the_inbox(admin_page, example_site):
    page, site = admin_page, example_site
    page.goto(site.url + "/send/")
    page.fill("#id_to", "grace.hopper@example.com, barbara.liskov@example.com")
    page.fill("#id_subject", "Browser test ✓")
    page.fill("#id_body", "<p>Hello <script>alert(1)</script>from the browser test</p>")
    page.click("button[type=submit]")
    status = page.inner_text("[role=status]")
    assert re.search(r"Queued for 2 recipient\(s\)", status), status
    # The status page follows the message from queued (the worker polls every second) to sent.
    states = page.locator("#recipients td.state").all_inner_texts()
    assert set(states) <= {"queued", "sending", "sent"} and len(states) == 2, states
    page.wait_for_function(
        "() => [...document.querySelectorAll('#recipients td.state')]"
        ".every(td => td.textContent.trim() === 'sent')",
        timeout=30_000,
    )
    assert page.locator("text=Done.").count() == 1

    messages = site.sandbox_api("messages")["messages"]
    ours = [m for m in messages if m["subject"] == "Browser test ✓"]
    assert sorted(m["to"] for m in ours) == [
        "barbara.liskov@example.com",
        "grace.hopper@example.com",
    ]
    assert all(m["from"] == "demo@example.com" for m in ours)

    # The inbox lists it, and shows the body without running its script.
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(site.url + "/sandbox/_sandbox/")
    page.click("text=Browser test ✓ >> nth=0")
    page.wait_for_selector("text=from the browser test")
    assert dialogs == []


def test_a_bad_address_is_refused_with_its_reason(admin_page, example_site):
    page, site = admin_page, example_site
    before = len(site.sandbox_api("messages")["messages"])
    page.goto(site.url + "/send/")
    page.fill("#id_to", "not an address")
    page.click("button[type=submit]")
    assert "not a valid email address" in page.inner_text("[role=status]")
    assert len(site.sandbox_api("messages")["messages"]) == before
