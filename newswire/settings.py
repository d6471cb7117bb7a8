"""Settings for every service: one class, built once in ``main()`` and passed down.

Sources, strongest first: command-line options, ``NEWSWIRE_*`` environment variables
(nested with ``__``, e.g. ``NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS``), a TOML config file
(``--config FILE`` or ``NEWSWIRE_CONFIG``), then the defaults below.
With no Kafka or Elasticsearch named, ``newswire up`` runs the embedded defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class KafkaSettings(BaseModel):
    # a validation error must not echo the input: it holds the SASL password
    model_config = ConfigDict(hide_input_in_errors=True)

    bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; empty = start the embedded noida-db broker"
    )
    topic_prefix: str = Field("newswire", description="prefix of every topic name")
    partitions: int = Field(4, ge=1, description="partitions of the entries/articles topics")
    replication_factor: int = Field(1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _sasl_matches_protocol(self) -> KafkaSettings:
        # kafka-python and Faust/aiokafka read a half-set SASL config differently (one sends
        # no credentials, the other SASL or plain TLS): refuse it, naming the settings.
        sasl = self.security_protocol.startswith("SASL_")
        if sasl:
            missing = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                       if not getattr(self, name)]  # an empty SecretStr is falsy too
            if missing:
                raise ValueError(f"kafka.security_protocol={self.security_protocol} needs "
                                 + ", ".join(f"kafka.{name}" for name in missing))
        elif self.sasl_mechanism or self.sasl_username:
            raise ValueError("kafka.sasl_mechanism/sasl_username are set but "
                             f"kafka.security_protocol={self.security_protocol}: use SASL_SSL "
                             "(or SASL_PLAINTEXT) for the credentials to be sent")
        return self

    def client_config(self) -> dict[str, Any]:
        """Connection options in kafka-python's spelling (aiokafka uses the same names)."""
        if not self.bootstrap_servers:
            raise RuntimeError("Kafka bootstrap servers are not known yet (embedded broker not started)")
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value:
                cfg[name] = str(value)
        return cfg


class SearchSettings(BaseModel):
    backend: Literal["embedded", "elasticsearch"] = Field(
        "embedded", description="embedded = tantivy index under the data dir"
    )
    elasticsearch_url: str | None = Field(None, description="e.g. https://localhost:9200")
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    index_prefix: str = Field("newswire", description="index template, alias and index prefix")

    @field_validator("elasticsearch_url")
    @classmethod
    def _no_credentials_in_url(cls, url: str | None) -> str | None:
        # A URL is printed and logged as it is; secrets belong in the SecretStr settings.
        if url and "@" in (urlsplit(url).netloc or ""):
            raise ValueError("put Elasticsearch credentials in search.username/search.password "
                             "or search.api_key, not in the URL (a URL is printed and logged)")
        return url

    @property
    def uses_elasticsearch(self) -> bool:
        return self.backend == "elasticsearch" or bool(self.elasticsearch_url)


class FetchSettings(BaseModel):
    user_agent: str = Field(
        "newswire/0.1 (+https://github.com/newswire-project/newswire; news ingestion bot)",
        description="identifying User-Agent with a contact URL",
    )
    timeout: float = Field(20.0, gt=0, description="seconds for a whole request")
    max_bytes: int = Field(10_000_000, gt=0, description="body size cap (after decompression)")
    max_redirects: int = Field(5, ge=0)
    allow_private_networks: bool = Field(
        False, description="allow loopback/private/link-local targets (tests, closed networks)"
    )
    per_host_concurrency: int = Field(2, ge=1)
    per_host_min_gap: float = Field(1.0, ge=0, description="seconds between requests to one host")
    share_host_limits: bool = Field(
        True, description="per-host limits shared by every process of this node using the same "
        "data dir (<data_dir>/hostlimits.sqlite); limits are per node, not cluster-wide"
    )
    host_limits_file: Path | None = Field(
        None, description="where the shared per-host limits live instead of the data dir: one "
        "local volume mounted into every container of a node (not NFS)"
    )
    obey_robots: bool = True


class PollSettings(BaseModel):
    min_interval: float = Field(120.0, gt=0, description="seconds; fastest a feed is polled")
    max_interval: float = Field(86_400.0, gt=0, description="seconds; slowest a feed is polled")
    default_interval: float = Field(600.0, gt=0)
    max_concurrency: int = Field(200, ge=1, description="feeds fetched at once")
    websub_callback: str | None = Field(
        None, description="public base URL of the WebSub callback listener; when set, feeds "
        "that advertise a hub are subscribed for push (and still polled as a safety net)")
    websub_listen: str = Field("127.0.0.1:8601", pattern=r"^[^\s]*:\d{1,5}$",
                               description="HOST:PORT the WebSub callback listener binds")


class WebSettings(BaseModel):
    host: str = Field("127.0.0.1", description="bind address of the search page and API")
    port: int = Field(8600, ge=0, le=65535)
    token: SecretStr | None = Field(None, description="bearer token required by write endpoints")
    cors_origins: list[str] = Field(default_factory=list)


class ProcessSettings(BaseModel):
    workers: int = Field(0, ge=0, description="extraction processes; 0 = one per core")
    fetch_concurrency: int = Field(32, ge=1, description="article fetches in flight")
    stuck_after: float = Field(
        300.0, gt=0, description="seconds after which an entry still in flight is logged with "
        "where it waits (every fetch hop and retry has its own timeout, so this means a hang)")


class DeadLetterSettings(BaseModel):
    """When a stage would dead-letter more than ``max_share`` of its last ``window`` records
    (after at least ``min_records``), it halts instead (exit code 3) and commits nothing."""

    max_share: float = Field(0.5, gt=0, le=1, description="1.0 = never halt")
    window: int = Field(1000, ge=1)
    min_records: int = Field(100, ge=1)


class IndexSettings(BaseModel):
    membership: Literal["auto", "assign", "group"] = Field(
        "auto", description="assign: one indexer reads every partition (the embedded store's "
        "default); group: indexers share partitions (the Elasticsearch default)")
    embedded_threads: int = Field(
        1, ge=0, le=16, description="tantivy indexing threads of the embedded store (0 = one "
        "per core). Each commit writes a segment per thread, and live ingestion commits small "
        "batches often: one thread halves the CPU per article there; more only speed up bulk "
        "replays (about 2,600 -> 4,000 articles/s on 2 cores)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSWIRE_", env_nested_delimiter="__", extra="ignore",
        hide_input_in_errors=True,  # errors name the setting; its value may be a secret
    )

    config_file: Path | None = Field(None, description="TOML config file")
    data_dir: Path = Field(Path("newswire-data"), description="where all local state lives")
    feeds: list[str] = Field(default_factory=list, description="feed URLs to poll")
    feeds_file: Path | None = Field(None, description="file of feed URLs (one per line) or OPML")
    log_level: str = "INFO"
    taxonomy_file: Path | None = Field(
        None, description="conflict taxonomy YAML replacing the built-in one (no code change)"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics port of a service; 0 = off"
    )
    kafka: KafkaSettings = KafkaSettings()
    search: SearchSettings = SearchSettings()
    fetch: FetchSettings = FetchSettings()
    poll: PollSettings = PollSettings()
    web: WebSettings = WebSettings()
    process: ProcessSettings = ProcessSettings()
    index: IndexSettings = IndexSettings()
    dead_letters: DeadLetterSettings = DeadLetterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        config = init_kwargs.get("config_file") or os.environ.get("NEWSWIRE_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    def topic(self, name: str) -> str:
        return f"{self.kafka.topic_prefix}.{name}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; ``None`` overrides (unset CLI options) are ignored."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)


def child_env(settings: Settings) -> dict[str, str]:
    """Environment that reproduces ``settings`` in a child process (``newswire up``)."""
    env: dict[str, str] = {}

    def put(prefix: str, model: BaseModel) -> None:
        for name, value in model:
            key = f"{prefix}{name.upper()}"
            if isinstance(value, BaseModel):
                put(f"{key}__", value)
            elif value is None:
                continue
            elif isinstance(value, SecretStr):
                env[key] = value.get_secret_value()
            elif isinstance(value, list):
                import json

                env[key] = json.dumps(value)
            else:
                env[key] = str(value)

    put("NEWSWIRE_", settings)
    env.pop("NEWSWIRE_CONFIG_FILE", None)
    return env
