"""Settings: env parsing, validation, and the README table listing every variable."""

from pathlib import Path

import pytest

from gateway.config import Settings, env_table
from gateway.errors import ConfigError


def test_defaults_and_overrides() -> None:
    settings = Settings.from_env({"GATEWAY_QUEUE_TIMEOUT": "2.5", "GATEWAY_MODELS": "a, b"})
    assert settings.queue_timeout == 2.5 and settings.models == ("a", "b")
    assert Settings.from_env({}).bind == "0.0.0.0:8000"


@pytest.mark.parametrize(("name", "value"), [
    ("MINIMAX_SIGNATURE", "md5"), ("GATEWAY_WORKERS", "two"), ("GATEWAY_QUEUE_TIMEOUT", "-1"),
    ("MINIMAX_BASE_URL", "ftp://x"),
])
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_readme_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name, default, _ in env_table():
        assert f"| `{name}` | `{default}` |" in readme, name


@pytest.mark.parametrize(("name", "value"), [
    ("MINIMAX_SIGNING_SALT", "short"), ("MINIMAX_SIGNING_SALT", "has space in it"), ("MINIMAX_YY_SUFFIX", "a`b"),
    ("MINIMAX_VERSION_CODE", "v22201"), ("MINIMAX_BUNDLE_REFRESH", "yes please"),
])
def test_web_signing_constants_must_look_like_them(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_web_signing_constants_and_their_sources() -> None:
    bundle = Settings.from_env({"MINIMAX_YY_SUFFIX": "tailv", "MINIMAX_BUNDLE_REFRESH": "1"}).bundle()
    assert bundle.refresh and bundle.constants.yy_suffix == "tailv" and bundle.configured == {"yy_suffix"}
    default = Settings.from_env({}).bundle()
    assert not default.refresh and default.configured == frozenset()
    assert default.constants.salt == "I*7Cf%WZ#S&%1RlZJ&C2" and default.constants.version_code == "22201"
