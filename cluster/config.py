"""One typed settings object for every command.

Read, from lowest to highest precedence: the defaults below (the embedded default: a local Ray,
a Parquet lake under ./var/lake, a SQLite journal at ./var/journal.sqlite), an optional YAML file
(``--config`` or ``SMART_TRADER_CONFIG``), then ``SMART_TRADER_*`` environment variables (nested
fields with ``__``, e.g. ``SMART_TRADER_RAY__ADDRESS``). Secrets are never values here, only
references such as ``vault:kv/data/broker/isyatirim#api_key``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV = "SMART_TRADER_CONFIG"


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the field."""


class RaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    """None starts an embedded local Ray in-process; otherwise ``ray://host:port`` or ``auto``."""
    num_cpus: int | None = Field(default=None, ge=1)
    node_ip_address: str = "127.0.0.1"
    dashboard_port: int = Field(default=8265, ge=1, le=65535)


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_threshold: float = Field(default=95.0, ge=0.0, le=100.0)
    """``data validate`` fails when any symbol-day scores below this (percent)."""


class DemoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: int = Field(default=30, ge=1, le=500)
    sessions: int = Field(default=250, ge=2, le=2500)
    """Sessions of 1-minute bars (a year by default: research needs history)."""
    tick_sessions: int = Field(default=5, ge=0, le=2500)
    """The last sessions that also get trades and L1 quotes (for replay and execution)."""
    start: str = "2024-01-02"
    seed: int = 7


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    auth_method: str = Field(default="token", pattern="^(token|approle)$")
    token_ref: str | None = None
    """Where the token comes from, e.g. ``env:VAULT_TOKEN`` or ``file:~/.vault-token``."""


class Settings(BaseSettings):
    """Everything a command needs to know about where it runs and where data lives."""

    model_config = SettingsConfigDict(
        env_prefix="SMART_TRADER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Path("var")
    lake_path: Path | None = None
    journal_path: Path | None = None
    reports_path: Path | None = None
    storage_path: str | None = None
    """Where sweeps persist: a directory, or a pyarrow filesystem URI on a cluster."""
    ray: RaySettings = RaySettings()
    data: DataSettings = DataSettings()
    demo: DemoSettings = DemoSettings()
    vault: VaultSettings = VaultSettings()
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("lake_path", "journal_path", "reports_path", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(os.path.expanduser(v)) if isinstance(v, str) else v

    def model_post_init(self, __context: Any) -> None:
        # Paths not given explicitly live under `home`, so one setting relocates everything.
        if self.lake_path is None:
            self.lake_path = self.home / "lake"
        if self.journal_path is None:
            self.journal_path = self.home / "journal.sqlite"
        if self.reports_path is None:
            self.reports_path = self.home / "reports"
        if self.storage_path is None:
            self.storage_path = str((self.home / "sweeps").resolve())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables override the YAML file, which overrides the defaults.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(config_file: Path | str | None = None) -> Settings:
    """Load settings, turning every problem into a one-line ``ConfigError`` naming the field."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = os.environ[CONFIG_ENV]
    path = Path(config_file) if config_file else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            content = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "parse error"
            raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
        if content is not None and not isinstance(content, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

    try:
        return FileSettings() if path is not None else Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        problems.append(f"{field}: {err['msg']}{shown}")
    where = f" in {path} or SMART_TRADER_* variables" if path else " in SMART_TRADER_* variables"
    return f"invalid configuration{where}: " + "; ".join(problems)
