"""Settings, read once from MAILPULSE_* environment variables or a .env file, then frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerting.urls import webhook_url_problem
from schemas.inbound import INBOUND_MAX_BYTES
from schemas.signatures import load_public_key


class Settings(BaseSettings):
    # Errors name the field and the problem, never the value given: several values are secrets (a Slack
    # webhook URL carries its token), and a typo in one must not print it to the log.
    model_config = SettingsConfigDict(
        env_prefix="MAILPULSE_", env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    data_dir: Path = Field(Path(".mailpulse"), description="Local state (embedded ClickHouse data).")
    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers; unset = start an embedded Tansu broker on loopback."
    )
    kafka_enable_idempotence: bool = Field(
        False, description="Idempotent producer; enable on real Kafka (Tansu does not support it)."
    )
    status_topic: str = Field("mailpulse.email-status", description="Topic of canonical status events.")
    deadletter_topic: str = Field("mailpulse.deadletter", description="Topic of undecodable/invalid input.")
    partitions: int = Field(6, ge=1, description="Partitions of the topics mailpulse creates.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of created topics.")
    topic_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, ge=0, description="retention.ms of created topics (0 = broker default)."
    )
    journal_seal_s: float = Field(
        5.0,
        gt=0,
        description="Embedded broker only: seconds a journal segment takes appends before it is sealed "
        "and may be deleted once loaded.",
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or JSON.")
    clickhouse_url: str | None = Field(
        None,
        description="clickhouse-connect DSN (http(s)://…); unset = embedded chDB under data_dir.",
        repr=False,  # it may hold a password
    )
    clickhouse_database: str = Field("mailpulse", description="ClickHouse database.")
    clickhouse_cluster: str | None = Field(
        None, description="Cluster name: DDL ON CLUSTER, Replicated engines (one shard, N replicas)."
    )
    retention_days: int = Field(
        0, ge=0, description="Days raw events, transitions and message states are kept (TTL; 0 = forever)."
    )
    rollup_retention_days: int = Field(
        0,
        ge=0,
        description="Days rollup_minute and message_minute (analytics, alerts) are kept (0 = forever).",
    )
    ingest_host: str = Field("127.0.0.1", description="Ingest bind address.")
    ingest_port: int = Field(8080, ge=0, le=65535, description="Ingest port (0 = any free port).")
    ingest_max_connections: int = Field(
        1000,
        ge=1,
        description="Most connections and requests ingest serves at once; past it new requests get 503.",
    )
    ingest_backlog: int = Field(
        2048, ge=1, description="Connections the kernel queues for ingest before they are accepted."
    )
    publish_timeout_s: float = Field(
        3.0, gt=0, description="Longest wait for Kafka acks before ingest answers 503 (Twilio allows 5 s)."
    )
    ingest_max_queued_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Most event bytes ingest holds unacknowledged by Kafka; past it, 503 at once.",
    )
    max_body_bytes: int = Field(
        5 * 1024 * 1024, gt=0, description="Largest event-batch body (SendGrid posts ~768 KB at most)."
    )
    max_batch_elements: int = Field(
        10_000,
        gt=0,
        description="Most elements in one event batch, else 413 (SendGrid posts ~1,000, Twilio at most 100).",
    )
    inbound_max_bytes: int = Field(
        INBOUND_MAX_BYTES, gt=0, description="Largest Inbound Parse body (a mail is at most 20 MB)."
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, description="SendGrid signed Event Webhook public key (base64 DER); set = signatures required."
    )
    sendgrid_inbound_public_key: str | None = Field(
        None, description="Inbound Parse security-policy public key (base64 DER); set = signatures required."
    )
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio auth token; set = X-Twilio-Signature required on Twilio events."
    )
    allow_unsigned: bool = Field(
        False,
        description="Let ingest accept unsigned events on endpoints without a signature key (logged as a "
        "warning); false = `mailpulse ingest` refuses to start while any endpoint lacks its key.",
    )
    signature_tolerance_s: int = Field(
        300, ge=1, description="Largest distance of a signed timestamp from now (replay window), seconds."
    )
    public_base_url: str | None = Field(
        None, description="External base URL Twilio signs (behind a proxy); unset = the URL ingest sees."
    )
    recipient_privacy: Literal["plain", "hashed", "domain"] = Field(
        "plain", description="Recipient addresses stored as-is, keyed-hashed, or domain only."
    )
    recipient_hash_key: SecretStr | None = Field(
        None, description="HMAC key for recipient_privacy hashed or domain (keep it secret and stable)."
    )
    stuck_after_s: float = Field(
        120.0, gt=0, description="A partition with lag and no commit for this long makes /readyz fail."
    )
    metrics_port: int = Field(
        9108,
        ge=0,
        le=65535,
        description="Port of /healthz, /readyz, /metrics of `mailpulse process` (0 = off).",
    )
    consumer_group: str = Field("mailpulse-processors", description="Processor consumer group.")
    consumer_session_timeout_ms: int = Field(
        10_000, ge=1000, description="Consumer group session timeout (Tansu delays a join by half of it)."
    )
    batch_max_records: int = Field(20_000, ge=1, description="Most records loaded in one batch.")
    batch_wait_ms: int = Field(1000, ge=1, description="Longest wait to fill a batch (about 1 insert/s).")
    alerts_rules_file: Path | None = Field(
        None, description="TOML file of alert rules (see README Alerting); unset = the default rules."
    )
    alerts_interval_s: float = Field(30.0, gt=0, description="Pause between two alert evaluations, seconds.")
    alerts_webhook_url: SecretStr | None = Field(
        None, description="URL alert notifications are POSTed to (Slack-compatible JSON); unset = no webhook."
    )
    alerts_webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one alert webhook request.")
    alerts_webhook_attempts: int = Field(
        4, ge=1, description="Attempts per alert webhook on 429, 5xx or network errors (backoff doubles)."
    )
    alerts_notify_deadline_s: float = Field(
        10.0,
        gt=0,
        description="Time one evaluation gives each notification channel (webhook, Kafka; they run "
        "concurrently); what it did not deliver is retried at the next evaluation.",
    )
    alerts_notify_expiry_s: float = Field(
        3600.0,
        gt=0,
        description="A notification still undelivered this long after its transition is given up: an "
        "`expired` row in alert_outbox, an error log and the notifications metric (outcome expired).",
    )
    alerts_topic: str = Field("mailpulse.alerts", description="Topic alert transitions are published to.")
    alerts_metrics_port: int = Field(
        9110,
        ge=0,
        le=65535,
        description="Port of /healthz, /metrics of `mailpulse alerts` (0 = off; 9109 is the poller's).",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token of the /api/* analytics API; unset = the API answers 503 "
        "(`mailpulse dashboard` then generates one and prints it).",
    )
    dashboard_host: str = Field("127.0.0.1", description="`mailpulse dashboard` bind address.")
    dashboard_port: int = Field(8090, ge=0, le=65535, description="`mailpulse dashboard` port (0 = any).")
    dashboard_refresh_s: int = Field(
        10, ge=1, le=3600, description="Seconds between two live refreshes of the /dashboard page."
    )
    # Poller (`mailpulse poll`): reads the Email API and publishes what webhooks missed.
    email_api_base_url: str = Field(
        "https://comms.twilio.com",
        description="Email API base URL the poller reads (the simulator: http://127.0.0.1:PORT).",
    )
    email_api_key_sid: str | None = Field(
        None, description="Email API key SID (basic auth user) for the poller; unset = no credentials."
    )
    email_api_key_secret: SecretStr | None = Field(
        None, description="Email API key secret (basic auth password) for the poller."
    )
    poll_interval_s: float = Field(10.0, gt=0, description="Pause between two poll cycles, seconds.")
    poll_page_size: int = Field(
        1000, ge=1, le=1000, description="pageSize of the poller's list requests (the API allows 1..1000)."
    )
    poll_rate_per_s: float = Field(20.0, gt=0, description="Most Email API requests per second.")
    poll_concurrency: int = Field(4, ge=1, description="Most Email API requests in flight.")
    poll_timeout_s: float = Field(10.0, gt=0, description="Timeout of one Email API request, seconds.")
    poll_max_attempts: int = Field(
        6, ge=1, description="Attempts per request on 429, 5xx or network errors before the cycle stops."
    )
    poll_backoff_base_s: float = Field(
        0.5, gt=0, description="First backoff step (full jitter, doubling); Retry-After is a floor."
    )
    poll_backoff_max_s: float = Field(60.0, gt=0, description="Longest backoff without Retry-After.")
    poll_reconcile_after_s: float = Field(
        900.0, gt=0, description="Re-poll an email that has no settled status after this long unseen."
    )
    poll_retention_warn_s: float = Field(
        6 * 86_400.0, gt=0, description="Warn when the checkpoint is this far behind (the API keeps 7 days)."
    )
    poll_checkpoint: Path | None = Field(
        None, description="Poller checkpoint (SQLite); unset = poller.sqlite3 under data_dir."
    )
    poll_metrics_port: int = Field(
        9109, ge=0, le=65535, description="Port of /metrics of `mailpulse poll` (0 = off)."
    )

    @field_validator(
        "sendgrid_webhook_public_key", "sendgrid_inbound_public_key", "twilio_auth_token", "api_token"
    )
    @classmethod
    def _empty_is_unset(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        # An empty variable (compose's ${VAR:-}) means unset: no key, no token.
        shown = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if shown is not None and not shown.strip() else value

    @field_validator("sendgrid_webhook_public_key", "sendgrid_inbound_public_key")
    @classmethod
    def _loadable_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)  # raises ValueError saying what is wrong with it
        return value

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s):// URL, as Twilio calls it")
        return value

    @field_validator("alerts_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None  # an empty variable (compose's ${VAR:-}) means no webhook
        problem = webhook_url_problem(value.get_secret_value()) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _privacy_key(self) -> Settings:
        if self.recipient_privacy != "plain" and not (
            self.recipient_hash_key and self.recipient_hash_key.get_secret_value()
        ):
            raise ValueError(
                f"MAILPULSE_RECIPIENT_PRIVACY={self.recipient_privacy} needs MAILPULSE_RECIPIENT_HASH_KEY "
                "(a long random secret; hashed and domain modes key the recipients' hashes with it)"
            )
        return self

    @model_validator(mode="after")
    def _email_api_credentials(self) -> Settings:
        if (self.email_api_key_sid is None) != (self.email_api_key_secret is None):
            raise ValueError(
                "set both MAILPULSE_EMAIL_API_KEY_SID and MAILPULSE_EMAIL_API_KEY_SECRET, or neither"
            )
        return self

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def poll_checkpoint_path(self) -> Path:
        return self.poll_checkpoint or self.data_dir / "poller.sqlite3"

    def clickhouse_dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def topics(self) -> list[str]:
        return [self.status_topic, self.deadletter_topic, self.alerts_topic]
