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
