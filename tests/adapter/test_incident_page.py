"""The incident page in a real headless Chromium (Selenium), during a real heal: a
stopped Redis in a compose project, RedisDown posted as Alertmanager posts it, the
collection's redis_down playbook run by the adapter. The page is never reloaded.

Screenshots go to $IR_SCREENSHOT_DIR (docs/images keeps the README's) or the test's
temporary folder."""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness.adapter import adapter_process, alert, redis_down_route
from tests.harness.docker import CacheApp, pings

pytestmark = pytest.mark.integration

LAPTOP = (1280, 900)
PHONE = (390, 844)
# Untrusted alert text: shown as text, never run.
HOSTILE = '<img src=x onerror="window.pwned=1">Redis <b>unreachable</b>'


@pytest.fixture
def browsers():
    """Start Chromium at a given size; every browser is closed afterwards."""
    started = []

    def start(size: tuple[int, int]) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
            options.add_argument(argument)
        options.binary_location = "/usr/bin/chromium"
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        driver.set_window_size(*size)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("IR_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(driver, adapter, path: str = "/incidents") -> None:
    driver.get(adapter.url + path)
    driver.find_element(By.ID, "token").send_keys(adapter.token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(path) and d.find_elements(By.ID, "main"))
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live").text == "live")
    driver.execute_script("window.notReloaded = true")


def text_of(driver, selector: str) -> str:
    """The visible text of every match, read at once (live updates replace the elements)."""
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText).join(' ')"
    return driver.execute_script(script, selector)


def report_of(driver) -> str:
    return driver.execute_script("return document.querySelector('#report .report-body').textContent")


def no_horizontal_scroll(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_a_real_heal_appears_live_on_laptop_and_phone(tmp_path, browsers, shots):
    folder = tmp_path / "cache-app"
    folder.mkdir()
    with CacheApp(folder, "ir-test-page") as app:
        subprocess.run(["docker", "stop", app.redis_container()], check=True, capture_output=True, timeout=60)
        route = redis_down_route(app.folder, app.name, app.redis_port)
        with adapter_process(tmp_path / "adapter", [route]) as adapter:
            phone, laptop = browsers(PHONE), browsers(LAPTOP)
            sign_in(phone, adapter)
            sign_in(laptop, adapter)
            assert "Nothing open" in text_of(phone, "#main")

            started = time.monotonic()
            annotations = {"summary": "Redis unreachable for more than 2 minutes", "description": HOSTILE}
            answer = adapter.fire([alert("RedisDown", "redis", annotations=annotations)])
            incident = answer["decisions"][0]["incident_id"]
            laptop.get(f"{adapter.url}/incidents/{incident}")
            laptop.execute_script("window.notReloaded = true")
            assert not laptop.find_elements(By.CSS_SELECTOR, ".tiers li"), "opened before the first tier ran"

            # The list on the phone: the new incident appears, running, without a reload.
            row = f'li.incident[data-incident="{incident}"]'
            WebDriverWait(phone, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
            assert "RedisDown" in text_of(phone, row)
            WebDriverWait(laptop, 60).until(lambda d: "detected" in text_of(d, ".timeline"))
            laptop.save_screenshot(str(shots / "incident-page-healing-laptop.png"))
            phone.save_screenshot(str(shots / "incident-list-healing-phone.png"))

            # The incident page: the tier, its verification and the outcome arrive live.
            WebDriverWait(laptop, 120).until(lambda d: "start" in text_of(d, ".tiers .tier-name"))
            WebDriverWait(laptop, 120).until(lambda d: "healed" in text_of(d, ".hero .badge"))
            assert "verified" in text_of(laptop, ".tiers .badge")
            assert "run 1 finished: healed" in text_of(laptop, ".timeline")
            assert pings(app.redis_port)
            WebDriverWait(laptop, 60).until(lambda d: "Incident Report" in report_of(d))
            assert {"service-status", "service-logs", "check"} <= set(
                text_of(laptop, ".evidence summary strong").split()
            )
            assert laptop.execute_script("return window.notReloaded === true && window.pwned === undefined")
            shown = laptop.execute_script("return document.querySelector('.labels').textContent")
            assert HOSTILE in shown and not laptop.find_elements(By.CSS_SELECTOR, ".labels img")
            laptop.save_screenshot(str(shots / "incident-page-healed-laptop.png"))
            WebDriverWait(phone, 30).until(lambda d: "healed" in text_of(d, row + " .badge"))
            assert phone.execute_script("return window.notReloaded === true && window.pwned === undefined")
            assert no_horizontal_scroll(phone)
            phone.save_screenshot(str(shots / "incident-list-healed-phone.png"))

            phone.get(f"{adapter.url}/incidents/{incident}")
            WebDriverWait(phone, 60).until(lambda d: "Incident Report" in report_of(d))
            phone.find_element(By.CSS_SELECTOR, "#report summary").click()
            assert no_horizontal_scroll(phone)
            phone.save_screenshot(str(shots / "incident-page-healed-phone.png"))

            # Open feeds do not hold the adapter up when it stops.
            stopping = time.monotonic()
            adapter.stop()
            assert time.monotonic() - stopping < 10
            print(f"heal seen live in {stopping - started:.1f} s")


def test_without_signing_in_nothing_is_shown(adapter, browsers):
    answer = adapter.fire([alert(service="svc-secret")])
    incident = answer["decisions"][0]["incident_id"]
    adapter.wait_runs_final()

    for path in (
        "/api/v1/board",
        "/api/v1/events",
        f"/api/v1/incidents/{incident}/view",
        f"/api/v1/incidents/{incident}/report",
        f"/api/v1/incidents/{incident}/evidence/x.json",
        f"/incidents/{incident}/report",
    ):
        refused = httpx.get(adapter.url + path, timeout=10)
        assert refused.status_code == 401, path
        assert incident not in refused.text and "svc-secret" not in refused.text
    forged = {"remediate_session": "eyJwcmluY2lwYWwiOiJiZWFyZXIifQ.forged.signature"}
    unknown = "0000000000000000-20000101000000"
    for path in ("/incidents", f"/incidents/{incident}", f"/incidents/{incident}?part=main"):
        page = httpx.get(adapter.url + path, cookies=forged, timeout=10, follow_redirects=True)
        assert page.url.path == "/login"
        assert "TestDown" not in page.text and "svc-secret" not in page.text
        # The sign-in page names only the address asked for: the same for an incident that does not exist.
        other = httpx.get(adapter.url + path.replace(incident, unknown), timeout=10, follow_redirects=True)
        assert page.text.replace(incident, unknown) == other.text
    wrong = httpx.post(adapter.url + "/login", data={"token": "not-the-token"}, timeout=10)
    assert wrong.status_code == 401 and "remediate_session" not in wrong.headers.get("set-cookie", "")

    browser = browsers(PHONE)
    browser.get(f"{adapter.url}/incidents/{incident}")
    assert browser.current_url.startswith(adapter.url + "/login")
    assert "svc-secret" not in browser.page_source and "TestDown" not in browser.page_source

    # Signed in, the same browser sees the incident; the cookie is not readable by scripts.
    browser.find_element(By.ID, "token").send_keys(adapter.token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: "svc-secret" in text_of(d, "#main"))
    assert browser.execute_script("return document.cookie") == ""
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
