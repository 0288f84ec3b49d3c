"""The web console in headless Chromium, driven by Playwright, against a real `conveyor dev`.

The browser is the system's Chromium (`CONVEYOR_CHROMIUM`, default /usr/bin/chromium;
`scripts/ensure-test-tools` installs Debian's package): Playwright never downloads one. Each
test gets a fresh browser context (so a fresh sessionStorage), and leaves a screenshot of
where it ended under test-artifacts/console/."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from services.dev.servers import free_port
from shared.accounts import ensure_account
from shared.objects import open_objects
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import ServerUrls, cleanup, isolated_settings, process_env
from tests.processes import conveyor, wait_status

CHROMIUM = os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions",
                  "--no-first-run", "--mute-audio"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DEV_KEY = "consolekey.0123456789abcdefghijklmnopqrstu"
PLAIN_KEY = "plainkey1.0123456789abcdefghijklmnopqrstu"
SAMPLE_KEY = "samples/console.txt"
SAMPLE = b"Hello from the console test.\n"


@dataclass(frozen=True)
class Dev:
    url: str
    key: str  # the demo user's: CONFIG role in organization `demo`
    plain_key: str  # a user of another organization, without CONFIG
    settings: Settings


@pytest.fixture(scope="module")
async def dev(servers: ServerUrls, tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[Dev]:
    settings = isolated_settings(servers)
    env = process_env(servers, settings, CONVEYOR_DEV_API_KEY=DEV_KEY,
                      CONVEYOR_GRACE_PERIOD="5")
    folder = tmp_path_factory.mktemp("console-dev")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        async with conveyor(["dev", "--port", str(port), "--data-dir", str(folder / "dev"),
                             "--no-demo"], env, folder / "dev.log") as child:
            await wait_status(f"{url}/readyz", 200, child, within=90)
            async with open_objects(settings) as objects:
                await objects.upload_bytes(SAMPLE_KEY, SAMPLE, "text/plain")
            async with open_store(settings, "console-test") as store:
                await ensure_account(store, "plain", "pat", PLAIN_KEY, roles=[])
            yield Dev(url, DEV_KEY, PLAIN_KEY, settings)
    finally:
        await cleanup(settings)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/ensure-test-tools, or set "
                    "CONVEYOR_CHROMIUM to a Chromium binary")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, dev: Dev, request: pytest.FixtureRequest
               ) -> AsyncIterator[Page]:
    """A fresh tab at the console; script errors and policy violations fail the test."""
    context = await browser.new_context(base_url=dev.url, viewport={"width": 1280,
                                                                    "height": 900})
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    def console_error(message: ConsoleMessage) -> None:
        # An API answer of 4xx is logged by the browser itself; anything else (a script
        # error, a Content-Security-Policy violation) is the console's fault.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    tab.on("console", console_error)
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        await tab.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        await context.close()
    assert errors == [], errors


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Jobs", exact=True).wait_for()
