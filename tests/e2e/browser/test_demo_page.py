"""The demo page in Chromium through the compose stack's nginx: the same scenarios as the loopback layer
(tests/integration/browser), with every store the stack runs (Sentinel and Cluster included)."""

import pytest

from session_lab.strategies import classes
from tests import browser_support as scenario

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

KILLABLE = [c.name for c in classes() if c.keeps_state]  # from the registry


def test_chromium_is_the_major_playwright_was_built_for(browser):
    scenario.chromium_matches_playwright(browser)


def test_banner_is_the_serving_node(page, target):
    scenario.banner_is_the_serving_node(page, target, scenario.shared_strategy(target))


def test_adding_an_item_shows_it(page, target):
    scenario.adding_an_item_shows_it(page, target, scenario.shared_strategy(target))


def test_round_robin_shows_several_nodes(page, target):
    scenario.round_robin_shows_several_nodes(page, target, scenario.shared_strategy(target))


def test_sticky_shows_one_node(page, target):
    scenario.sticky_shows_one_node(page, target, scenario.shared_strategy(target))


@pytest.mark.parametrize("strategy", KILLABLE)
def test_killing_the_serving_node(page, target, strategy):
    """Kept for the shared and replicated strategies, the loss marker and a lost verdict for memory."""
    traits = next(t for t in target.strategies() if t["name"] == strategy)
    scenario.killing_the_serving_node(page, target, traits)


def test_every_strategy_works_in_the_page(page, target):
    done = scenario.every_strategy_works(page, target, lambda traits: True)
    assert done == [t["name"] for t in target.strategies()]


def test_lab_strip_shows_every_node_up(page, target):
    demo = scenario.DemoPage(page, target.url).open(scenario.shared_strategy(target))
    nodes = demo.by("node-state")
    demo.expect(nodes).to_have_count(3)
    for i in range(3):
        demo.expect(nodes.nth(i)).to_have_attribute("data-state", "up")
