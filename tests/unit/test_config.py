from __future__ import annotations

import pytest

from shared.config import DEVELOPMENT_INTERNAL_TOKEN, Settings, SettingsError
from tests.conftest import make_pem

INTERNAL_TOKEN = "5f1c0e8a9b2d4f6e8a0c2e4f6a8b0d2e"


def test_defaults_run_locally() -> None:
    s = Settings.from_env({})
    assert s.database_url.startswith("postgresql://") and "127.0.0.1" in s.database_url
    assert s.amqp_url.startswith("amqp://") and s.edge_port == 8080
    assert s.token_ttl == 365 * 24 * 3600


def test_environment_is_parsed_by_type() -> None:
    s = Settings.from_env(
        {
            "HERALD_EDGE_PORT": "9000",
            "HERALD_USER_RATE": "2.5",
            "HERALD_CORS_ORIGINS": "https://a.example, https://b.example,",
            "HERALD_LOG_LEVEL": "DEBUG",
        }
    )
    assert s.edge_port == 9000 and s.user_rate_per_second == 2.5
    assert s.cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HERALD_EDGE_PORT", "eighty"),
        ("HERALD_USER_RATE", "fast"),
        ("HERALD_ENV", "staging"),
        ("HERALD_TRUSTED_PROXIES", "not-a-net"),
    ],
)
def test_malformed_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_production_refuses_placeholders() -> None:
    pem = make_pem()
    with pytest.raises(SettingsError, match="HERALD_ADMIN_PASSWORD"):
        Settings.from_env(
            {
                "HERALD_ENV": "production",
                "HERALD_SIGNING_KEY": pem,
                "HERALD_ADMIN_PASSWORD": "change-me",
                "HERALD_AMQP_URL": "amqp://h:s@mq/",
            }
        )
    for amqp in ("amqp://guest:guest@mq/", "amqp://mq:5672/", "amqp://herald@mq/"):
        with pytest.raises(SettingsError, match="HERALD_AMQP_URL"):
            Settings.from_env(
                {"HERALD_ENV": "production", "HERALD_SIGNING_KEY": pem, "HERALD_AMQP_URL": amqp}
            )
    for url in ("postgresql://herald:herald@db/herald", "postgresql://h:change-this-db-password@db/h"):
        with pytest.raises(SettingsError, match="HERALD_DATABASE_URL"):
            Settings.from_env(
                {
                    "HERALD_ENV": "production",
                    "HERALD_AMQP_URL": "amqp://h:s3cret@mq/",
                    "HERALD_DATABASE_URL": url,
                }
            )
    with pytest.raises(SettingsError, match="HERALD_ADMIN_PASSWORD"):
        Settings.from_env(
            {
                "HERALD_ENV": "production",
                "HERALD_AMQP_URL": "amqp://h:s@mq/",
                "HERALD_ADMIN_PASSWORD": "change-this-admin-password",
            }
        )
    ok = Settings.from_env(
        {
            "HERALD_ENV": "production",
            "HERALD_SIGNING_KEY": pem,
            "HERALD_AMQP_URL": "amqp://herald:s3cret@mq/",
            "HERALD_INTERNAL_TOKEN": INTERNAL_TOKEN,
        }
    )
    assert ok.production


@pytest.mark.parametrize(
    "token", [None, DEVELOPMENT_INTERNAL_TOKEN, "change-this-internal-token", "secret", "short-0123456"]
)
def test_production_refuses_the_development_internal_token_and_placeholders(token: str | None) -> None:
    environ = {"HERALD_ENV": "production", "HERALD_AMQP_URL": "amqp://herald:s3cret@mq/"}
    if token is not None:
        environ["HERALD_INTERNAL_TOKEN"] = token
    with pytest.raises(SettingsError, match="HERALD_INTERNAL_TOKEN"):
        Settings.from_env(environ)


def test_development_has_a_working_internal_token_but_never_an_empty_one() -> None:
    assert Settings.from_env({}).internal_token == DEVELOPMENT_INTERNAL_TOKEN
    with pytest.raises(SettingsError, match="HERALD_INTERNAL_TOKEN"):
        Settings.from_env({"HERALD_INTERNAL_TOKEN": ""})


def test_every_setting_is_a_herald_variable_with_a_description() -> None:
    names = [v[0] for v in Settings.variables()]
    assert len(names) == len(set(names))
    assert all(n.startswith("HERALD_") for n in names)
    assert all(v[3] for v in Settings.variables())


def test_signing_key_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pem = make_pem()
    path = tmp_path / "key.pem"
    path.write_text(pem)
    assert Settings.from_env({"HERALD_SIGNING_KEY_FILE": str(path)}).signing_key_pem() == pem


def test_only_auth_needs_the_signing_key_in_production() -> None:
    from services.auth.app import create_app as auth_app
    from services.resource.app import create_app as resource_app

    keyless = Settings.from_env(
        {
            "HERALD_ENV": "production",
            "HERALD_AMQP_URL": "amqp://h:s@mq/",
            "HERALD_INTERNAL_TOKEN": INTERNAL_TOKEN,
        }
    )
    resource_app(keyless)  # the other services verify with public keys only
    with pytest.raises(SettingsError, match="HERALD_SIGNING_KEY"):
        auth_app(keyless)
