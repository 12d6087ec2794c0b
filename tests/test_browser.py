"""The web client in a real browser (marker `browser`): Playwright drives Debian's chromium
against a real server started the way the README starts it, on a free port.

A reader's whole first week in one story (answers, progress, a tool, a Daily Do, saving the
workbook, signing in on a second browser, export and import), plus what happens when a save
fails. Screenshots of the main views go to test-output/screenshots/ for review.
Waits are on elements and responses, never on the clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"
# The machine has no network: without these, chromium's background connections fail noisily.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
EMAIL = "willow@example.com"
PASSWORD = "river lantern pocket moss"
FIRST_EXERCISES = ["1.1.1.v1", "1.1.2.v1", "1.1.3.v1", "1.2.1.v1", "1.2.2.v1"]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
                allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402

from tests.servers import free_port, wait_until_up  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="dreamtree-browser-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(folder / "browser.db"), "--port", str(port),
         "--no-rate-limits", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "DREAMTREE_ARGON2": "fast"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(port, proc, why=lambda: f"({(folder / 'server.log').read_text()})")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: .ci/run installs it with apt-get"
    with sync_playwright() as playwright:
        # launch() gives every run a fresh, temporary user-data dir; contexts are separate browsers.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watch:
    """What must never happen on a page: a script error, a console error, a 5xx answer.
    (A 4xx the server gives on purpose, such as a locked exercise, is part of the story; the
    browser's own "failed to load" console line for it is not counted.)"""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self.console)
        page.on("response", lambda r: self.errors.append(f"{r.status} from {r.url}") if r.status >= 500 else None)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "the server responded with a status of 4" not in message.text:
            self.errors.append(f"console: {message.text}")


def new_page(browser: Browser, server: str, **options: object) -> tuple[Page, Watch]:
    context = browser.new_context(**{"base_url": server, "viewport": PHONE, "accept_downloads": True, **options})  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    page = context.new_page()
    return page, Watch(page)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def answer_current(page: Page, exercise: str, text: str) -> None:
    expect(page.locator("article.exercise")).to_have_attribute("data-exercise", exercise)
    page.get_by_label("Your answer").fill(text)
    with page.expect_response(lambda r: r.url.endswith(f"/api/exercises/{exercise}/response")) as saved:
        page.get_by_role("button", name="Save and continue").click()
    assert saved.value.status == 200
    expect(page.locator("article.exercise")).not_to_have_attribute("data-exercise", exercise)
    expect(page.locator("#flash")).to_contain_text("Saved.")


def save_workbook(page: Page, email: str) -> str:
    """Save the page's anonymous workbook as an account (the password is PASSWORD); the
    recovery code it showed once."""
    nav(page, "Save your workbook")
    claim = page.locator("form.claim-form")
    claim.get_by_label("Email").fill(email)
    claim.get_by_label("Password", exact=True).fill(PASSWORD)
    claim.get_by_label("I understand").check()
    claim.get_by_role("button", name="Save my workbook").click()
    code = page.locator("#recovery-code").inner_text(timeout=10_000)
    page.get_by_role("button", name="I've saved it").click()
    return code


def test_a_reader_works_through_the_first_week_and_takes_it_to_another_browser(
        browser: Browser, server: str, tmp_path: Path) -> None:
    page, watch = new_page(browser, server, timezone_id="Pacific/Auckland")

    # First visit: an anonymous workbook starts, with the resume card as the first Daily Do.
    with page.expect_response(lambda r: r.url.endswith("/api/session") and r.status == 201):
        page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to DreamTree")
    shoot(page, "01-home-first-visit")
    page.get_by_role("link", name="Continue →").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Career So Far")
    expect(page.locator(".block-prompt")).to_contain_text("List every role you have held")
    shoot(page, "02-exercise")

    # Answers move the reader on; the first one unlocks the List tool.
    answers = {exercise: f"My answer to {exercise}, written in the browser." for exercise in FIRST_EXERCISES}
    answer_current(page, FIRST_EXERCISES[0], answers[FIRST_EXERCISES[0]])
    expect(page.locator("#flash")).to_contain_text("You unlocked a new tool")
    for exercise in FIRST_EXERCISES[1:]:
        answer_current(page, exercise, answers[exercise])
    expect(page.locator("#flash")).to_contain_text("You finished module 1.2")

    # The outline shows progress, finished modules, and what is still locked.
    nav(page, "Workbook")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your workbook")
    expect(page.locator("main")).to_contain_text("5 of 35 exercises answered (14%)")
    module_1_1 = page.locator("section.module", has=page.get_by_role("heading", name="Taking Stock"))
    expect(module_1_1.locator(".badge")).to_have_text("Complete")
    expect(page.locator('[data-exercise="1.2.3.v1"] .status')).to_contain_text("Ready for you")
    locked = page.locator('[data-exercise="1.3.1.v1"]')
    expect(locked.locator(".status")).to_have_text("Locked")
    expect(locked.get_by_role("link")).to_have_count(0)
    shoot(page, "03-outline")

    # An earlier answer reopens and can be edited; a locked exercise says so.
    page.get_by_role("link", name="Your Career So Far").click()
    expect(page.get_by_label("Your answer")).to_have_value(answers["1.1.1.v1"])
    answers["1.1.1.v1"] = "Barista, teacher, parent, volunteer coach."
    page.get_by_label("Your answer").fill(answers["1.1.1.v1"])
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your changes are saved.")).to_be_visible()
    page.goto("/workbook/1.3.1.v1")
    expect(page.get_by_role("heading", level=1)).to_contain_text("This exercise is still locked")

    # The unlocked List tool: create, edit and delete entries through the schema-drawn form.
    nav(page, "Tools")
    expect(page.locator('[data-tool="list-builder"]')).not_to_have_class("tool-card locked")
    expect(page.locator('[data-tool="resume-builder"]')).to_contain_text("Locked")
    page.get_by_role("link", name="Lists").click()
    page.get_by_role("button", name="New list").click()
    page.get_by_label("Title").fill("Roles I have loved")
    page.get_by_role("button", name="Add item").click()
    page.get_by_label("Item 1", exact=True).fill("Coaching the under-10s")
    page.get_by_role("button", name="Add item").click()
    page.get_by_label("Item 2", exact=True).fill("Running the book club")
    page.get_by_role("button", name="Save").click()
    entry = page.locator("li.entry")
    expect(entry.get_by_role("heading")).to_have_text("Roles I have loved")
    expect(entry).to_contain_text("Running the book club")
    page.get_by_role("button", name="Edit Roles I have loved").click()
    page.get_by_label("Title").fill("Roles I loved most")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your changes are saved.")).to_be_visible()
    expect(entry.get_by_role("heading")).to_have_text("Roles I loved most")
    shoot(page, "04-tool")
    page.get_by_role("button", name="New list").click()
    page.get_by_label("Title").fill("A list to throw away")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("li.entry")).to_have_count(2)
    page.get_by_role("button", name="Delete A list to throw away").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("li.entry")).to_have_count(1)

    # Daily Dos, for the browser's own day: the Flow Log (unlocked by 1.2.2) is due today.
    with page.expect_request(lambda r: "/api/daily-dos?tz=Pacific%2FAuckland" in r.url):
        nav(page, "Today")
    expect(page.get_by_role("heading", level=1)).to_have_text("Today")
    shoot(page, "05-home-daily-dos")
    page.get_by_role("link", name="Flow Log →").click()
    expect(page).to_have_url(f"{server}/tools/flow-tracker")
    page.get_by_role("button", name="New flow log").click()
    page.get_by_label("Activity").fill("Sketching the garden plan")
    page.get_by_label("Energy").select_option("4")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("li.entry").get_by_role("heading")).to_have_text("Sketching the garden plan")
    nav(page, "Today")
    expect(page.get_by_role("heading", name="Your Daily Dos")).to_be_visible()
    expect(page.get_by_role("link", name="Flow Log →")).to_have_count(0)

    # Saving the workbook: the honest warning, then the recovery code shown once.
    nav(page, "Save your workbook")
    claim = page.locator("form.claim-form")
    expect(claim).to_contain_text("your answers are gone for good")
    claim.get_by_label("Email").fill(EMAIL)
    claim.get_by_label("Password", exact=True).fill(PASSWORD)
    claim.get_by_label("I understand").check()
    claim.get_by_role("button", name="Save my workbook").click()
    code = page.locator("#recovery-code")
    expect(code).not_to_be_empty()
    expect(page.locator("main")).to_contain_text("We show it only this once")
    shoot(page, "06-recovery-code")
    page.get_by_role("button", name="I've saved it").click()
    expect(page.locator("#account-email")).to_have_text(EMAIL)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Account", exact=True)).to_be_visible()

    # A second browser with an unsaved answer of its own signs in and leaves that answer behind.
    other, other_watch = new_page(browser, server)
    other.goto("/workbook/1.1.1.v1")
    answer_current(other, "1.1.1.v1", "Typed in the second browser before signing in.")
    nav(other, "Save your workbook")
    login = other.locator("form.login-form")
    login.get_by_label("Email").fill(EMAIL)
    login.get_by_label("Password", exact=True).fill(PASSWORD)
    login.get_by_role("button", name="Sign in").click()
    dialog = other.get_by_role("dialog")
    expect(dialog).to_contain_text("answers that aren't saved to any account yet")
    dialog.get_by_role("button", name="Leave them behind").click()
    expect(other.locator("#flash")).to_contain_text("You're signed in.")
    other.goto("/workbook/1.1.1.v1")
    expect(other.get_by_label("Your answer")).to_have_value(answers["1.1.1.v1"])
    other.goto("/workbook/1.2.2.v1")
    expect(other.get_by_label("Your answer")).to_have_value(answers["1.2.2.v1"])
    nav(other, "Account")
    expect(other.locator("li.device")).to_have_count(2)
    shoot(other, "07-account-devices")

    # Export (protected by the password) and import into a third, fresh browser.
    nav(other, "Your data")
    other.get_by_label("Your password").fill(PASSWORD)
    with other.expect_download() as download:
        other.get_by_role("button", name="Download my workbook").click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert document["version"] == "1.1" and document["encrypted"] is True
    assert exported.name.startswith("dreamtree-export-")

    assert answers["1.1.1.v1"] not in exported.read_text(encoding="utf-8")

    third, third_watch = new_page(browser, server)
    third.goto("/data")
    third.get_by_label("Export file").set_input_files(exported)
    third.get_by_label("Password for the file").fill(PASSWORD)
    third.get_by_role("button", name="Check the file first").click()
    expect(third.locator(".report")).to_contain_text("nothing written yet")
    # The page uploads the downloaded file as it is, its password in a header.
    with third.expect_request(lambda r: "/api/import?dry_run=false" in r.url) as upload:
        third.get_by_role("button", name="Import").click()
    assert upload.value.post_data == exported.read_text(encoding="utf-8")
    assert upload.value.headers["x-export-password"] == PASSWORD
    report = third.locator(".report")
    expect(report).to_contain_text("What was imported")
    expect(report.get_by_role("row", name="Tool entries")).to_contain_text("2")
    shoot(third, "08-import-report")
    nav(third, "Workbook")
    expect(third.locator("main")).to_contain_text("5 of 35 exercises answered")
    third.goto("/workbook/1.1.1.v1")
    expect(third.get_by_label("Your answer")).to_have_value(answers["1.1.1.v1"])

    assert watch.errors == other_watch.errors == third_watch.errors == []


def test_a_saved_reader_downloads_a_readable_copy_marked_as_unencrypted(
        browser: Browser, server: str, tmp_path: Path) -> None:
    page, watch = new_page(browser, server)
    page.goto("/workbook/1.1.1.v1")
    answer = "Gardener, librarian, and the one who kept the team's notes."
    answer_current(page, "1.1.1.v1", answer)
    save_workbook(page, "rowan@example.com")
    expect(page.locator("#account-email")).to_have_text("rowan@example.com")

    # The page says which file is which; the readable copy asks for the password again.
    nav(page, "Your data")
    expect(page.locator("main")).to_contain_text("Encrypted file")
    page.get_by_label("Your password").fill(PASSWORD)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download a readable copy").click()
    expect(page.locator(".export-form [role=status]")).to_contain_text("readable (unencrypted) copy")
    readable = tmp_path / download.value.suggested_filename
    download.value.save_as(readable)
    assert "unencrypted" in readable.name
    text = readable.read_text(encoding="utf-8")
    assert json.loads(text)["encrypted"] is False
    assert answer in text
    assert watch.errors == []


def test_a_failed_save_keeps_what_was_typed_and_says_why(browser: Browser, server: str) -> None:
    page, watch = new_page(browser, server)
    page.goto("/workbook/1.1.1.v1")
    too_long = "All the roles I have had. " * 3000  # over the 64 KiB an answer may hold
    page.get_by_label("Your answer").fill(too_long)
    page.get_by_role("button", name="Save and continue").click()
    error = page.locator("form.answer-form .form-error")
    expect(error).to_contain_text("at most 64 KiB")
    expect(page.get_by_label("Your answer")).to_have_value(too_long)
    expect(page.locator("article.exercise")).to_have_attribute("data-exercise", "1.1.1.v1")

    # The same in the account form: a common password is refused, nothing typed is cleared.
    page.goto("/account")
    claim = page.locator("form.claim-form")
    claim.get_by_label("Email").fill("sparrow@example.com")
    claim.get_by_label("Password", exact=True).fill("correcthorsebatterystaple")
    claim.get_by_label("I understand").check()
    claim.get_by_role("button", name="Save my workbook").click()
    expect(claim.locator(".form-error")).to_contain_text("common passwords")
    expect(claim.get_by_label("Email")).to_have_value("sparrow@example.com")
    expect(claim.get_by_label("Password", exact=True)).to_have_value("correcthorsebatterystaple")
    shoot(page, "09-form-error")
    assert watch.errors == []


def test_settings_apply_at_once_and_the_self_assessment_draws_its_summary(browser: Browser, server: str) -> None:
    page, watch = new_page(browser, server)
    page.goto("/settings")

    def change(label: str, *, select: str | None = None) -> None:
        with page.expect_response(lambda r: r.url.endswith("/api/settings") and r.request.method == "PATCH") as saved:
            if select is None:
                page.get_by_label(label).check()
            else:
                page.get_by_label(label, exact=True).select_option(select)
        assert saved.value.status == 200

    change("Night")
    expect(page.locator(".notice")).to_contain_text("hard to read")
    change("Ivory")
    expect(page.locator(".notice")).to_be_hidden()
    change("OpenDyslexic")
    expect(page.locator("html")).to_have_attribute("data-font", "dyslexic")
    change("Your type", select="INFP")
    expect(page.get_by_text("Saved.")).to_be_visible()
    shoot(page, "10-settings")
    page.reload()
    # The saved settings come back with the reader (GET /api/me) and are applied then.
    expect(page.locator("html")).to_have_attribute("data-background", "night")
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(27, 33, 48)"
    expect(page.get_by_label("Your type")).to_have_value("INFP")

    nav(page, "Strengths")
    expect(page.locator(".summary")).to_contain_text("Once you've rated a few competencies")
    for competency, level in [("analytical-thinking", "5"), ("teamwork-and-team-leadership", "2"),
                              ("strategic-thinking", "3")]:
        page.locator(f'fieldset[data-competency="{competency}"]').get_by_label(level, exact=True).check()
    page.get_by_role("button", name="Save my ratings").click()
    expect(page.get_by_text("Saved 3 ratings.")).to_be_visible()
    expect(page.locator(".chart")).to_contain_text("Overall")
    expect(page.locator(".summary-lists")).to_contain_text("Strengths")
    shoot(page, "11-strengths")

    page.goto("/credits")
    expect(page.get_by_role("heading", level=1)).to_have_text("Credits and sources")
    expect(page.locator(".citations em").first).to_be_visible()
    assert watch.errors == []


def answer_everything(page: Page) -> None:
    """Answers every exercise through the API (the page's own cookies), to unlock every tool."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    outline = page.request.get("/api/workbook").json()
    for part in outline["parts"]:
        for module in part["modules"]:
            for exercise in module["exercises"]:
                response = page.request.put(f"/api/exercises/{exercise['full_exercise_id']}/response",
                                            data={"response": {"answer": "done"}}, headers={"x-csrftoken": token})
                assert response.status == 200, response.text()


def test_every_tool_has_a_working_form(browser: Browser, server: str) -> None:
    """The forms are drawn from each tool's content schema: every one of the ten saves an entry,
    nested groups included, and shows it back."""
    page, watch = new_page(browser, server, viewport={"width": 1024, "height": 800})
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    answer_everything(page)
    nav(page, "Tools")
    cards = page.locator(".tool-card")
    expect(cards).to_have_count(10)
    expect(page.locator(".tool-card.locked")).to_have_count(0)
    tools = [cards.nth(i).get_attribute("data-tool") for i in range(10)]
    for tool in tools:
        page.goto(f"/tools/{tool}")
        page.locator(".new-entry button").click()
        form = page.locator("form.tool-form")
        for add in form.locator("fieldset.schema-array > button").element_handles():
            add.click()  # one row in every top-level list: nested groups are drawn and filled too
        for control in form.locator("[required]").element_handles():
            control.fill("2026-11" if control.get_attribute("type") == "month" else f"First {tool}")
        if tool == "resume-builder":
            shoot(page, "12-tool-form-resume")
        form.get_by_role("button", name="Save").click()
        expect(page.locator("li.entry")).to_have_count(1)
        expect(page.locator("li.entry h3")).to_have_text("November 2026" if tool == "budget-calculator" else f"First {tool}")
    page.goto("/tools")
    expect(page.locator('[data-tool="budget-calculator"] .tool-meta')).to_contain_text("1 entry")
    assert watch.errors == []


def test_a_small_phone_and_a_keyboard_are_enough(browser: Browser, server: str) -> None:
    """320 px wide, no mouse: every view fits without sideways scrolling, and an exercise can be
    reached, answered and saved with the keyboard alone, focus landing on the next heading."""
    page, watch = new_page(browser, server, viewport={"width": 320, "height": 640})
    page.goto("/workbook/1.1.1.v1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your Career So Far")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    for _ in range(10):
        if page.evaluate("document.activeElement.tagName") == "TEXTAREA":
            break
        page.keyboard.press("Tab")
    expect(page.get_by_label("Your answer")).to_be_focused()
    page.keyboard.type("A bookshop, a school, a kitchen.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save and continue")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Why Now?")
    expect(page.get_by_role("heading", level=1)).to_be_focused()

    for path in ["/", "/workbook", "/workbook/1.1.2.v1", "/tools", "/tools/list-builder", "/competencies",
                 "/settings", "/account", "/data", "/credits"]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 320px"
    assert watch.errors == []


def test_signing_out_warns_first_and_the_recovery_code_opens_the_account_again(browser: Browser, server: str) -> None:
    page, watch = new_page(browser, server)
    page.goto("/workbook/1.1.1.v1")
    answer_current(page, "1.1.1.v1", "Something worth keeping.")

    # Signing out of an unsaved workbook deletes it: the page asks first, and Cancel keeps it.
    nav(page, "Save your workbook")
    start_over = page.get_by_role("button", name="Delete this workbook and start over")
    start_over.click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    nav(page, "Workbook")
    expect(page.locator("main")).to_contain_text("1 of 35 exercises answered")
    nav(page, "Save your workbook")
    page.get_by_role("button", name="Delete this workbook and start over").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete and start over").click()
    expect(page.locator("#flash")).to_contain_text("Your old workbook is deleted")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to DreamTree")

    # Save the fresh one, sign out, and come back with the recovery code and a new password.
    code = save_workbook(page, "heron@example.com")
    page.get_by_role("button", name="Sign out of this device").click()
    expect(page.locator("#flash")).to_contain_text("You're signed out")
    nav(page, "Save your workbook")
    page.get_by_text("Forgot your password?").click()
    recover = page.locator("form.recover-form")
    recover.get_by_label("Email").fill("heron@example.com")
    recover.get_by_label("Recovery code").fill(code)
    recover.get_by_label("New password", exact=True).fill("a brand new pass phrase")
    recover.get_by_role("button", name="Set a new password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new password is set")
    expect(page.locator("#recovery-code")).not_to_have_text(code)
    page.get_by_role("button", name="I've saved it").click()
    expect(page.locator("#account-email")).to_have_text("heron@example.com")
    assert watch.errors == []


def test_the_api_documentation_loads_only_from_this_origin(browser: Browser, server: str) -> None:
    """/schema: Swagger UI renders the API from files the app serves itself, under the same CSP
    as the page; a request to any other origin, or a CSP violation (a console error), fails."""
    page, watch = new_page(browser, server, viewport={"width": 1200, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto("/schema")
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".info .title")).to_contain_text("DreamTree store")
    operation = page.locator(".opblock").filter(has_text="/api/session").first
    operation.click()
    expect(operation.locator(".responses-wrapper")).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot(page, "api-documentation")
    assert requested and all(url.startswith(server + "/") for url in requested), requested
    assert f"{server}/schema/openapi.json" in requested
    assert watch.errors == []


def test_a_file_of_the_original_app_keeps_what_this_one_has_no_field_for(
        browser: Browser, server: str, tmp_path: Path) -> None:
    """Spec §9's example, uploaded through the page: the SOARED story's `outcome` has no field
    here, so the page shows it read-only (in the entry and in its edit form), and it is still
    there after the reader edits the story."""
    from tests.test_portability import spec_example

    original = tmp_path / "dreamtree-original.json"
    original.write_text(json.dumps(spec_example()), encoding="utf-8")
    page, watch = new_page(browser, server)
    page.goto("/data")
    page.get_by_label("Export file").set_input_files(original)
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".report")).to_contain_text("What was imported")
    expect(page.locator(".report")).to_contain_text("fields this installation does not know (outcome)")

    page.goto("/tools/soared-story")
    entry = page.locator("li.entry")
    expect(entry).to_have_count(1)
    kept = entry.locator(".kept-fields")
    expect(kept).to_contain_text("Kept from an imported file")
    expect(kept.locator("dt")).to_have_text(["Outcome"])
    expect(kept.locator("dd")).to_have_text(["..."])
    shoot(page, "13-kept-fields")

    entry.get_by_role("button", name="Edit SOARED Story").click()
    form = page.locator("form.tool-form")
    expect(form.locator(".kept-fields dd")).to_have_text(["..."])  # shown, not an input
    expect(form.locator(".kept-fields input, .kept-fields textarea")).to_have_count(0)
    form.get_by_label("Situation").fill("The launch slipped a week")
    with page.expect_response(lambda r: "/api/tool-instances/" in r.url and r.request.method == "PUT") as saved:
        form.get_by_role("button", name="Save").click()
    assert saved.value.status == 200
    content = saved.value.json()["content"]
    assert content["situation"] == "The launch slipped a week" and content["outcome"] == "..."
    expect(page.locator("li.entry .kept-fields dd")).to_have_text(["..."])
    assert watch.errors == []
