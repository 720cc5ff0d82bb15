"""Secret references: parsing, refusal of anything else, env/file resolution, masking, TTL cache."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from cluster.config import ConfigError, Settings, load_settings
from cluster.secrets import SecretError, SecretRef, SecretResolver

VALUE = "hunter2-s3cr3t"


def test_parses_vault_kv2_reference() -> None:
    ref = SecretRef.parse("vault:kv/data/broker/fix#password")
    assert (ref.scheme, ref.mount, ref.path, ref.key) == ("vault", "kv", "broker/fix", "password")
    assert str(ref) == "vault:kv/data/broker/fix#password"
    nested = SecretRef.parse("vault:team/kv/data/fix#user")
    assert (nested.mount, nested.path, nested.key) == ("team/kv", "fix", "user")


def test_parses_env_and_file_references() -> None:
    assert SecretRef.parse("env:FIX_PASSWORD").name == "FIX_PASSWORD"
    assert SecretRef.parse("file:~/.vault-token").scheme == "file"
    ref = SecretRef.parse("env:X")
    assert SecretRef.parse(ref) is ref


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("vault:kv/broker/fix#password", "KV v2"),
        ("vault:kv/data/broker/fix", "#<key>"),
        ("vault:kv/data/broker/fix#", "#<key>"),
        ("vault:/data/fix#k", "non-empty"),
        ("vault:kv/data/#k", "non-empty"),
        ("env:", "variable name"),
        ("env:1BAD", "variable name"),
        ("file:", "needs a path"),
        ("aws:secret/x", "not a secret reference"),
        ("", "not a secret reference"),
    ],
)
def test_refuses_malformed_and_unknown_references(ref: str, message: str) -> None:
    with pytest.raises(SecretError, match=message.replace("<", ".").replace(">", ".")):
        SecretRef.parse(ref)


def test_a_pasted_secret_is_never_echoed() -> None:
    with pytest.raises(SecretError) as info:
        SecretRef.parse(f"{VALUE}:really")
    assert VALUE not in str(info.value)
    with pytest.raises(SecretError) as info2:
        SecretRef.parse(VALUE)
    assert VALUE not in str(info2.value)


def test_config_validates_refs_without_echoing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.venues.fix.password_ref.startswith("env:")
    monkeypatch.setenv("SMART_TRADER_VENUES__FIX__PASSWORD_REF", VALUE)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "venues.fix.password_ref" in str(info.value)
    assert VALUE not in str(info.value)


def test_resolves_env_and_file(tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{VALUE}\n")
    resolver = SecretResolver(environ={"FIX_PW": VALUE})
    assert resolver.resolve("env:FIX_PW") == VALUE
    assert resolver.resolve(f"file:{token_file}") == VALUE
    held = resolver.resolve_secret("env:FIX_PW")
    assert isinstance(held, SecretStr)
    assert VALUE not in repr(held) and VALUE not in str(held)


def test_missing_env_and_file_name_the_reference_only(tmp_path) -> None:
    resolver = SecretResolver(environ={})
    with pytest.raises(SecretError, match=r"env:NOPE.*not set"):
        resolver.resolve("env:NOPE")
    with pytest.raises(SecretError, match="cannot read"):
        resolver.resolve(f"file:{tmp_path / 'absent'}")


def test_vault_reference_without_vault_configuration_is_a_clear_error() -> None:
    with pytest.raises(SecretError, match="no Vault address"):
        SecretResolver(environ={}).resolve("vault:secret/data/fix#password")
    with pytest.raises(SecretError, match="no Vault credentials"):
        SecretResolver(environ={"VAULT_ADDR": "http://127.0.0.1:1"}).resolve(
            "vault:secret/data/fix#password"
        )


def test_resolver_repr_and_logs_mask_credentials(caplog: pytest.LogCaptureFixture) -> None:
    resolver = SecretResolver(address="http://127.0.0.1:8200", token=VALUE, environ={})
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("resolver %r %s", resolver, resolver)
    assert VALUE not in repr(resolver) and VALUE not in caplog.text
    assert "auth=token" in repr(resolver)


class _FakeKV:
    """Stands in for hvac's KV v2 client to count reads (the real one is in the integration
    test against OpenBao)."""

    def __init__(self) -> None:
        self.reads = 0
        self.data = {"user": "trader", "password": VALUE}

    def read_secret_version(self, path: str, mount_point: str, raise_on_deleted_version: bool):
        self.reads += 1
        return {"data": {"data": dict(self.data)}}


def test_vault_reads_are_cached_for_the_ttl() -> None:
    now = [0.0]
    resolver = SecretResolver(
        address="http://x", token="t", ttl_s=60, environ={}, monotonic=lambda: now[0]
    )
    kv = _FakeKV()
    resolver._client = SimpleNamespace(secrets=SimpleNamespace(kv=SimpleNamespace(v2=kv)))
    assert resolver.resolve("vault:secret/data/fix#password") == VALUE
    assert resolver.resolve("vault:secret/data/fix#user") == "trader"
    assert kv.reads == 1  # one read for both keys of the same secret
    kv.data["password"] = "rotated"
    now[0] = 59.0
    assert resolver.resolve("vault:secret/data/fix#password") == VALUE
    now[0] = 61.0
    assert resolver.resolve("vault:secret/data/fix#password") == "rotated"
    assert kv.reads == 2
    with pytest.raises(SecretError, match="no key 'nope'") as info:
        resolver.resolve("vault:secret/data/fix#nope")
    assert VALUE not in str(info.value) and "rotated" not in str(info.value)
    resolver.invalidate()
    resolver.resolve("vault:secret/data/fix#user")
    assert kv.reads == 3
