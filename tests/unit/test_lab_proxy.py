"""The lab's own tools (load users, the experiment's probes) play the trusted proxy in front of nginx: they
send X-Forwarded-For with the proxy secret, read the way the stack got it (loadtest/lab.py)."""

from __future__ import annotations

import pytest

from loadtest import lab


@pytest.fixture
def fresh_settings(monkeypatch):
    monkeypatch.delenv("LB_PROXY_SECRET", raising=False)
    lab.lab_setting.cache_clear()
    yield monkeypatch
    lab.lab_setting.cache_clear()


def test_the_secret_comes_from_the_stacks_env_file_or_the_environment(tmp_path, fresh_settings):
    env_file = tmp_path / "e2e.env"
    env_file.write_text("# generated\nREDIS_PASSWORD=x\nLB_PROXY_SECRET=from-the-env-file\n")
    fresh_settings.setenv("COMPOSE_ENV_FILES", f"{env_file},{tmp_path / 'other.env'}")
    assert lab.as_proxy("198.18.1.7") == {"X-Forwarded-For": "198.18.1.7",
                                              "X-Lab-Proxy-Secret": "from-the-env-file"}
    fresh_settings.setenv("LB_PROXY_SECRET", "from-the-environment")
    lab.lab_setting.cache_clear()
    assert lab.as_proxy("198.18.1.7")["X-Lab-Proxy-Secret"] == "from-the-environment"


def test_without_a_secret_the_header_is_sent_alone_and_nginx_ignores_it(tmp_path, fresh_settings):
    fresh_settings.setenv("COMPOSE_ENV_FILES", str(tmp_path / "missing.env"))
    assert lab.as_proxy("198.18.1.7") == {"X-Forwarded-For": "198.18.1.7"}
