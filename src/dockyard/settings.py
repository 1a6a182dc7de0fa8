"""The one typed settings object: file, then DOCKYARD_* variables, then flags.

A value given later wins. Every problem found is reported at once, one line
each, with the place it came from, by `load_settings` and `dockyard config check`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_DATA_DIR = Path("./data")
ENV_PREFIX = "DOCKYARD_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Section):
    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    # The ASGI server `dockyard serve` runs: granian sends blobs with sendfile.
    server: Literal["granian", "uvicorn"] = "granian"
    # Absolute URL clients reach the registry by, when behind a proxy.
    public_url: str | None = None


class StorageSettings(_Section):
    driver: Literal["filesystem", "s3"] = "filesystem"
    # Where the filesystem driver keeps blobs; defaults to the data directory.
    root: Path | None = None
    # The S3 driver (AWS or any S3-compatible store): see docs/storage.md.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_prefix: str = ""
    # Answer blob GETs with a redirect to a presigned URL instead of streaming.
    s3_redirect: bool = False
    s3_sse: Literal["AES256", "aws:kms"] | None = None
    s3_sse_kms_key_id: str | None = None

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> StorageSettings:
        if self.driver == "s3" and not self.s3_bucket:
            raise ValueError("storage.driver s3 needs storage.s3_bucket")
        return self


class DatabaseSettings(_Section):
    # SQLAlchemy URL; defaults to SQLite in the data directory.
    url: str | None = None


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    access: bool = True


class RegistrySettings(_Section):
    delete_enabled: bool = True
    # Upload sessions untouched this long (seconds) expire, with their bytes.
    upload_max_age: int = Field(24 * 3600, ge=1)
    # How often background upkeep runs (seconds); one replica at a time.
    maintenance_interval: int = Field(600, ge=1)
    # Garbage collection in the upkeep: every gc_interval seconds (0: never;
    # run `dockyard gc` instead), with these grace periods (docs/gc.md).
    gc_interval: int = Field(0, ge=0)
    gc_grace: int = Field(3600, ge=0)
    gc_keep_untagged: int = Field(3600, ge=0)
    # Retention rules applied in the upkeep every retention_interval seconds
    # (0: never; run `dockyard retention run` instead). See docs/retention.md.
    retention_interval: int = Field(0, ge=0)
    # How often each process writes the pull times it noted (seconds).
    pull_flush_interval: float = Field(5.0, gt=0, le=3600)


class LdapSettings(_Section):
    """Users bind against a directory; their groups map to namespace roles."""

    url: str  # ldap://host:port or ldaps://host:port
    user_dn_template: str = "uid={username},ou=people,dc=example,dc=org"
    # Group search, run with the user's own bind unless bind_dn is given.
    group_base: str | None = None
    group_filter: str = "(member={user_dn})"
    group_attribute: str = "cn"
    bind_dn: str | None = None
    bind_password: str | None = None
    start_tls: bool = False
    timeout: float = Field(5.0, gt=0)


class GrantSettings(_Section):
    repository: str  # a name or a glob such as "acme/*"
    actions: list[Literal["pull", "push", "delete"]]


class OidcRule(_Section):
    # Every claim must match (exact value or glob) for the rule to apply; a rule
    # without claims would admit every pipeline the issuer serves.
    claims: dict[str, str] = Field(min_length=1)
    grants: list[GrantSettings]


class OidcIssuer(_Section):
    """A trusted issuer of CI identity tokens, exchanged for registry tokens."""

    issuer: str
    jwks_url: str
    audience: str
    rules: list[OidcRule] = []


class AuthSettings(_Section):
    enabled: bool = False
    # `service` goes into the challenge and is the tokens' audience.
    service: str = "dockyard"
    issuer: str = "dockyard"
    token_ttl: int = Field(300, ge=60, le=86400)
    # Absolute URL of the token endpoint; by default derived from the request.
    realm: str | None = None
    # Signing keys; defaults to <data_dir>/keys.
    keys_dir: Path | None = None
    # Bootstrap: created (or updated) at start-up when a password is given.
    admin_username: str = "admin"
    admin_password: str | None = None
    # Failed logins from one address before it is locked out for a while.
    lockout_attempts: int = Field(5, ge=1)
    lockout_seconds: int = Field(300, ge=1)
    ldap: LdapSettings | None = None
    oidc: list[OidcIssuer] = []


class TlsSettings(_Section):
    cert: Path | None = None
    key: Path | None = None
    # Clients must present a certificate signed by this CA (mutual TLS).
    client_ca: Path | None = None

    @model_validator(mode="after")
    def _pairs(self) -> TlsSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        if self.client_ca is not None and self.cert is None:
            raise ValueError("tls.client_ca needs tls.cert and tls.key")
        return self


class Settings(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    http: HttpSettings = HttpSettings()
    storage: StorageSettings = StorageSettings()
    database: DatabaseSettings = DatabaseSettings()
    log: LogSettings = LogSettings()
    registry: RegistrySettings = RegistrySettings()
    auth: AuthSettings = AuthSettings()
    tls: TlsSettings = TlsSettings()

    @property
    def storage_root(self) -> Path:
        return self.storage.root or self.data_dir

    @property
    def keys_dir(self) -> Path:
        return self.auth.keys_dir or self.data_dir / "keys"

    @property
    def database_url(self) -> str:
        from dockyard.metadata.engine import default_url

        return self.database.url or default_url(self.data_dir)


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _read_file(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Parse a YAML or TOML file; also return the line of each key (YAML only)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text), {}
        document = yaml.safe_load(text) or {}
        lines = _yaml_lines(yaml.compose(text))
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: not valid {path.suffix[1:]}: {exc}"]) from exc
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    return document, lines


def _yaml_lines(
    node: yaml.Node | None, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            lines[path] = key.start_mark.line + 1
            lines.update(_yaml_lines(value, path))
    return lines


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """DOCKYARD_HTTP_PORT=5001 becomes {"http": {"port": "5001"}}."""
    values: dict[str, Any] = {}
    sections = {
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.default, BaseModel)
    }
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        section, _, field = name.partition("_")
        if section in sections and field:
            values.setdefault(section, {})[field] = value
        else:
            values[name] = value
    return values


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay `extra` on `base`; None in `extra` means "not given"."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping):
            current = merged.get(key)
            nested = _merge(current if isinstance(current, dict) else {}, value)
            if nested or current is not None:
                merged[key] = nested
        elif value is not None:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from a file, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(environ[f"{ENV_PREFIX}CONFIG"])
    values: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if config_file is not None:
        values, lines = _read_file(config_file)
    values = _merge(values, _from_environment(environ))
    values = _merge(values, overrides or {})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file, lines)) from exc


def _describe(
    exc: ValidationError, source: Path | None, lines: dict[tuple[str, ...], int]
) -> list[str]:
    problems = []
    for error in exc.errors():
        location = tuple(str(part) for part in error["loc"])
        where = ".".join(location)
        line = lines.get(location)
        prefix = f"{source}:{line}: " if source and line else ""
        given = error.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        problems.append(f"{prefix}{where}: {error['msg']}{shown}")
    return problems
