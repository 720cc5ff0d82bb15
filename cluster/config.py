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


class DemoResearchSettings(BaseModel):
    """The demo's research step: a small walk-forward sweep on Ray Tune + Optuna.

    The defaults keep it to about a minute on two cores (12 trials of about 8-11 s each,
    4 walk-forward folds, at most 200 trees); ``time_budget_s`` bounds it on a busy machine.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    trials: int = Field(default=12, ge=2, le=500)
    """Trials Optuna (seeded TPE) samples; two at least, so PBO can be computed."""
    bar_interval: str = "15m"
    """Research bars, resampled from the 1-minute bars."""
    n_splits: int = Field(default=4, ge=2, le=20)
    """Walk-forward test folds."""
    pct_embargo: float = Field(default=0.01, ge=0.0, lt=0.5)
    max_estimators: int = Field(default=200, ge=50, le=5000)
    """Upper bound of the XGBoost tree count searched (in steps of 50)."""
    asha: bool = False
    """Off by default: every trial then completes its folds and enters the PBO matrix."""
    time_budget_s: float | None = Field(default=150.0, gt=0)
    seed: int = Field(default=0, ge=0)
    """Seed of the TPE sampler."""
    model_name: str = Field(default="demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    """Registry name of the selected model."""
    promote: bool = True
    """Promote the registered candidate through staging to production (what the live replay
    loads), whatever its deflated Sharpe ratio: the demo shows the machinery end to end."""


class DemoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: int = Field(default=30, ge=1, le=500)
    sessions: int = Field(default=250, ge=2, le=2500)
    """Sessions of 1-minute bars (a year by default: research needs history)."""
    tick_sessions: int = Field(default=5, ge=0, le=2500)
    """The last sessions that also get trades and L1 quotes (for replay and execution)."""
    start: str = "2024-01-02"
    seed: int = 7
    research: DemoResearchSettings = DemoResearchSettings()


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    address: str | None = None
    auth_method: str = Field(default="token", pattern="^(token|approle)$")
    token_ref: str | None = None
    """Where the token comes from, e.g. ``env:VAULT_TOKEN`` or ``file:~/.vault-token``."""
    role_id_ref: str | None = None
    """AppRole role id (``auth_method: approle``), itself a reference (``env:``/``file:``)."""
    secret_id_ref: str | None = None
    cache_ttl_s: float = Field(default=300.0, ge=0)
    """How long a secret read from Vault is reused before it is read again."""

    @field_validator("token_ref", "role_id_ref", "secret_id_ref")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        from cluster.secrets import validate_ref

        return validate_ref(v)


class FixVenueSettings(BaseModel):
    """The FIX 4.4 order-entry session (``actors.fix.FixVenue``); credentials are references."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=9878, ge=1, le=65535)
    sender_comp_id: str = "SMARTTRADER"
    target_comp_id: str = "BISTSIM"
    username_ref: str = "env:SMART_TRADER_FIX_USERNAME"
    password_ref: str = "env:SMART_TRADER_FIX_PASSWORD"
    heartbeat_s: int = Field(default=5, ge=1, le=300)
    timeout_s: float = Field(default=5.0, gt=0)
    """How long a request waits for the venue's answer before it counts as transient."""

    @field_validator("username_ref", "password_ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        from cluster.secrets import validate_ref

        validate_ref(v)
        return v


class VenuesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fix: FixVenueSettings = FixVenueSettings()


class PaperSettings(BaseModel):
    """The paper/live trading pipeline (``smart-trader paper``): its actors' names, pace,
    backpressure, model, account and router behaviour."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(default="paper", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    """Actor name prefix in the ``smart-trader`` Ray namespace."""
    speed: float | None = Field(default=None, gt=0)
    """Replay pace: 1.0 is real time, 60 a minute a second; None as fast as backpressure allows."""
    batch_rows: int = Field(default=500, ge=1, le=100_000)
    """Ticks per micro-batch from the feed."""
    max_in_flight: int = Field(default=4, ge=1, le=1024)
    """Micro-batches in flight to the stream processor before the feed waits."""
    model_name: str = "demo"
    """Registry name of the model scored live (its production version); without one, the
    transparent momentum rule trades."""
    initial_cash: float = Field(default=1_000_000.0, gt=0)
    venues: list[str] = Field(default_factory=lambda: ["paper"], min_length=1)
    """Paper venues, in routing preference order."""
    allowed_lateness_ms: int = Field(default=0, ge=0)
    late_policy: str = Field(default="drop", pattern="^(drop|emit_late)$")
    venue_timeout_s: float = Field(default=1.0, gt=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)


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
    venues: VenuesSettings = VenuesSettings()
    paper: PaperSettings = PaperSettings()
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
        # A *_ref field that does not parse may hold the secret itself: never echo it.
        hidden = isinstance(value, dict) or field.endswith("_ref")
        shown = "" if hidden else f" (got {value!r})"
        problems.append(f"{field}: {err['msg']}{shown}")
    where = f" in {path} or SMART_TRADER_* variables" if path else " in SMART_TRADER_* variables"
    return f"invalid configuration{where}: " + "; ".join(problems)
