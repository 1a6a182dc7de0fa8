"""The one typed settings object: file, then DOCKYARD_* variables, then flags.

A value given later wins. Every problem found is reported at once, one line
each, with the place it came from, by `load_settings` and `dockyard config check`.

The sections are plain frozen dataclasses; pydantic checks them (the constraints
are the `Annotated` metadata) only in `load_settings`, which imports it when
called. The server's workers receive settings already checked (`to_environment`)
and so never load pydantic, about 15 MiB per process.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pickle
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from annotated_types import Ge, Gt, Interval, MinLen

if TYPE_CHECKING:
    import yaml
    from pydantic import ValidationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_DATA_DIR = Path("./data")
ENV_PREFIX = "DOCKYARD_"

_T = TypeVar("_T")


class _Section:
    # pydantic reads this from each section: an unknown key is a mistake.
    __pydantic_config__ = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class HttpSettings(_Section):
    host: str = DEFAULT_HOST
    port: Annotated[int, Interval(ge=1, le=65535)] = DEFAULT_PORT
    workers: Annotated[int, Interval(ge=1, le=64)] = 1
    # The ASGI server `dockyard serve` runs: granian sends blob files itself.
    server: Literal["granian", "uvicorn"] = "granian"
    # Absolute URL clients reach the registry by, when behind a proxy.
    public_url: str | None = None


@dataclass(frozen=True, kw_only=True)
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

    def __post_init__(self) -> None:
        if self.driver == "s3" and not self.s3_bucket:
            raise ValueError("storage.driver s3 needs storage.s3_bucket")


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings(_Section):
    # SQLAlchemy URL; defaults to SQLite in the data directory.
    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    access: bool = True


@dataclass(frozen=True, kw_only=True)
class RegistrySettings(_Section):
    delete_enabled: bool = True
    # Upload sessions untouched this long (seconds) expire, with their bytes.
    upload_max_age: Annotated[int, Ge(1)] = 24 * 3600
    # How often background upkeep runs (seconds); one replica at a time.
    maintenance_interval: Annotated[int, Ge(1)] = 600
    # Garbage collection in the upkeep: every gc_interval seconds (0: never;
    # run `dockyard gc` instead), with these grace periods (docs/gc.md).
    gc_interval: Annotated[int, Ge(0)] = 0
    gc_grace: Annotated[int, Ge(0)] = 3600
    gc_keep_untagged: Annotated[int, Ge(0)] = 3600
    # Retention rules applied in the upkeep every retention_interval seconds
    # (0: never; run `dockyard retention run` instead). See docs/retention.md.
    retention_interval: Annotated[int, Ge(0)] = 0
    # How often each process writes the pull times it noted (seconds).
    pull_flush_interval: Annotated[float, Interval(gt=0, le=3600)] = 5.0


@dataclass(frozen=True, kw_only=True)
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
    timeout: Annotated[float, Gt(0)] = 5.0


@dataclass(frozen=True, kw_only=True)
class GrantSettings(_Section):
    repository: str  # a name or a glob such as "acme/*"
    actions: list[Literal["pull", "push", "delete"]]


@dataclass(frozen=True, kw_only=True)
class OidcRule(_Section):
    # Every claim must match (exact value or glob) for the rule to apply; a rule
    # without claims would admit every pipeline the issuer serves.
    claims: Annotated[dict[str, str], MinLen(1)]
    grants: list[GrantSettings]


@dataclass(frozen=True, kw_only=True)
class OidcIssuer(_Section):
    """A trusted issuer of CI identity tokens, exchanged for registry tokens."""

    issuer: str
    jwks_url: str
    audience: str
    rules: list[OidcRule] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class AuthSettings(_Section):
    enabled: bool = False
    # `service` goes into the challenge and is the tokens' audience.
    service: str = "dockyard"
    issuer: str = "dockyard"
    token_ttl: Annotated[int, Interval(ge=60, le=86400)] = 300
    # Absolute URL of the token endpoint; by default derived from the request.
    realm: str | None = None
    # Signing keys; defaults to <data_dir>/keys.
    keys_dir: Path | None = None
    # Bootstrap: created (or updated) at start-up when a password is given.
    admin_username: str = "admin"
    admin_password: str | None = None
    # Failed logins from one address before it is locked out for a while.
    lockout_attempts: Annotated[int, Ge(1)] = 5
    lockout_seconds: Annotated[int, Ge(1)] = 300
    ldap: LdapSettings | None = None
    oidc: list[OidcIssuer] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class TlsSettings(_Section):
    cert: Path | None = None
    key: Path | None = None
    # Clients must present a certificate signed by this CA (mutual TLS).
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        if self.client_ca is not None and self.cert is None:
            raise ValueError("tls.client_ca needs tls.cert and tls.key")


@dataclass(frozen=True, kw_only=True)
class Settings(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    http: HttpSettings = field(default_factory=HttpSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    log: LogSettings = field(default_factory=LogSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)

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
    import yaml

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
    import yaml

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
        each.name
        for each in dataclasses.fields(Settings)
        if each.default_factory is not dataclasses.MISSING
    }
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        section, _, setting = name.partition("_")
        if section in sections and setting:
            values.setdefault(section, {})[setting] = value
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
    from pydantic import ValidationError

    try:
        return validate(Settings, values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file, lines)) from exc


def validate(kind: type[_T], values: Mapping[str, Any]) -> _T:
    """Check plain values (as parsed from a file) and build a settings section.

    Raises pydantic's ValidationError.
    """
    from pydantic import TypeAdapter

    return TypeAdapter(kind).validate_python(values)


def to_environment(settings: Settings) -> str:
    """Settings, already checked, as one environment value for the workers."""
    return base64.b64encode(pickle.dumps(settings)).decode()


def from_environment(value: str) -> Settings:
    """The inverse of `to_environment`: no checking, and no pydantic to load.

    The value comes from the parent `dockyard serve` process, never from a user.
    """
    settings = pickle.loads(base64.b64decode(value))
    if not isinstance(settings, Settings):
        raise TypeError(f"not settings: {type(settings).__name__}")
    return settings


def as_plain(settings: Settings) -> dict[str, Any]:
    """Settings as JSON-ready values (paths as strings), for `config show`."""
    plain: dict[str, Any] = json.loads(
        json.dumps(dataclasses.asdict(settings), default=str)
    )
    return plain


def _describe(
    exc: ValidationError, source: Path | None, lines: dict[tuple[str, ...], int]
) -> list[str]:
    problems = []
    for each in exc.errors():
        location = tuple(str(part) for part in each["loc"])
        where = ".".join(location)
        line = lines.get(location)
        prefix = f"{source}:{line}: " if source and line else ""
        given = each.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        message = _MESSAGES.get(each["type"], each["msg"])
        problems.append(f"{prefix}{where}: {message}{shown}")
    return problems


# pydantic words some errors for function calls; say them for settings.
_MESSAGES = {"unexpected_keyword_argument": "not a known setting"}
