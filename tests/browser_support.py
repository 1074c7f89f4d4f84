"""The demo page in a real browser: Debian's Chromium driven by Playwright, shared by the browser tests of the
integration layer (real nodes and nginx on loopback) and of the e2e layer (the compose stack).

Playwright is pinned to the release built for Debian's Chromium major (requirements-dev.txt); it never downloads
a browser here (`playwright install` is not used): it launches the binary at $CHROMIUM. Every test gets a fresh
browser context, fails on any console error or uncaught page error, and leaves a screenshot in results/browser/<layer>/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "browser"
# chromium-headless-shell is Debian's browser without a display; /usr/bin/chromium-headless-shell is a shell
# wrapper that does not `exec`, so point at the binary itself. `chromium` (/usr/lib/chromium/chromium) works too.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium-headless-shell")
VIEWPORT = {"width": 1280, "height": 880}  # a projector's 1280x800 class, plus the toolbar


def playwright_chromium_major() -> int:
    """The Chromium major the installed Playwright was built and tested against (its browsers.json)."""
    import playwright

    listing = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    browsers = json.loads(listing.read_text())["browsers"]
    version = next(b["browserVersion"] for b in browsers if b["name"] == "chromium")
    return int(version.split(".")[0])


def chromium_matches_playwright(browser) -> None:
    """The browser's major is the one the pinned Playwright was built for: a Debian update that moves Chromium
    to another major fails here, saying what to re-pin, rather than as odd protocol errors elsewhere."""
    major, expected = int(browser.version.split(".")[0]), playwright_chromium_major()
    assert major == expected, (
        f"Chromium {browser.version} at {CHROMIUM}, but the pinned Playwright was built for Chromium "
        f"{expected}: re-pin playwright in requirements-dev.txt to the release built for Chromium {major} "
        "(its release notes name the browser version), or point CHROMIUM at a matching browser")


def _have_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def browser():
    require(_have_playwright(), "playwright is not installed (pip install -r requirements-dev.txt)")
    require(os.access(CHROMIUM, os.X_OK),
            f"no Chromium at {CHROMIUM} (apt-get install chromium-headless-shell, or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --disable-dev-shm-usage: Docker gives a container 64 MB of /dev/shm, too little for Chromium.
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-dev-shm-usage"])
        yield launched
        launched.close()


@dataclass
class Watched:
    """What the browser reported while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    answers_4xx: list[str] = field(default_factory=list)  # "401 http://.../api/memory/cart"

    def unexpected(self) -> list[str]:
        """Every console error, but Chromium's own line for a 4xx API answer that the page handled (the API
        says "no session" with a 401; Chromium logs each such answer, the page's code logs nothing)."""
        found = list(self.page_errors)
        handled = {a.split(" ", 1)[0] for a in self.answers_4xx}
        for text in self.console_errors:
            m = re.fullmatch(r"Failed to load resource: the server responded with a status of (\d{3}) \(.*\)", text)
            if m and m.group(1) in handled and m.group(1).startswith("4"):
                continue
            found.append(text)
        return found


@pytest.fixture
def page(browser, request):
    """A fresh context (its own cookies and localStorage, like a new browser); a screenshot at the end."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    watched = Watched()
    tab.on("console", lambda m: m.type == "error" and watched.console_errors.append(m.text))
    tab.on("pageerror", lambda e: watched.page_errors.append(str(e)))
    tab.on("response", lambda r: 400 <= r.status < 500 and "/api/" in r.url
           and watched.answers_4xx.append(f"{r.status} {r.url}"))
    tab.watched = watched
    yield tab
    layer = RESULTS / request.node.path.parent.parent.name  # results/browser/integration/, .../e2e/
    layer.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.\[\]-]", "_", request.node.name)
    try:
        tab.screenshot(path=str(layer / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not watched.unexpected(), f"the browser reported errors: {watched.unexpected()}"


# --- the page, as the tests use it ---------------------------------------------------------------------------


class DemoPage:
    """The demo page by its data-testid hooks."""

    def __init__(self, tab, url: str):
        from playwright.sync_api import expect

        self.tab, self.url, self.expect = tab, url.rstrip("/"), expect

    def by(self, testid: str):
        return self.tab.get_by_test_id(testid)

    def open(self, strategy: str | None = None, projector: bool = False) -> DemoPage:
        wanted = (f"strategy={strategy}" if strategy else "", "projector=1" if projector else "")
        query = "&".join(p for p in wanted if p)
        with self.tab.expect_response(lambda r: re.search(r"/api/[^/]+/(cart|login)$", r.url) is not None):
            self.tab.goto(f"{self.url}/{'?' + query if query else ''}")
        self.expect(self.by("timeline-entry").first).to_be_visible()
        return self

    def reload(self):
        """Reload; the answer to the page's first cart request."""
        with self.tab.expect_response(lambda r: r.url.endswith("/cart")) as answer:
            self.tab.reload()
        self.expect(self.by("timeline-entry").last).to_be_visible()
        return answer.value

    def refresh(self):
        """Click Refresh; the answer (its headers say who served it) once the page has shown it."""
        entries = self.by("timeline-entry").count()
        with self.tab.expect_response(lambda r: r.url.endswith("/cart") and r.request.method == "GET") as answer:
            self.by("refresh").click()
        self._shown(entries)
        return answer.value

    def add(self, item: str):
        entries = self.by("timeline-entry").count()
        with self.tab.expect_response(lambda r: r.url.endswith("/cart") and r.request.method == "POST") as answer:
            self.by("item-input").fill(item)
            self.by("add-item").click()
        self._shown(entries)
        return answer.value

    def choose(self, strategy: str):
        with self.tab.expect_response(lambda r: r.url.endswith(f"/api/{strategy}/login")):
            self.by("strategy-select").select_option(strategy)
        self.expect(self.by("banner-strategy")).to_have_text(strategy)
        # The login's answer has arrived, but the page may not have recorded it yet (it is busy until then): a
        # count of the timeline taken now would miss its entry (seen on a loaded host).
        self.expect(self.by("refresh")).to_be_enabled()

    def _shown(self, entries_before: int) -> None:
        # The timeline keeps the last 20: once full, it stays at 20 while its last entry changes.
        if entries_before < 20:
            self.expect(self.by("timeline-entry")).to_have_count(entries_before + 1)
        self.expect(self.by("refresh")).to_be_enabled()

    def served_by(self) -> str:
        return self.by("served-by").inner_text().strip()

    def timeline_nodes(self) -> list[str]:
        return [e.get_attribute("data-node") for e in self.by("timeline-entry").all()]


# --- what both layers test, given a lab: the same scenarios against loopback nodes and against the stack --------


@dataclass
class Target:
    """Where the page is served and how to change that lab."""

    url: str
    switch_mode: Callable[[str], object]
    kill: Callable[[str], object]  # SIGKILL one app node by name
    strategies: Callable[[], list[dict]]  # GET /api/strategies


def survives_a_killed_node(traits: dict) -> bool:
    """Under sticky routing: a session in a shared store or in the client, or node-local with a replica."""
    return traits["keeps_state"] and (not traits["needs_sticky"] or traits["node_replica"])


def shared_strategy(target: Target, available: Callable[[dict], bool] = lambda t: True) -> str:
    """The first strategy whose session any node can serve (from the registry, not a hand list)."""
    return next(t["name"] for t in target.strategies()
                if t["keeps_state"] and not t["needs_sticky"] and available(t))


def banner_is_the_serving_node(page, target: Target, strategy: str) -> None:
    demo = DemoPage(page, target.url).open(strategy)
    for _ in range(4):
        answer = demo.refresh()
        demo.expect(demo.by("served-by")).to_have_text(answer.headers["x-served-by"])
        assert answer.headers["x-served-by"] in page.title()


def adding_an_item_shows_it(page, target: Target, strategy: str) -> None:
    demo = DemoPage(page, target.url).open(strategy)
    demo.add("pear")
    hostile = "<img src=x onerror=alert(1)>"  # user input is text, never markup
    answer = demo.add(hostile)
    assert answer.status == 200
    items = demo.by("cart-items").locator("li")
    demo.expect(items).to_have_text(["pear", hostile])
    demo.expect(demo.by("cart-count")).to_have_text("2")
    demo.expect(demo.by("banner-count")).to_have_text("2")
    assert page.locator("img").count() == 0
    demo.expect(demo.by("credential-size")).to_have_text(re.compile(r"^\d+ bytes$"))


def round_robin_shows_several_nodes(page, target: Target, strategy: str) -> None:
    target.switch_mode("round-robin")
    demo = DemoPage(page, target.url).open(strategy)
    banners = set()
    for _ in range(6):
        demo.refresh()
        banners.add(demo.served_by())
    demo.expect(demo.by("lb-mode")).to_have_text("round-robin")
    assert len(set(demo.timeline_nodes())) >= 2 and len(banners) >= 2, demo.timeline_nodes()


def sticky_shows_one_node(page, target: Target, strategy: str) -> None:
    target.switch_mode("sticky")
    demo = DemoPage(page, target.url).open(strategy)
    for _ in range(6):
        demo.refresh()
    demo.expect(demo.by("lb-mode")).to_have_text("sticky")
    assert len(set(demo.timeline_nodes())) == 1, demo.timeline_nodes()


def killing_the_serving_node(page, target: Target, traits: dict) -> None:
    """Sticky routing, two items, a prediction, the serving node SIGKILLed, a reload."""
    target.switch_mode("sticky")
    demo = DemoPage(page, target.url).open(traits["name"])
    demo.add("apple")
    demo.add("pear")
    demo.expect(demo.by("cart-count")).to_have_text("2")
    node = demo.served_by()
    demo.expect(demo.by("kill-command")).to_have_text(f"make kill-node NODE={node}")
    survives = survives_a_killed_node(traits)
    demo.by("predict-survive" if survives else "predict-lose").check()
    demo.expect(demo.by("prediction-status")).to_contain_text(f"on {node} (2 items)")

    target.kill(node)
    answer = demo.reload()
    assert answer.headers["x-served-by"] != node
    demo.expect(demo.by("served-by")).not_to_have_text(node)
    verdict = demo.by("verdict")
    if survives:
        assert answer.status == 200, answer.text()
        demo.expect(demo.by("cart-count")).to_have_text("2")
        demo.expect(demo.by("cart-items").locator("li")).to_have_text(["apple", "pear"])
        demo.expect(verdict).to_have_attribute("data-verdict", "survived")
        demo.expect(verdict).to_contain_text("2 → 2 items")
        demo.expect(demo.by("loss-marker")).to_have_count(0)
    else:
        assert answer.status == 401, answer.text()
        marker = demo.by("loss-marker")
        demo.expect(marker).to_have_count(1)
        demo.expect(marker).to_contain_text(f"cart lost {node}→")
        demo.expect(marker).to_contain_text("2→0")
        demo.expect(verdict).to_have_attribute("data-verdict", "lost")
        demo.expect(verdict).to_contain_text("2 → 0 items")
    demo.expect(verdict).to_contain_text("Your prediction was right")


def every_strategy_works(page, target: Target, available: Callable[[dict], bool]) -> list[str]:
    """Each strategy of the registry, switched to in the page: a new user, an item, its traits shown (sticky
    routing, so that node-held sessions work too)."""
    target.switch_mode("sticky")
    demo = DemoPage(page, target.url).open()
    done = []
    for traits in target.strategies():
        if not available(traits):
            continue
        name = traits["name"]
        demo.choose(name)
        answer = demo.add(f"{name}-item")
        assert answer.status == 200, (name, answer.text())
        if traits["keeps_state"]:
            demo.expect(demo.by("cart-count")).to_have_text("1")
            demo.expect(demo.by("credential-size")).to_have_text(re.compile(r"^\d+ bytes$"))
        demo.expect(demo.by("credential-kind")).to_have_text(traits["credential"])
        location = demo.by("cart-location").inner_text()
        for dep in traits["dependencies"]:
            assert dep in location, (name, location)
        done.append(name)
    return done
