"""The demo page in Chromium through the compose stack's nginx (the `lab` fixture of tests/e2e)."""

from __future__ import annotations

import pytest

from tests.browser_support import Target


@pytest.fixture
def target(lab) -> Target:
    """The stack with every service up and round-robin routing (the `lab` fixture sees to both); a kill is
    `docker compose kill`, as `make kill-node` does, and the next test's `lab` brings the node back."""
    return Target(lab.url, lab.switch_mode, lambda node: lab.compose("kill", node), lab.strategies)
