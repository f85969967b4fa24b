"""`cadre.toml`: layered, validated configuration with a source for every value.

Layers, later wins: built-in defaults, the user config dir, `.cadre.toml` at the
workspace root, the file named by `CADRE_CONFIG`, then `CADRE_*` env vars
(`CADRE_ROUTER__COOLDOWN_S=5`). API keys are never stored here: each provider
names the env vars its key is read from.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cadre_core.envfile import is_real_value, user_config_dir
from cadre_core.errors import ConfigError
from cadre_core.models.base import Effort
from cadre_core.models.refs import CLI_PROVIDERS, PROVIDERS, canonical_ref, model_key, parse_model_ref

RoleName = Literal["oracle", "review", "librarian", "search", "vision", "image"]
ProviderName = Literal["anthropic", "openai", "google", "openai_compatible", "codex_cli", "claude_cli", "gemini_cli"]
ROLES: tuple[str, ...] = ("oracle", "review", "librarian", "search", "vision", "image")
"""`image` (generate_image) has no default route: when unset, vision draws with OpenAI's gpt-image-1-mini."""


def is_role(name: str) -> TypeGuard[RoleName]:
    return name in get_args(RoleName)


def is_provider(name: str) -> TypeGuard[ProviderName]:
    return name in get_args(ProviderName)


NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Candidate(_Strict):
    """One model a role may use, with its call settings."""

    model: str
    effort: Effort | None = None
    max_output_tokens: int = Field(default=8192, gt=0)
    context_window: int | None = Field(default=None, gt=0)
    timeout_s: Positive | None = None

    @field_validator("model")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_ref(value)


class RoleConfig(_Strict):
    candidates: list[Candidate] = Field(default_factory=list)
    budget_per_day_usd: NonNegative | None = None
    off_rails: Literal["warn", "fallback"] = "warn"
    """When a detector flags an answer: return it with a warning, or try the next candidate."""
    max_tool_turns: int = Field(default=4, ge=0, le=20)
    """How many rounds of read-only tool calls the role's model may make before it must answer."""


class ProviderConfig(_Strict):
    api_key_env: list[str] = Field(default_factory=list)
    base_url: str | None = None
    base_url_env: str | None = None
    timeout_s: Positive = 900.0
    key_required: bool = True
    structured_output: Literal["json_schema", "json_object", "prompt"] | None = None
    """openai_compatible only: how structured answers are asked for; unset, Cadre finds out per endpoint."""
    tools: bool | None = None
    """openai_compatible only: native tool calls (true) or the tool list in the prompt (false); unset, found out."""
    command: str | None = None
    """CLI agents only: the executable (name on PATH or path); default `codex`, `claude` or `gemini`."""
    allow_writes: bool = False
    """CLI agents only: drop the read-only sandbox / plan mode so the agent may edit files (the ledger says so)."""

    def api_key(self) -> str | None:
        """The first non-empty key among `api_key_env`, or None."""
        var = self.key_source()
        return os.environ[var].strip() if var else None

    def key_source(self) -> str | None:
        """The env var the key is read from, or None when none is set.

        An unexpanded host placeholder such as `${OPENAI_API_KEY}` counts as unset.
        """
        return next((v for v in self.api_key_env if is_real_value(os.environ.get(v, ""))), None)

    def resolved_base_url(self) -> str | None:
        """The SDK's usual env var wins over the file, as the last layer."""
        if self.base_url_env and (env := os.environ.get(self.base_url_env, "").strip()):
            return env
        return self.base_url


class ModelInfo(_Strict):
    context_window: int = Field(gt=0)


class RouterConfig(_Strict):
    retries_per_candidate: int = Field(default=2, ge=0, le=10)
    backoff_initial_s: NonNegative = 0.5
    backoff_max_s: NonNegative = 30.0
    max_retry_after_s: NonNegative = 60.0
    cooldown_s: NonNegative = 60.0
    """How long an open circuit skips a model before one call probes it; 0 turns the breaker off."""
    breaker_window: int = Field(default=10, ge=1, le=1000)
    """Recent attempts per (provider, model) the breaker looks at."""
    breaker_min_attempts: int = Field(default=5, ge=1, le=1000)
    """The breaker never opens on fewer recent attempts than this."""
    breaker_failure_rate: float = Field(default=0.8, gt=0, le=1)
    """Share of recent attempts that failed (from two calls at least) that opens the breaker."""


class BudgetConfig(_Strict):
    per_call_usd: NonNegative | None = None
    per_thread_usd: NonNegative | None = None
    per_day_usd: NonNegative | None = None
    per_month_usd: NonNegative | None = None
    per_user_per_day_usd: NonNegative | None = None
    """Each signed-in user's spend per UTC day (calls with no user, over stdio, are not counted here)."""


class PathConfig(_Strict):
    ledger: Path | None = None
    threads: Path | None = None
    jobs: Path | None = None
    budget: Path | None = None
    results: Path | None = None


class StorageConfig(_Strict):
    url: str | None = None
    """`postgresql://user@host:port/dbname`: ledger, budgets, threads and jobs in one database that replicas
    share (`CADRE_STORAGE_URL` overrides it); unset: SQLite files under [paths]."""


class ServerConfig(_Strict):
    heartbeat_s: float = Field(default=5.0, gt=0, le=10)
    """Hosts cut off silent calls at about 60 s; progress is sent at least every 10 s."""
    max_result_tokens: int = Field(default=20_000, ge=1000)
    """A tool result over this (local estimate) is paged: page 1 inline, the rest as `cadre://results/` links."""
    job_lease_s: float = Field(default=120.0, ge=1)
    """How long a background job's process holds it without a heartbeat (sent every eighth of this) before
    another process or replica may take it over."""


class LibrarianConfig(_Strict):
    allow_private_urls: bool = False
    """Let fetch_page read loopback, private and link-local addresses (an intranet docs site)."""


JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Signature algorithms a Bearer JWT may use: public-key ones only, never `none` or an HMAC (`HS256`)."""


class UpAuthConfig(_Strict):
    """OAuth 2.1 resource-server mode of `cadre up`: Bearer JWTs from the team's identity provider."""

    issuer: str | None = None
    """The identity provider's issuer URL; a token's `iss` must equal it."""
    audience: str | list[str] = Field(default_factory=list)
    """What a token's `aud` must contain (one of them): the API identifier the provider puts there."""
    jwks_url: str | None = None
    """Where the provider publishes its signing keys (JWKS)."""
    user_claim: str = "sub"
    """The claim that names the user in ledger rows and ownership, e.g. `email` or `preferred_username`."""
    algorithms: list[str] = Field(default_factory=lambda: list(JWT_ALGORITHMS))
    resource: str | None = None
    """The public URL clients reach `cadre up` at (https://cadre.example.com), for the RFC 9728 metadata;
    default: taken from each request's scheme and Host."""
    jwks_refresh_s: NonNegative = 30.0
    """A token signed by an unknown key refetches the JWKS at most once per this many seconds."""

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("algorithms")
    @classmethod
    def _public_key_only(cls, value: list[str]) -> list[str]:
        if bad := [a for a in value if a not in JWT_ALGORITHMS]:
            raise ValueError(f"algorithm(s) {', '.join(bad)} not accepted; use some of {', '.join(JWT_ALGORITHMS)}")
        return value

    @field_validator("issuer", "jwks_url", "resource")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        parts = urlsplit(value)
        local = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if not parts.hostname or (parts.scheme != "https" and not (parts.scheme == "http" and local)):
            raise ValueError(f"{value!r} must be an https:// URL (http:// only for localhost)")
        return value

    @property
    def enabled(self) -> bool:
        return self.issuer is not None

    @model_validator(mode="after")
    def _all_or_none(self) -> UpAuthConfig:
        given = {"issuer": self.issuer, "audience": self.audience, "jwks_url": self.jwks_url}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(k for k, v in given.items() if not v)
            raise ValueError(f"[up.auth] needs issuer, audience and jwks_url together; set {missing}")
        return self


class UpConfig(_Strict):
    roots: list[Path] = Field(default_factory=list)
    """The workspaces `cadre up` serves (a relative path is taken from the file that sets it); default: the cwd."""
    auth: UpAuthConfig = Field(default_factory=UpAuthConfig)


class CadreConfig(BaseSettings):
    """The merged configuration."""

    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="CADRE_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    providers: dict[ProviderName, ProviderConfig] = Field(default_factory=dict)
    roles: dict[RoleName, RoleConfig] = Field(default_factory=dict)
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    router: RouterConfig = Field(default_factory=RouterConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    paths: PathConfig = Field(default_factory=PathConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    librarian: LibrarianConfig = Field(default_factory=LibrarianConfig)
    up: UpConfig = Field(default_factory=UpConfig)

    def role_config(self, role: str) -> RoleConfig | None:
        """The settings of `role`; None when it is not configured or not a role."""
        return self.roles.get(role) if is_role(role) else None

    def provider_config(self, provider: str) -> ProviderConfig | None:
        """The settings of `provider`; None when it is not configured or not a provider."""
        return self.providers.get(provider) if is_provider(provider) else None

    @field_validator("providers")
    @classmethod
    def _local_settings_only_where_read(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name, settings in value.items():
            if name != "openai_compatible" and (settings.structured_output is not None or settings.tools is not None):
                raise ValueError(f"structured_output and tools are read only under [providers.openai_compatible], "
                                 f"not [providers.{name}]; remove them there")  # fmt: skip
            if name not in CLI_PROVIDERS and (settings.command is not None or settings.allow_writes):
                raise ValueError(f"command and allow_writes are read only for {', '.join(CLI_PROVIDERS)}, "
                                 f"not [providers.{name}]; remove them there")  # fmt: skip
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    def context_window(self, candidate: Candidate) -> int | None:
        """The candidate's window: its own setting, the `[models]` table, else the price catalog."""
        if candidate.context_window:
            return candidate.context_window
        if info := next((i for ref, i in self.models.items() if model_key(ref) == candidate.model), None):
            return info.context_window
        from cadre_core.pricing import catalog_context_window

        return catalog_context_window(*parse_model_ref(candidate.model))


class LoadedConfig:
    """A validated config plus where each value came from."""

    def __init__(self, config: CadreConfig, sources: dict[tuple[str, ...], str], files: list[str]):
        self.config = config
        self.sources = sources
        self.files = files

    def source_of(self, path: tuple[str, ...]) -> str:
        """The file (or env var) that set `path` or its nearest parent."""
        for end in range(len(path), 0, -1):
            if (src := self.sources.get(tuple(path[:end]))) is not None:
                return src
        below = [src for key, src in self.sources.items() if key[: len(path)] == tuple(path)]
        return below[-1] if below else "default"


def user_config_path() -> Path:
    return user_config_dir() / "cadre.toml"


def find_project_config(start: Path) -> Path | None:
    """`.cadre.toml` in `start` or a parent, stopping at the repository top."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".cadre.toml"
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}. Fix the syntax and retry.", source=label) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}.", source=label) from exc


UNTRUSTED_PROVIDER_KEYS = ("api_key_env", "base_url", "base_url_env")
"""Provider settings a project's `.cadre.toml` may not set: which env vars are sent as keys, and where to."""


def _refuse_untrusted(data: dict[str, Any], source: str) -> None:
    """Raise when a project file (it comes with any repository you open) sets where keys are sent or lets the
    librarian fetch private addresses: a cloned repository could send your API keys to its own server."""
    providers = data.get("providers")
    providers = providers if isinstance(providers, dict) else {}
    found = [
        f"providers.{name}.{key}"
        for name, settings in providers.items()
        if isinstance(settings, dict)
        for key in UNTRUSTED_PROVIDER_KEYS
        if key in settings
    ]
    librarian = data.get("librarian")
    if isinstance(librarian, dict) and "allow_private_urls" in librarian:
        found.append("librarian.allow_private_urls")
    up = data.get("up")
    if isinstance(up, dict) and "auth" in up:
        found.append("up.auth")
    storage = data.get("storage")
    if isinstance(storage, dict) and "url" in storage:
        found.append("storage.url")  # threads hold what you asked: a repository must not send them elsewhere
    paths = data.get("paths")
    paths = paths if isinstance(paths, dict) else {}
    for key, value in paths.items():
        if isinstance(value, str) and not _new_or_database(Path(value).expanduser()):
            raise ConfigError(
                f"paths.{key} points at {value}, which is not a Cadre database (opening it would move it aside and "
                "put one in its place); name a new file or an existing database",
                source=source,
            )
    if found:
        raise ConfigError(
            f"{', '.join(found)} may be set only in your user config ({user_config_path()}) or CADRE_CONFIG, "
            "not in a project's .cadre.toml, which comes with any repository you open and could send your keys "
            "(or, for storage.url, your threads) to its own server (or, for up.auth, let its own identity provider "
            "sign in). Move the setting there.",
            source=source,
        )


def _new_or_database(path: Path) -> bool:
    """True when `path` does not exist, is an empty file, or a file starting with SQLite's header
    (sqlite.org/fileformat.html); never opens anything but a regular file (a FIFO would block)."""
    try:
        if not path.exists():
            return True
        if not path.is_file():
            return False
        with path.open("rb") as f:
            return f.read(16) in (b"", b"SQLite format 3\x00")
    except OSError:
        return False


Sources = dict[tuple[str, ...], str]
"""Where each value came from, by its key path."""


def _merge(
    base: dict[str, Any], layer: dict[str, Any], source: str, sources: Sources, prefix: tuple[str, ...] = ()
) -> None:
    for key, value in layer.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, sources, path)
        else:
            base[key] = value
            for known in [k for k in sources if k[: len(path)] == path]:
                del sources[known]
            _record(value, source, sources, path)


def _record(value: Any, source: str, sources: Sources, path: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(sub, source, sources, (*path, str(key)))
    else:
        sources[path] = source


def _env_layer() -> dict[tuple[str, ...], str]:
    found = {}
    for name in os.environ:
        if name.startswith("CADRE_") and "__" in name:
            found[tuple(p.lower() for p in name[6:].split("__"))] = f"env {name}"
    return found


def load_config(root: Path | None = None, *, user_file: Path | None = None) -> LoadedConfig:
    """Merge every layer and validate; a bad value raises one `ConfigError`."""
    layers: list[tuple[str, dict[str, Any]]] = []
    defaults = resources.files("cadre_core").joinpath("defaults.toml").read_text("utf-8")
    layers.append(("built-in defaults", tomllib.loads(defaults)))
    user = user_file if user_file is not None else user_config_path()
    project = find_project_config(root or Path.cwd())
    explicit = os.environ.get("CADRE_CONFIG", "").strip()
    for path, must_exist in ((user, False), (project, False), (explicit and Path(explicit), True)):
        if not path:
            continue
        if not path.is_file():
            if must_exist:
                raise ConfigError(
                    f"CADRE_CONFIG points to {path}, which does not exist. Fix the path or unset CADRE_CONFIG.",
                    source="CADRE_CONFIG",
                )
            continue
        data = _read_toml(path, str(path))
        if path == project:
            _refuse_untrusted(data, str(path))
        layers.append((str(path), data))

    merged: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for label, data in layers:
        _merge(merged, data, label, sources)
    sources.update(_env_layer())
    from pydantic_settings import SettingsError

    try:
        config = CadreConfig(**merged)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    except SettingsError as exc:
        names = ", ".join(sorted(n for n in os.environ if n.startswith("CADRE_") and n != "CADRE_CONFIG"))
        raise ConfigError(
            f"a CADRE_* environment variable could not be read ({exc}). Use CADRE_<SECTION>__<KEY>=value, "
            "e.g. CADRE_ROUTER__COOLDOWN_S=5, or unset it.",
            source=f"env ({names})" if names else "env",
        ) from None
    return LoadedConfig(config, sources, [label for label, _ in layers])


def _config_error(exc: ValidationError, sources: Sources) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"] if p != "[key]")
    key = ".".join(loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown key '{loc[-1]}'. Remove it or check its spelling."
    elif err["type"] == "literal_error" and len(loc) == 2 and loc[0] == "roles":
        message = f"unknown role '{loc[1]}'; roles are {', '.join(ROLES)}."
    elif err["type"] == "literal_error" and len(loc) == 2 and loc[0] == "providers":
        message = f"unknown provider '{loc[1]}'; use one of {', '.join(p for p in PROVIDERS if p != 'sampling')}."
    elif err["type"] == "greater_than_equal":
        message = f"{message} (got {err.get('input')!r}). Use a non-negative number."
    elif err["type"] == "greater_than":
        message = f"{message} (got {err.get('input')!r}). Use a positive number."
    elif err["type"] in ("less_than_equal", "less_than"):
        message = f"{message} (got {err.get('input')!r}). Use a smaller number."
    elif err["type"].endswith(("_parsing", "_type")):
        expected = err["type"].split("_")[0]
        message = f"{message} (got {err.get('input')!r}). Write a {expected} value here."
    source = LoadedConfig(CadreConfig.model_construct(), sources, []).source_of(loc)
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    return ConfigError(message + more, source=source, key=key)
