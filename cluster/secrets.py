"""Secret references and their resolution (Vault / OpenBao KV v2, environment, files).

Configuration never holds a secret, only a *reference* to one, so a config file, a Ray
``runtime_env`` or a log line can be shown to anyone. A reference is resolved at the moment the
value is needed (a FIX logon, say) by a ``SecretResolver``:

=================================  ===========================================================
``vault:<mount>/data/<path>#<key>``  key ``<key>`` of the KV v2 secret ``<path>`` on the mount
                                   ``<mount>`` (Vault or OpenBao, read with ``hvac``)
``env:<NAME>``                     the environment variable ``NAME`` (local development, CI)
``file:<path>``                    the stripped content of a file (``~`` expanded): how a Vault
                                   token is usually handed over (``~/.vault-token``)
=================================  ===========================================================

Anything else is refused with a ``SecretError`` naming the accepted forms. Values are wrapped in
``pydantic.SecretStr`` everywhere they are held, so ``repr``/``str``/logging of a resolver, a
cache or an error shows ``**********`` instead; error messages name the reference, never a value.
Vault reads are cached per secret for ``ttl_s`` seconds: a logon storm after a network blip must
not become a Vault storm, and a rotated password is picked up within one TTL.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

Scheme = Literal["vault", "env", "file"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")
_FORMS = "vault:<mount>/data/<path>#<key>, env:<NAME> or file:<path>"


class SecretError(ValueError):
    """A reference that is malformed or cannot be resolved; the message names the reference
    (never a secret value)."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A parsed secret reference. The reference itself is not secret and prints as written."""

    scheme: Scheme
    raw: str
    mount: str = ""
    path: str = ""
    key: str = ""
    name: str = ""
    """The environment variable (``env:``) or the file path (``file:``)."""

    @classmethod
    def parse(cls, ref: str | SecretRef) -> SecretRef:
        """Parse ``ref`` or raise ``SecretError`` saying what is wrong and which forms exist."""
        if isinstance(ref, SecretRef):
            return ref
        # What is not a reference may be a secret pasted where its reference belongs: never echo.
        scheme, colon, rest = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        if not colon or scheme not in ("env", "file", "vault"):
            raise SecretError(f"not a secret reference (value not shown); expected {_FORMS}")
        if scheme == "env":
            if not _ENV_NAME.match(rest):
                raise SecretError(f"{ref!r}: env: needs a variable name, e.g. env:FIX_PASSWORD")
            return cls("env", ref, name=rest)
        if scheme == "file":
            if not rest.strip():
                raise SecretError(f"{ref!r}: file: needs a path, e.g. file:~/.vault-token")
            return cls("file", ref, name=rest)
        return cls._parse_vault(ref, rest)

    @classmethod
    def _parse_vault(cls, ref: str, rest: str) -> SecretRef:
        location, hash_, key = rest.partition("#")
        if not hash_ or not key:
            raise SecretError(f"{ref!r}: a vault reference needs '#<key>' naming the field")
        mount, sep, path = location.partition("/data/")
        if not sep:
            raise SecretError(
                f"{ref!r}: only KV v2 references are supported: vault:<mount>/data/<path>#<key>"
            )
        mount, path = mount.strip("/"), path.strip("/")
        parts = [*mount.split("/"), *path.split("/")]
        if not mount or not path or not all(_SEGMENT.match(p) for p in parts):
            raise SecretError(f"{ref!r}: mount and path must be non-empty, '/'-separated names")
        return cls("vault", ref, mount=mount, path=path, key=key)

    def __str__(self) -> str:
        return self.raw


class SecretResolver:
    """Resolves ``SecretRef``s; Vault/OpenBao through ``hvac`` with a per-secret TTL cache.

    Vault access is configured by arguments, else by ``VAULT_ADDR`` / ``VAULT_TOKEN`` in
    ``environ``: a token, or an AppRole (``role_id`` + ``secret_id``) that logs in on first use
    and again when the token is refused. Only ``vault:`` references need any of it. Thread-safe
    (a FIX session thread and the router may resolve at the same time).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        token: SecretStr | str | None = None,
        role_id: SecretStr | str | None = None,
        secret_id: SecretStr | str | None = None,
        approle_mount: str = "approle",
        ttl_s: float = 300.0,
        environ: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_s: float = 5.0,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.address = address or self._environ.get("VAULT_ADDR")
        raw_token = token if token is not None else self._environ.get("VAULT_TOKEN")
        self._token = _secret(raw_token)
        self._role_id = _secret(role_id)
        self._secret_id = _secret(secret_id)
        self.approle_mount = approle_mount
        self.ttl_s = float(ttl_s)
        self.timeout_s = timeout_s
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[float, dict[str, SecretStr]]] = {}
        self._client: Any = None
        self._lock = threading.RLock()
        self.vault_reads = 0
        """Reads that went to Vault (cache misses): what the TTL cache is judged by."""

    @classmethod
    def from_settings(
        cls, vault: Any, environ: Mapping[str, str] | None = None, ttl_s: float | None = None
    ) -> SecretResolver:
        """Build from ``cluster.config.VaultSettings``: the token, role id and secret id are
        themselves references (``env:``/``file:``), resolved here once."""
        env = os.environ if environ is None else environ
        bootstrap = cls(environ=env)
        token = role_id = secret_id = None
        if vault.auth_method == "approle":
            if not (vault.role_id_ref and vault.secret_id_ref):
                raise SecretError("vault.auth_method=approle needs role_id_ref and secret_id_ref")
            role_id = bootstrap.resolve_secret(vault.role_id_ref)
            secret_id = bootstrap.resolve_secret(vault.secret_id_ref)
        elif vault.token_ref:
            token = bootstrap.resolve_secret(vault.token_ref)
        return cls(
            address=vault.address,
            token=token,
            role_id=role_id,
            secret_id=secret_id,
            ttl_s=vault.cache_ttl_s if ttl_s is None else ttl_s,
            environ=env,
        )

    def __repr__(self) -> str:
        auth = "approle" if self._role_id is not None else "token" if self._token else "none"
        return f"SecretResolver(address={self.address!r}, auth={auth}, ttl_s={self.ttl_s})"

    def resolve(self, ref: str | SecretRef) -> str:
        """The secret's value, for the one call that has to send it (a FIX Logon field)."""
        return self.resolve_secret(ref).get_secret_value()

    def resolve_secret(self, ref: str | SecretRef) -> SecretStr:
        """The secret's value, masked in ``repr``/``str``: what to hold on to."""
        parsed = SecretRef.parse(ref)
        if parsed.scheme == "env":
            value = self._environ.get(parsed.name)
            if value is None:
                raise SecretError(f"{parsed}: environment variable {parsed.name} is not set")
            return SecretStr(value)
        if parsed.scheme == "file":
            path = Path(os.path.expanduser(parsed.name))
            try:
                return SecretStr(path.read_text().strip())
            except OSError as exc:
                raise SecretError(f"{parsed}: cannot read {path} ({exc.strerror})") from None
        return self._vault(parsed)

    def invalidate(self, ref: str | SecretRef | None = None) -> None:
        """Forget cached Vault reads (all, or the secret ``ref`` points into): after rotation."""
        with self._lock:
            if ref is None:
                self._cache.clear()
            else:
                parsed = SecretRef.parse(ref)
                self._cache.pop((parsed.mount, parsed.path), None)

    # -- Vault ----------------------------------------------------------------------------

    def _vault(self, ref: SecretRef) -> SecretStr:
        with self._lock:
            now = self._monotonic()
            hit = self._cache.get((ref.mount, ref.path))
            if hit is None or hit[0] <= now:
                data = self._read(ref)
                hit = (now + self.ttl_s, data)
                self._cache[(ref.mount, ref.path)] = hit
            value = hit[1].get(ref.key)
        if value is None:
            raise SecretError(f"{ref}: the secret {ref.mount}/{ref.path} has no key {ref.key!r}")
        return value

    def _read(self, ref: SecretRef) -> dict[str, SecretStr]:
        import hvac.exceptions

        for attempt in (1, 2):
            client = self._vault_client(ref)
            try:
                response = client.secrets.kv.v2.read_secret_version(
                    path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.Forbidden:
                if attempt == 1 and self._role_id is not None:
                    self._client = None  # the AppRole token expired: log in again once
                    continue
                raise SecretError(f"{ref}: permission denied by Vault at {self.address}") from None
            except hvac.exceptions.InvalidPath:
                raise SecretError(f"{ref}: no secret at {ref.mount}/data/{ref.path}") from None
            except hvac.exceptions.VaultError as exc:
                name = type(exc).__name__
                raise SecretError(f"{ref}: Vault at {self.address} failed ({name})") from None
            except OSError as exc:  # requests' ConnectionError is an OSError
                name = type(exc).__name__
                raise SecretError(f"{ref}: Vault at {self.address} unreachable ({name})") from None
            self.vault_reads += 1
            data = response["data"]["data"] or {}
            return {str(k): SecretStr(str(v)) for k, v in data.items()}
        raise AssertionError("unreachable")

    def _vault_client(self, ref: SecretRef) -> Any:
        if self._client is not None:
            return self._client
        import hvac
        import hvac.exceptions

        if not self.address:
            raise SecretError(f"{ref}: no Vault address (set vault.address or VAULT_ADDR)")
        client = hvac.Client(url=self.address, timeout=self.timeout_s)
        if self._role_id is not None and self._secret_id is not None:
            try:
                client.auth.approle.login(
                    role_id=self._role_id.get_secret_value(),
                    secret_id=self._secret_id.get_secret_value(),
                    mount_point=self.approle_mount,
                )
            except (hvac.exceptions.VaultError, OSError) as exc:
                name = type(exc).__name__
                raise SecretError(
                    f"{ref}: AppRole login at {self.address} failed ({name})"
                ) from None
        elif self._token is not None:
            client.token = self._token.get_secret_value()
        else:
            raise SecretError(f"{ref}: no Vault credentials (set VAULT_TOKEN or vault.token_ref)")
        self._client = client
        return client


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def validate_ref(ref: str | None) -> str | None:
    """For config validators: ``ref`` unchanged if it parses, else ``SecretError``."""
    if ref is not None:
        SecretRef.parse(ref)
    return ref
