"""Settings: embedded defaults, YAML file, environment overrides, one-line errors."""

from pathlib import Path

import pytest

from cluster.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SMART_TRADER_"):
            monkeypatch.delenv(key)


def test_embedded_default_needs_no_file() -> None:
    s = load_settings()
    assert s.lake_path == Path("var/lake")
    assert s.journal_path == Path("var/journal.sqlite")
    assert s.ray.address is None  # local Ray started in-process
    assert s.data.quality_threshold == 95.0


def test_yaml_file_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "st.yaml"
    cfg.write_text("home: /data/st\nray:\n  address: ray://head:10001\n  num_cpus: 4\n")
    s = load_settings(cfg)
    assert s.lake_path == Path("/data/st/lake")
    assert s.ray.address == "ray://head:10001" and s.ray.num_cpus == 4
    monkeypatch.setenv("SMART_TRADER_RAY__NUM_CPUS", "8")
    monkeypatch.setenv("SMART_TRADER_LAKE_PATH", "/mnt/lake")
    s = load_settings(cfg)
    assert s.ray.num_cpus == 8 and s.lake_path == Path("/mnt/lake")


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "st.yaml"
    cfg.write_text("demo:\n  symbols: 5\n")
    monkeypatch.setenv("SMART_TRADER_CONFIG", str(cfg))
    assert load_settings().demo.symbols == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ray:\n  num_cpus: zero\n", "ray.num_cpus"),
        ("data:\n  quality_threshold: 120\n", "data.quality_threshold"),
        ("no_such_setting: 1\n", "no_such_setting"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("ray: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(cfg)
    assert "\n" not in str(info.value)


def test_bad_env_value_and_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMART_TRADER_RAY__NUM_CPUS", "abc")
    with pytest.raises(ConfigError, match=r"ray\.num_cpus.*'abc'"):
        load_settings()
    monkeypatch.delenv("SMART_TRADER_RAY__NUM_CPUS")
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml")
