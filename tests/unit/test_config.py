import pytest

from session_lab.config import STORE_USERS, ConfigError, Settings
from tests.conftest import settings_env


def test_defaults_are_safe(make_settings):
    s = make_settings()
    assert s.cookie_secure is False and s.idle_timeout == 1800 and s.absolute_timeout == 8 * 3600
    assert s.redis_socket_timeout > 0 and len(s.client_session_key) == 32


@pytest.mark.parametrize("name", [*STORE_USERS.values(), "JWT_KEYS", "CLIENT_SESSION_KEY"])
def test_missing_secret_is_named(name):
    env = settings_env()
    del env[name]
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_short_jwt_secret_refuses_to_start():
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings.from_env(settings_env(JWT_KEYS="k1:" + "x" * 31))


def test_jwt_keys_list_every_key_and_the_first_signs():
    s = Settings.from_env(settings_env(JWT_KEYS="new:" + "n" * 32 + "  old:" + "o" * 32))
    assert s.jwt_keys == (("new", "n" * 32), ("old", "o" * 32)) and s.jwt_signing_kid == "new"
    s = Settings.from_env(settings_env(JWT_KEYS="new:" + "n" * 32 + " old:" + "o" * 32, JWT_SIGNING_KEY_ID="old"))
    assert s.jwt_signing_kid == "old"


@pytest.mark.parametrize("keys, signer, message", [
    ("no-colon-here" + "x" * 32, "", "kid:secret"),
    ("bad/kid:" + "x" * 32, "", "kid:secret"),
    ("a:" + "x" * 32 + " a:" + "y" * 32, "", "twice"),
    ("   ", "", "JWT_KEYS"),
    ("a:" + "x" * 32, "b", "not in JWT_KEYS"),
])
def test_bad_jwt_keys_are_refused_with_the_variable_named(keys, signer, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(settings_env(JWT_KEYS=keys, JWT_SIGNING_KEY_ID=signer))


def test_placeholder_secret_refused_outside_development():
    with pytest.raises(ConfigError, match="placeholder"):
        Settings.from_env(settings_env(REDIS_CART_PASSWORD="change-me"))
    assert Settings.from_env(settings_env(REDIS_CART_PASSWORD="change-me", APP_ENV="development"))


def test_the_nodes_need_no_admin_password_and_each_family_gets_its_own_user():
    env = settings_env()
    env.pop("REDIS_PASSWORD", None)
    s = Settings.from_env(env)
    users = [s.redis_cart_user, s.jwt_revocation_user, s.flask_session_user, s.sentinel_cart_user, s.cluster_cart_user]
    assert [u.name for u in users] == list(STORE_USERS)
    assert len({u.password for u in users}) == len(users)
    assert "password" not in repr(s.redis_cart_user) and env["REDIS_CART_PASSWORD"] not in repr(s)


def test_a_store_password_with_whitespace_is_refused():
    with pytest.raises(ConfigError, match="CLUSTER_CART_PASSWORD"):
        Settings.from_env(settings_env(CLUSTER_CART_PASSWORD="two words"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"CLIENT_SESSION_KEY": "not base64 !!"}, "base64"),
        ({"CLIENT_SESSION_KEY": "c2hvcnQ"}, "32 bytes"),
        ({"SESSION_IDLE_TIMEOUT": "soon"}, "whole number"),
        ({"SESSION_IDLE_TIMEOUT": "600", "SESSION_ABSOLUTE_TIMEOUT": "60"}, "shorter"),
        ({"COOKIE_SECURE": "maybe"}, "true or false"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"REDIS_SOCKET_TIMEOUT": "0"}, "positive"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(settings_env(**overrides))


def test_app_refuses_to_start_with_a_short_secret():
    from session_lab import create_app

    with pytest.raises(ConfigError):
        create_app(Settings.from_env(settings_env(JWT_KEYS="k1:short")))
