"""The console's scenarios in a real browser: sign in and out, drop a job file and watch it
complete, read its logs and outputs, stop a running job, see a bad file's field errors,
manage bundles, and read it all on a phone-sized screen."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from playwright.async_api import FilePayload, Page, Route, expect

from shared.accounts import ensure_account, new_api_key
from shared.store import open_store
from tests.e2e.conftest import ARTIFACTS, SAMPLE, SAMPLE_KEY, Dev, sign_in

pytestmark = pytest.mark.timeout(180)
JOB_PAGE = re.compile(r"#/jobs/([\w-]+)$")


def fetch_and_store(dev: Dev, tag: str) -> str:
    return json.dumps({"tags": ["console", tag], "tasks": [
        {"tool": "storage:get", "parameters": {
            "source": f"s3://{dev.settings.s3_bucket}/{SAMPLE_KEY}",
            "destination": "in/console.txt"}},
        {"tool": "debug:log", "parameters": {"messages": ["first line", "second line"]}},
        {"tool": "storage:put", "parameters": {"source": "in/*.txt"}},
    ]})


async def drop_file(page: Page, name: str, text: str) -> None:
    """What a user's drag and drop does: a drop event whose DataTransfer holds the file."""
    transfer = await page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, {type: "application/json"}));
            return transfer;
        }""", [name, text])
    zone = page.get_by_role("region", name="Drop a job file")
    await zone.dispatch_event("dragover", {"dataTransfer": transfer})
    await zone.dispatch_event("drop", {"dataTransfer": transfer})


async def test_sign_in_with_the_keyboard_and_out_again(page: Page, dev: Dev) -> None:
    await page.goto("/")
    await page.get_by_label("API key").fill("nobody.wrongwrongwrongwrongwrongwrongwrong")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("That API key was not accepted.")).to_be_visible()

    await expect(page.get_by_label("API key")).to_be_focused()
    await page.get_by_label("API key").fill(dev.key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('conveyor.apiKey')") == dev.key
    await expect(page.get_by_text("demo", exact=True)).to_be_visible()  # who is signed in

    # From the keyboard: the page's heading has the focus, Tab reaches its first control,
    # and the focus is drawn.
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_focused()
    await page.keyboard.press("Tab")
    submit_link = page.get_by_role("link", name="Submit a job")
    await expect(submit_link).to_be_focused()
    assert await submit_link.evaluate("link => getComputedStyle(link).outlineStyle") == "solid"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Submit a job")).to_be_visible()

    await page.reload()  # the key stays for the tab's session
    await expect(page.get_by_role("heading", name="Submit a job")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('conveyor.apiKey')") is None


async def test_drop_a_job_file_watch_it_complete_and_read_logs_and_outputs(
    page: Page, dev: Dev
) -> None:
    await sign_in(page, dev.key)
    await page.get_by_role("link", name="Submit", exact=True).click()
    await drop_file(page, "fetch.json", fetch_and_store(dev, "dropped"))
    await expect(page).to_have_url(JOB_PAGE)
    match = JOB_PAGE.search(page.url)
    assert match is not None
    job_id = match.group(1)

    # The page follows the job without a reload until it completes.
    summary = page.locator("dl.summary").first
    await expect(summary.get_by_text("Completed")).to_be_visible(timeout=60_000)
    tasks = page.locator("li.task")
    await expect(tasks).to_have_count(3)
    for index in range(3):
        await expect(tasks.nth(index).locator(".badge")).to_have_text("Completed")
    await expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    await expect(page.locator(".metrics dd").nth(3)).to_have_text(re.compile(r"^\d"))  # GB in

    output = tasks.nth(2).get_by_role("link", name=re.compile(r"console\.txt$"))
    await expect(output).to_be_visible()
    # The file is on the storage's origin: it opens in a tab of its own, not in this one.
    assert await output.get_attribute("target") == "_blank"
    download = await page.request.get(await output.get_attribute("href") or "")
    assert download.status == 200
    assert await download.body() == SAMPLE

    await tasks.nth(1).get_by_text("Log of task 2").click()
    log = page.get_by_role("log", name="Log of task 2")
    await expect(log).to_contain_text("first line")
    await expect(log).to_contain_text("second line")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "job-page.png", full_page=True)  # docs/console.png
    await expect(page.get_by_role("button", name="Restart")).to_be_visible()
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    # The jobs list shows it, filtered by its tag, with a link back to it.
    await page.get_by_role("link", name="Jobs", exact=True).click()
    await page.get_by_label("Tag").fill("dropped")
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f"tr[data-job='{job_id}']")
    await expect(row).to_contain_text("Completed")
    await expect(row).to_contain_text("local")
    await expect(row).to_contain_text("100 %")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await row.get_by_role("link", name=job_id).click()
    await expect(page.get_by_role("heading", name=f"Job {job_id}")).to_be_visible()


async def test_jobs_list_updates_live_and_a_running_job_can_be_stopped(
    page: Page, dev: Dev
) -> None:
    await sign_in(page, dev.key)
    await page.get_by_role("link", name="Submit", exact=True).click()
    sleeper = json.dumps({"tags": ["console", "sleeper"], "tasks": [
        {"tool": "debug:log", "parameters": {"messages": ["about to sleep"]}},
        {"tool": "debug:sleep", "parameters": {"seconds": 120}}]})
    await page.get_by_label("Job JSON").fill(sleeper)
    await page.get_by_role("button", name="Submit job").click()
    await expect(page).to_have_url(JOB_PAGE)
    match = JOB_PAGE.search(page.url)
    assert match is not None
    job_id = match.group(1)

    # Back on the list, the row turns Running by itself (no reload).
    await page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator(f"tr[data-job='{job_id}']")
    await expect(row).to_contain_text("Running", timeout=30_000)

    await row.get_by_role("link", name=job_id).click()
    sleep_task = page.locator("li.task").nth(1)
    await expect(sleep_task.locator(".badge")).to_have_text("Running", timeout=30_000)
    # A running task's log opens and tails by itself.
    await expect(sleep_task.locator("details")).to_have_attribute("open", "")
    await expect(sleep_task.locator(".log-status")).to_have_text("Following the log…")
    await page.get_by_role("button", name="Stop").click()
    await expect(page.get_by_role("status").filter(has_text="Job stopped.")).to_be_visible()
    await expect(page.locator("dl.summary").first.get_by_text("Cancelled")).to_be_visible()
    await expect(sleep_task.locator(".badge")).to_have_text("Cancelled")
    await expect(page.get_by_role("button", name="Resubmit")).to_be_visible()


async def test_a_bad_job_file_shows_the_apis_field_errors(page: Page, dev: Dev) -> None:
    await sign_in(page, dev.key)
    await page.goto("/#/submit")
    bad = json.dumps({"region": "mars", "tasks": [
        {"tool": "storage:get", "parameters": {}},
        {"tool": "debug:sleep", "parameters": {"seconds": -1}}]})
    chosen: FilePayload = {"name": "bad.json", "mimeType": "application/json",
                           "buffer": bad.encode()}
    await page.get_by_label("Job file", exact=True).set_input_files(files=[chosen])
    errors = page.locator("#job-errors li")
    await expect(page.get_by_role("heading", name="The API refused this job")).to_be_visible()
    await expect(errors.filter(has_text="tasks.0.parameters.source")).to_have_count(1)
    await expect(errors.filter(has_text="tasks.1.parameters.seconds")).to_contain_text(
        "greater than or equal to 0")
    await expect(errors.filter(has_text="region")).to_contain_text("unknown region 'mars'")
    await expect(errors).to_have_count(3)
    await expect(page.get_by_label("Job JSON")).to_have_value(bad)  # left there to fix

    await page.get_by_label("Job JSON").fill("{not json")
    await page.get_by_role("button", name="Submit job").click()
    await expect(errors.filter(has_text="body")).to_contain_text("not valid JSON")


async def test_bundles_are_listed_searched_and_created_by_config_users(
    page: Page, dev: Dev
) -> None:
    await sign_in(page, dev.key)
    await page.get_by_role("link", name="Bundles").click()
    await page.get_by_label("Bundle name").fill("2017-03-Encodings")
    await page.get_by_role("button", name="Create bundle").click()
    await expect(page.get_by_role("cell", name="2017-03-Encodings", exact=True)).to_be_visible()
    await page.get_by_label("Search bundles").fill("nothing-like-it")
    await expect(page.get_by_text("No bundles match.")).to_be_visible()
    await page.get_by_label("Search bundles").fill("encod")
    await expect(page.get_by_role("cell", name="2017-03-Encodings", exact=True)).to_be_visible()
    await page.get_by_label("Bundle name").fill("2017-03-Encodings")
    await page.get_by_role("button", name="Create bundle").click()
    await expect(page.get_by_role("status").filter(has_text="already")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, dev.plain_key)
    await expect(page.get_by_role("link", name="Bundles")).to_be_hidden()


async def test_readable_on_a_phone(page: Page, dev: Dev) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, dev.key)
    await page.goto("/#/jobs?tag=console")
    await expect(page.locator("tbody tr").first.get_by_role("link")).to_be_visible(
        timeout=30_000)
    assert await page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    # Rows are stacked cards that name each field.
    label = await page.locator("tbody td").first.evaluate(
        "cell => getComputedStyle(cell, '::before').content")
    assert label == '"Job"'


async def test_restart_and_resubmit_a_finished_job(page: Page, dev: Dev) -> None:
    await sign_in(page, dev.key)
    await page.goto("/#/submit")
    await page.get_by_label("Job JSON").fill(json.dumps({"tags": ["console", "again"], "tasks": [
        {"tool": "debug:log", "parameters": {"messages": ["once more"]}}]}))
    await page.get_by_role("button", name="Submit job").click()
    await expect(page).to_have_url(JOB_PAGE)
    first = page.url
    summary = page.locator("dl.summary").first
    await expect(summary.get_by_text("Completed")).to_be_visible(timeout=60_000)

    log_lines = page.get_by_role("log", name="Log of task 1").locator(".log-line")
    await expect(log_lines.filter(has_text="once more")).to_have_count(1)
    await page.get_by_role("button", name="Restart").click()
    await expect(page.get_by_role("status").filter(has_text="Job restarted.")).to_be_visible()
    # The same job runs again, and its log goes on with the second run's line.
    await expect(log_lines.filter(has_text="once more")).to_have_count(2, timeout=60_000)
    await expect(summary.get_by_text("Completed")).to_be_visible(timeout=60_000)
    assert page.url == first

    await page.get_by_role("button", name="Resubmit").click()
    await expect(page).not_to_have_url(first)
    await expect(page).to_have_url(JOB_PAGE)
    await expect(page.locator("dl.summary").first.get_by_text("Completed")).to_be_visible(
        timeout=60_000)
    await expect(page.get_by_role("log", name="Log of task 1")).to_contain_text("once more")


async def exhaust_the_minute(http: aiohttp.ClientSession, logs: str) -> None:
    """Spend the key's log calls of the last 60 s. The window moves, so the first of them
    frees a slot only 60 s after it was made: the console meets the limit for most of that."""
    for _ in range(1000):
        async with http.get(logs) as response:
            if response.status == 429:
                assert int(response.headers["Retry-After"]) >= 15, response.headers
                return
            assert response.status == 200, await response.text()
    raise AssertionError("the log route never answered 429")


async def test_a_rate_limited_log_waits_as_retry_after_says(page: Page, dev: Dev) -> None:
    key = new_api_key()
    async with open_store(dev.settings, "console-test") as store:
        await ensure_account(store, "limited", "lee", key, roles=[])
    headers = {"Authorization": f"api-key {key}"}
    async with aiohttp.ClientSession(dev.url, headers=headers) as http:
        async with http.post("/api/jobs/", json={"tasks": [
                {"tool": "debug:log", "parameters": {"messages": ["hidden for now"]}}]}) as made:
            job = await made.json()
        await exhaust_the_minute(http, f"/api/jobs/{job['id']}/tasks/1/logs/")

    await sign_in(page, key)
    await page.goto(f"/#/jobs/{job['id']}")
    status = page.locator("li.task .log-status")
    await expect(status).to_have_text(re.compile(
        r"Log requests are rate-limited; trying again in \d+ s\."), timeout=30_000)
    await expect(page.locator("li.task .log")).to_be_empty()  # nothing read, nothing shown


async def test_polling_backs_off_and_honours_waits(page: Page, dev: Dev) -> None:
    """The console's Poller, stepped by hand: the delays it schedules after each outcome."""
    await page.goto("/")
    result = await page.evaluate("""async () => {
        const { Poller } = await import("/console/poll.js");
        const outcomes = [{changed: true}, {}, {}, {error: new Error("down")},
                          {wait: 5000}, {changed: true}, {done: true}];
        const poller = new Poller(async () => outcomes.shift(),
                                  {min: 100, max: 1000, factor: 2});
        const delays = [];
        poller.schedule = (ms) => delays.push(ms);
        poller.running = true;
        for (let i = 0; i < 7; i++) await poller.tick();
        return {delays, running: poller.running};
    }""")
    assert result == {"delays": [100, 200, 400, 800, 5000, 100], "running": False}


async def test_jobs_are_listed_a_page_at_a_time(page: Page, dev: Dev) -> None:
    key = new_api_key()
    async with open_store(dev.settings, "console-test") as store:
        await ensure_account(store, "paged", "pia", key, roles=[])
    async with aiohttp.ClientSession(dev.url, headers={"Authorization": f"api-key {key}"}
                                     ) as http:
        made = []
        for number in range(21):
            async with http.post("/api/jobs/", json={"tags": [f"n{number}"], "tasks": [
                    {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}) as response:
                assert response.status == 201
                made.append((await response.json())["id"])

    await sign_in(page, key)
    pager = page.get_by_role("navigation", name="Pages")
    await expect(pager).to_contain_text("Page 1 of 2 (21 jobs)")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_have_attribute("data-job", made[-1])  # newest first
    await pager.get_by_role("link", name="Next page").click()
    await expect(pager).to_contain_text("Page 2 of 2 (21 jobs)")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-job", made[0])
    await pager.get_by_role("link", name="Previous page").click()
    await expect(rows).to_have_count(20)


async def test_the_focus_stays_where_the_user_is(page: Page, dev: Dev) -> None:
    """Live updates do not take the focus away; the skip link keeps the page; an action
    whose button goes away hands the focus to the next action."""
    async with aiohttp.ClientSession(dev.url, headers={"Authorization": f"api-key {dev.key}"}
                                     ) as http, http.post("/api/jobs/", json={
            "tags": ["console", "focus"], "tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 60}}]}) as response:
        assert response.status == 201
        job_id = (await response.json())["id"]
    await sign_in(page, dev.key)
    await page.goto("/#/jobs?tag=focus")
    row = page.locator(f"tr[data-job='{job_id}']")
    await expect(row).to_contain_text("Running", timeout=30_000)
    link = row.get_by_role("link", name=job_id)
    await link.focus()
    await row.evaluate("row => { row.dataset.before = 'yes'; }")
    # The running job's progress changes, and the list is drawn again.
    await expect(row).not_to_have_attribute("data-before", "yes", timeout=15_000)
    await expect(link).to_be_focused()

    await link.press("Enter")
    heading = page.get_by_role("heading", name=f"Job {job_id}")
    await expect(heading).to_be_focused()
    skip = page.get_by_role("link", name="Skip to content")
    await skip.focus()
    await skip.press("Enter")
    await expect(heading).to_be_focused()
    assert page.url.endswith(f"#/jobs/{job_id}"), "the skip link left the page"

    stop = page.get_by_role("button", name="Stop")
    await stop.focus()
    await stop.press("Enter")
    await expect(page.get_by_role("button", name="Restart")).to_be_focused()

    # A header link followed from the keyboard: the new page's heading has the focus.
    jobs = page.get_by_role("navigation", name="Console").get_by_role("link", name="Jobs")
    await jobs.focus()
    await jobs.press("Enter")
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_focused()


async def test_bad_addresses_and_a_gateway_that_does_not_answer(page: Page, dev: Dev) -> None:
    await sign_in(page, dev.key)
    await page.goto("/#/jobs?tag=none-such&page=99")
    await expect(page).to_have_url(re.compile(r"page=1$"))
    await expect(page.get_by_role("navigation", name="Pages")).to_contain_text("Page 1 of 1")

    await page.goto("/#/jobs?status=Bogus")
    await expect(page.get_by_role("status").filter(
        has_text="Cannot list jobs with this filter")).to_be_visible()

    # A bundle filter (the Bundles page's links) is shown, and can be dropped.
    await page.goto("/#/jobs?job_bundle_id=b1234567890&tag=console")
    await expect(page.get_by_text("Only the jobs of job bundle b1234567890")).to_be_visible()
    await page.get_by_role("link", name="Show jobs of every bundle").click()
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    assert "job_bundle_id" not in page.url
    assert "tag=console" in page.url

    # Reloaded while the gateway does not answer: the key is kept, and a retry gets in.
    await page.route("**/api/me", lambda route: route.abort())
    await page.reload()
    await expect(page.get_by_role("heading", name="Conveyor is not answering")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('conveyor.apiKey')") == dev.key
    await page.unroute("**/api/me")
    await page.get_by_role("button", name="Try again").click()
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()


async def test_long_values_fit_a_phone(page: Page, dev: Dev) -> None:
    await page.set_viewport_size({"width": 320, "height": 640})
    long_tag = "x" * 60
    async with aiohttp.ClientSession(dev.url, headers={"Authorization": f"api-key {dev.key}"}
                                     ) as http, http.post("/api/jobs/", json={
            "tags": ["console", long_tag, "phone"], "tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}) as response:
        assert response.status == 201
        job_id = (await response.json())["id"]
    await sign_in(page, dev.key)
    for address, shows_tag in (("/#/jobs?tag=phone", True), (f"/#/jobs/{job_id}", True),
                               ("/#/submit", False)):
        await page.goto(address)
        await expect(page.locator("main h1")).to_be_visible()
        if shows_tag:
            await expect(page.get_by_text(long_tag).first).to_be_visible()
        assert await page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"), address


async def test_a_submission_whose_answer_was_lost_is_not_made_twice(
    page: Page, dev: Dev
) -> None:
    """The gateway makes the job but its answer never reaches the tab; submitting again sends
    the same Idempotency-Key, so the job is answered again, not made a second time."""
    await sign_in(page, dev.key)
    await page.goto("/#/submit")
    lost: list[str] = []

    async def lose_the_first_answer(route: Route) -> None:
        if route.request.method == "POST" and not lost:
            answer = await route.fetch()  # the gateway gets it and makes the job
            lost.append(answer.headers.get("location", ""))
            await route.abort()
        else:
            await route.continue_()

    await page.route("**/api/jobs/", lose_the_first_answer)
    job = json.dumps({"tags": ["console", "lost-answer"], "tasks": [
        {"tool": "debug:log", "parameters": {"messages": ["once"]}}]})
    await page.get_by_label("Job JSON").fill(job)
    await page.get_by_role("button", name="Submit job").click()
    await expect(page.get_by_role("status").filter(
        has_text="the job may have been submitted")).to_be_visible()
    await page.get_by_role("button", name="Submit job").click()
    await expect(page).to_have_url(JOB_PAGE)
    assert lost
    assert lost[0].rstrip("/").endswith(page.url.rsplit("/", 1)[1])
    async with aiohttp.ClientSession(dev.url, headers={"Authorization": f"api-key {dev.key}"}
                                     ) as http, http.get("/api/jobs/?tag=lost-answer") as listed:
        assert (await listed.json())["count"] == 1
