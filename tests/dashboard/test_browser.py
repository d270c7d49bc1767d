"""The dashboard in a real browser: Debian's chromium, driven through chromium-driver
(Selenium), against a real broker with real MQTT clients. Each page's screenshot is saved in
build/artifacts/dashboard/ (or $CULEX_ARTIFACTS) to be looked at."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from paho_client import Paho
from support import WAIT, BrokerProcess, mosquitto_sub, sub_lines
from web_support import start_dashboard_broker

ARTIFACTS = Path(os.environ.get("CULEX_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "build" / "artifacts") / "dashboard"


def chromium() -> WebDriver:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("chromium and chromium-driver are needed (scripts/test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=en"):
        options.add_argument(argument)
    # The driver is Debian's, given by path: Selenium must not look for one to download.
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, str]]:
    broker, port = start_dashboard_broker(tmp_path_factory.mktemp("dashboard"))
    try:
        yield broker, f"http://127.0.0.1:{port}/"
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def until(browser: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = WAIT
          ) -> Any:
    return WebDriverWait(browser, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def click(browser: WebDriver, selector: str) -> None:
    """Click what the selector finds, again if the page redrew it meanwhile (a live page
    redraws tables whenever the broker's figures change)."""
    def clicked(b: WebDriver) -> bool:
        b.find_element(By.CSS_SELECTOR, selector).click()
        return True
    until(browser, clicked)


def text_of(browser: WebDriver, selector: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def shot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(browser: WebDriver, base: str, user: str, password: str) -> None:
    browser.delete_all_cookies()
    browser.get(base)
    until(browser, lambda b: b.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "username").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "sign-in").click()


def go(browser: WebDriver, base: str, page: str) -> None:
    browser.get(f"{base}#{page}")
    until(browser, lambda b: b.find_element(By.ID, f"page-{page}").is_displayed())


@pytest.fixture
def admin(browser: WebDriver, site: tuple[BrokerProcess, str]) -> WebDriver:
    sign_in(browser, site[1], "admin", "admin-pw")
    until(browser, lambda b: b.find_element(By.ID, "nav").is_displayed())
    return browser


def test_login_is_required(browser: WebDriver, site: tuple[BrokerProcess, str]) -> None:
    base = site[1]
    sign_in(browser, base, "admin", "wrong")
    until(browser, lambda b: "Wrong user name" in text_of(b, "#login-error"))
    assert not browser.find_element(By.ID, "nav").is_displayed()
    shot(browser, "login-refused")
    sign_in(browser, base, "bob", "bob-pw")  # a right password, but no $SYS grant
    until(browser, lambda b: "Wrong user name" in text_of(b, "#login-error"))
    assert not browser.find_element(By.ID, "nav").is_displayed()
    sign_in(browser, base, "admin", "admin-pw")
    until(browser, lambda b: b.find_element(By.ID, "page-overview").is_displayed())
    assert browser.find_element(By.ID, "user").text == "admin"


def test_a_published_message_appears_in_the_topic_tree_within_a_second(
        admin: WebDriver, site: tuple[BrokerProcess, str]) -> None:
    broker, base = site
    go(admin, base, "topics")
    until(admin, lambda b: b.execute_script("return document.readyState") == "complete")
    publisher = Paho(broker.port, client_id="capteur-bureau", username="bob",
                     password="bob-pw").connect()
    try:
        selector = "li[data-path='maison/bureau/temperature'] > .node .value"
        for value in ("23.5", "23.75"):
            sent = time.monotonic()
            publisher.client.publish("maison/bureau/temperature", value, qos=1).wait_for_publish(
                WAIT)
            until(admin, lambda b, v=value: text_of(b, selector) == v, timeout=1.0)
            assert time.monotonic() - sent < 1.0
        admin.find_element(By.CSS_SELECTOR,
                           "li[data-path='maison/bureau/temperature'] > .node").click()
        until(admin, lambda b: text_of(b, "#topic-payload") == "23.75")
        shot(admin, "topics")
    finally:
        publisher.stop()


def test_the_overview_chart_moves(admin: WebDriver, site: tuple[BrokerProcess, str]) -> None:
    broker, base = site
    go(admin, base, "overview")

    def points(b: WebDriver) -> str:
        found = b.find_elements(By.CSS_SELECTOR, "#chart-messages polyline")
        return found[0].get_attribute("points") or "" if found else ""

    until(admin, lambda b: points(b) != "")
    before = points(admin)
    publisher = Paho(broker.port, client_id="rafale", username="bob", password="bob-pw").connect()
    try:
        for index in range(200):
            publisher.client.publish("maison/salon/temperature", str(index), qos=0)
        until(admin, lambda b: points(b) != before)
        until(admin, lambda b: text_of(b, "#figure-in") not in ("", "0", "\u2013"))
        shot(admin, "overview")
    finally:
        publisher.stop()


def test_disconnecting_a_client_from_the_page(admin: WebDriver,
                                              site: tuple[BrokerProcess, str]) -> None:
    broker, base = site
    victim = Paho(broker.port, mqtt.MQTTv5, "fenetre-chambre", username="bob",
                  password="bob-pw").connect()
    try:
        go(admin, base, "clients")
        row = "tr[data-client='fenetre-chambre']"
        until(admin, lambda b: b.find_elements(By.CSS_SELECTOR, row))
        click(admin, row)
        until(admin, lambda b: text_of(b, "#client-detail h2") == "fenetre-chambre")
        shot(admin, "clients")
        click(admin, "#disconnect-client")
        assert victim.disconnected.wait(WAIT)
        assert str(victim.disconnect_reason) == "Administrative action"  # 0x98
        # Its session was clean: it leaves the list (a persistent one would show offline).
        until(admin, lambda b: not b.find_elements(By.CSS_SELECTOR, row))
    finally:
        victim.stop()


def retained_now(port: int, topic: str, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_sub", "-p", str(port), "-u", "bob", "-P", "bob-pw",
                           "-t", topic, "-v", *more], capture_output=True, text=True,
                          timeout=WAIT)


def test_deleting_retained_messages_from_the_page(admin: WebDriver,
                                                  site: tuple[BrokerProcess, str]) -> None:
    broker, base = site
    for topic in ("maison/garage/temperature", "maison/garage/porte", "maison/grenier/x"):
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "bob", "-P", "bob-pw",
                        "-t", topic, "-m", "12", "-r", "-q", "1"], check=True, timeout=WAIT)
    go(admin, base, "retained")
    field = admin.find_element(By.ID, "retained-filter")
    field.clear()
    field.send_keys("maison/garage/#")
    admin.find_element(By.CSS_SELECTOR, "#retained-form button").click()
    row = "tr[data-topic='maison/garage/temperature']"
    until(admin, lambda b: b.find_elements(By.CSS_SELECTOR, row))
    click(admin, row)
    until(admin, lambda b: "12" in text_of(b, "#retained-detail pre"))
    shot(admin, "retained")
    click(admin, "button[data-delete='maison/garage/temperature']")
    until(admin, lambda b: not b.find_elements(By.CSS_SELECTOR, row))
    late = retained_now(broker.port, "maison/garage/temperature", "-W", "1")
    assert late.stdout == ""  # a new subscriber gets no retained message
    assert retained_now(broker.port, "maison/garage/porte", "-C", "1", "-W", "5").stdout \
        == "maison/garage/porte 12\n"
    # A subtree: two clicks (the second confirms).
    field = admin.find_element(By.ID, "retained-filter")
    field.clear()
    field.send_keys("maison/#")
    admin.find_element(By.CSS_SELECTOR, "#retained-form button").click()
    until(admin, lambda b: b.find_element(By.ID, "retained-delete-all").is_displayed())
    admin.find_element(By.ID, "retained-delete-all").click()
    until(admin, lambda b: "Really" in b.find_element(By.ID, "retained-delete-all").text)
    admin.find_element(By.ID, "retained-delete-all").click()
    until(admin, lambda b: not b.find_elements(By.CSS_SELECTOR, "#retained tbody tr"))
    assert retained_now(broker.port, "maison/#", "-W", "1").stdout == ""


def test_the_browser_test_client(admin: WebDriver, site: tuple[BrokerProcess, str]) -> None:
    broker, base = site
    go(admin, base, "client")
    listener = mosquitto_sub(broker.port, "-u", "bob", "-P", "bob-pw", "-t",
                             "maison/salon/lampe", "-v", "-C", "1", "-W", str(int(WAIT)))
    try:
        field = admin.find_element(By.ID, "sub-filter")
        field.clear()
        field.send_keys("maison/salon/#")
        admin.find_element(By.ID, "sub-go").click()
        until(admin, lambda b: text_of(b, "#sub-state") == "Subscribed to maison/salon/#")
        topic = admin.find_element(By.ID, "pub-topic")
        topic.clear()
        topic.send_keys("maison/salon/lampe")
        payload = admin.find_element(By.ID, "pub-payload")
        payload.clear()
        payload.send_keys("allumée")
        admin.find_element(By.ID, "pub-send").click()
        until(admin, lambda b: "Published to 1 subscriber" in text_of(b, "#pub-result"))
        assert sub_lines(listener) == ["maison/salon/lampe allumée"]
        until(admin, lambda b: "allumée" in text_of(b, "#sub-messages li pre"))
        # What an MQTT client publishes shows in the page's subscription too.
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "bob", "-P", "bob-pw",
                        "-t", "maison/salon/volet", "-m", "fermé"], check=True, timeout=WAIT)
        until(admin, lambda b: "maison/salon/volet" in text_of(b, "#sub-messages li .topic"))
        shot(admin, "test-client")
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def test_pages_on_a_phone(browser: WebDriver, site: tuple[BrokerProcess, str]) -> None:
    base = site[1]
    browser.set_window_size(390, 844)
    try:
        sign_in(browser, base, "admin", "admin-pw")
        until(browser, lambda b: b.find_element(By.ID, "page-overview").is_displayed())
        until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-messages"))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400  # nothing wider than the screen
        shot(browser, "overview-phone")
        go(browser, base, "topics")
        shot(browser, "topics-phone")
    finally:
        browser.set_window_size(1280, 900)
