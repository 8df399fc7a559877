"""Settings: defaults < config.toml < HEALTHSWARM_* variables < explicit options."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthswarm.config import Settings
from healthswarm.errors import ConfigError


def test_defaults_use_sqlite_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTHSWARM_HOME", raising=False)
    monkeypatch.delenv("HEALTHSWARM_DB", raising=False)
    settings = Settings.load(tmp_path / "ws")
    assert settings.db_url == f"sqlite:///{(tmp_path / 'ws' / 'healthswarm.db').resolve()}"
    assert settings.bus == "memory"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('bus = "nats://127.0.0.1:4222"\norganisation = "h1"\n[sigma]\nx = 1\n')
    monkeypatch.setenv("HEALTHSWARM_HOME", str(tmp_path))
    monkeypatch.setenv("HEALTHSWARM_ORGANISATION", "h2")
    settings = Settings.load(None, db="postgresql://db/x")
    assert settings.workspace == tmp_path
    assert settings.bus == "nats://127.0.0.1:4222"  # from the file
    assert settings.organisation == "h2"  # the variable beats the file
    assert settings.db_url == "postgresql://db/x"  # the option beats everything
    assert settings.extra == {"sigma": {"x": 1}}


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("bus = [1,\n")
    with pytest.raises(ConfigError, match=r"config\.toml: not valid TOML"):
        Settings.load(tmp_path)
    (tmp_path / "config.toml").write_text("bus = 3\n")
    with pytest.raises(ConfigError, match="bus: expected a string, got int"):
        Settings.load(tmp_path)
