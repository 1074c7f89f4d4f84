"""The demo page in Chromium, through the project's nginx in front of three real nodes on loopback."""

import pytest

from session_lab.strategies import classes
from tests import browser_support as scenario
from tests.integration.browser.conftest import available

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# From the registry: every strategy that keeps a session and needs no store missing on loopback.
KILLABLE = [c.name for c in classes() if c.keeps_state and set(c.dependencies) <= {"redis"}]


def test_chromium_is_the_major_playwright_was_built_for(browser):
    scenario.chromium_matches_playwright(browser)


def test_banner_is_the_serving_node(page, target):
    scenario.banner_is_the_serving_node(page, target, scenario.shared_strategy(target, available))


def test_adding_an_item_shows_it(page, target):
    scenario.adding_an_item_shows_it(page, target, scenario.shared_strategy(target, available))


def test_round_robin_shows_several_nodes(page, target):
    scenario.round_robin_shows_several_nodes(page, target, scenario.shared_strategy(target, available))


def test_sticky_shows_one_node(page, target):
    scenario.sticky_shows_one_node(page, target, scenario.shared_strategy(target, available))


@pytest.mark.parametrize("strategy", KILLABLE)
def test_killing_the_serving_node(page, target, strategy):
    traits = next(t for t in target.strategies() if t["name"] == strategy)
    scenario.killing_the_serving_node(page, target, traits)


def test_every_strategy_works_in_the_page(page, target):
    done = scenario.every_strategy_works(page, target, available)
    assert len(done) >= 5, done


def test_projector_mode(page, target):
    demo = scenario.DemoPage(page, target.url).open(scenario.shared_strategy(target, available), projector=True)
    demo.add("apple")
    demo.expect(page.locator("body")).to_have_class("projector")
    demo.expect(demo.by("projector-toggle")).to_be_checked()
    size = demo.by("served-by").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 100, f"the node banner is {size}px in projector mode"


def test_the_page_works_under_the_balancers_content_security_policy(page, target):
    """nginx sends the CSP (loadbalancer/security-headers.conf); Chromium reports any violation as a console error,
    which fails the test (the `page` fixture)."""
    answer = page.goto(target.url)
    assert "script-src 'self'" in answer.headers.get("content-security-policy", ""), answer.headers
    scenario.adding_an_item_shows_it(page, target, scenario.shared_strategy(target, available))
