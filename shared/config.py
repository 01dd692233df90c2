"""One Settings object, read from ``DEARMP_*`` environment variables.

A missing or placeholder secret refuses to start, with a one-line reason, in live delivery mode
and whenever ``DEARMP_BASE_URL`` is not a local address: anyone who knows the placeholder can
forge confirm and unsubscribe links for a site others can reach.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER = "change-me"


def _is_local(url: str) -> bool:
    """Whether a base URL is only reachable from this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=8)
def proxy_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Trusted proxies as written in DEARMP_FORWARDED_ALLOW_IPS: addresses ("10.0.1.5") or
    networks ("10.0.1.0/24"), comma-separated; empty: none. "*" (every address) is refused:
    behind a proxy that appends the real address, a client could put any address of its own
    in front of it and be believed."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if entry == "*":
            raise ValueError(
                "'*' would let any client choose its own address (and escape every per-address "
                "limit); list your proxies' addresses or networks, e.g. 10.0.1.5,10.0.2.0/24"
            )
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry[:60]!r} is not an IP address or network (e.g. 10.0.1.5 or 10.0.2.0/24)"
            ) from None
    return tuple(networks)


class ConfigError(RuntimeError):
    """Configuration that must not be run with; the message is one line for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEARMP_", extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/dearmp"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    smtp_url: str = "smtp://127.0.0.1:1025"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = PLACEHOLDER
    delivery: Literal["sandbox", "live"] = "sandbox"
    sandbox_to: str = "sandbox@dearmp.invalid"
    mail_domain: str = "dearmp.invalid"
    operator_contact: str = ""  # where MPs' offices reach us ("": hello@mail_domain)
    # DKIM (shared/dkim.py): every message signed with this key when both are set; the domain
    # defaults to mail_domain. ``dearmp dkim keygen`` makes a key and prints its DNS record.
    dkim_selector: str = ""
    dkim_private_key_file: str = ""
    dkim_domain: str = ""
    # Bounces (services/mailer/bounces/): each email's envelope sender (return path) is
    # ``<bounces_local_part>+<token>@mail_domain`` (VERP; empty: the From address, no VERP), and
    # ``dearmp serve bounces`` takes the bounces the operator's mail server forwards, over SMTP.
    bounces_local_part: str = "bounces"
    bounces_host: str = "127.0.0.1"
    bounces_port: int = 2525
    resolver_backends: str = "local,postcodes_io"
    postcodes_io_url: str = "https://api.postcodes.io"
    members_api_url: str = "https://members-api.parliament.uk"
    http_port: int = 8000
    http_host: str = "127.0.0.1"
    http_workers: int = 1  # intake web processes on this host
    http_threads: int = 8  # threads per intake process for blocking (database) work
    http_db_pool: int = 10  # async database connections per intake process, for signing

    # Abuse controls (intake): "count/seconds", counted in Postgres so they hold across replicas.
    rate_limit_ip: str = "60/600"
    rate_limit_email: str = "5/3600"
    # Proxies whose X-Forwarded-For intake believes: addresses or networks, comma-separated
    # (services/intake/clients.py; "*" is refused: a client could choose its own address).
    forwarded_allow_ips: str = "127.0.0.1"

    # Resolver: how long a signature for a vacant seat waits before it is tried again, and how
    # often the resolver looks for held signatures that are due.
    vacant_retry_seconds: int = 86400
    # When Parliament is dissolved for a general election (ISO 8601 with its offset, e.g.
    # "2029-05-30T00:01:00+01:00"; empty: it sits). From then, an MP counts as sitting only if
    # the MP data was refreshed after it (``dearmp data refresh-mps`` or ``import-mps`` after the
    # election): until then letters to MPs wait, held, and the refresh releases them.
    dissolution_at: str = ""
    held_sweep_seconds: float = 60.0

    # Mailer: outgoing messages per second per process, shared by its sender threads (0 = no
    # limit; with N replicas the provider sees up to N times this). One confirmation reminder
    # this long after signing if still unconfirmed; letter bodies and other personal data in the
    # mailer's tables scrubbed this many days after sending. The sweeps run every *_sweep_seconds.
    smtp_rate: float = 0.0
    # How long to wait at each SMTP step: RFC 5321's minimums unless set ("dot=600,block=180";
    # steps: greeting, command, data, block, dot). After the server refuses our set-up (530,
    # a 5xx to MAIL FROM, TLS), sending pauses this long, doubling up to the longest.
    smtp_timeouts: str = ""
    smtp_pause_seconds: float = 30.0
    smtp_pause_max_seconds: float = 900.0
    # Kind to MPs' inboxes (services/mailer/scheduled.py): at most mp_daily_cap individual
    # letters a day to one MP's address (0: no cap), the rest wait for the next days; a digest
    # campaign's day goes to each MP at digest_hour (Europe/London) the next day. Both looked
    # for every scheduled_sweep_seconds.
    mp_daily_cap: int = 0
    digest_hour: int = 0  # 0-23
    scheduled_sweep_seconds: float = 60.0
    # A sending claim is a lease this long, renewed while the send waits: another sender may
    # take the email over only after it ends (the sender died).
    send_lease_seconds: float = 60.0
    reminder_after_seconds: float = 86400.0
    reminder_sweep_seconds: float = 60.0
    # "Did your MP reply?" (services/mailer/replies.py): one question this long after the letter
    # went, one reminder of it this long after the question (unless answered yes or no), looked
    # for every reply_sweep_seconds. A pasted reply is kept reply_text_days after it was pasted.
    reply_question_after_seconds: float = 14 * 86400.0
    reply_reminder_after_seconds: float = 7 * 86400.0
    reply_sweep_seconds: float = 60.0
    reply_text_days: float = 365.0
    # How long personal data is kept (docs/privacy.md has the whole table, shared/retention.py
    # the rule for every column; tests/unit/test_retention.py checks they agree).
    retention_days: float = 28.0  # letters' bodies, subjects and supporters' addresses
    retention_sweep_seconds: float = 3600.0
    pending_signature_days: float = 14.0  # never confirmed: the link's 7 days, the reminder, a week
    help_request_days: float = 90.0  # "Can't sign? Tell us" messages, handled or not
    inbox_retention_days: float = 30.0  # which events each consumer handled (no personal data)

    # Updates fan-out: how often the updates worker looks for work, subscribers recorded per keyset
    # page, emails per batch (job counts are written once per batch), how long one sweep works
    # before letting go of its job, and the first pause after an SMTP 4xx or connection failure
    # (doubling up to fanout_pause_max_seconds).
    fanout_sweep_seconds: float = 1.0
    fanout_page: int = 1000
    fanout_batch: int = 200
    fanout_slice_seconds: float = 10.0
    fanout_pause_seconds: float = 30.0
    fanout_pause_max_seconds: float = 900.0

    # Webhooks (the updates worker sends them): how often it looks for due deliveries, each
    # request's timeout, the first retry's delay (doubling up to the longest) and the attempts
    # before a delivery is marked failed; delivered and failed bodies (personal data) are
    # deleted after webhook_body_hours, the rows (ids, states, the failure log) after
    # webhook_retention_days. http://127.0.0.1 endpoints only when allowed (tests, development).
    webhooks_allow_http_localhost: bool = False
    webhook_sweep_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    webhook_retry_seconds: float = 30.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_max_attempts: int = 16
    webhook_body_hours: float = 24.0
    webhook_retention_days: float = 30.0

    # Broker behaviour. The namespace prefixes every exchange and queue name, so tests (and
    # several deployments on one broker) never meet each other's messages.
    broker_namespace: str = "dearmp"
    prefetch: int = 16
    # The mailer's consumers take fewer ahead: each message waits tens of milliseconds on a mail
    # server, and what one busy consumer holds cannot go to an idle one (or another process).
    mailer_prefetch: int = 4
    heartbeat: int = 30
    max_attempts: int = 5
    retry_delays_ms: str = "1000,5000,30000,120000"

    # Workers serve /healthz, /readyz and /metrics here (0 = pick a free port).
    metrics_port: int = 9100
    # Where the relay and workers listen for /healthz, /readyz and /metrics: this machine only,
    # unless a scraper elsewhere needs them (0.0.0.0 in containers).
    metrics_host: str = "127.0.0.1"
    relay_batch_size: int = 500
    outbox_retention_days: int = 7  # sent events (which carry personal data) are deleted after
    relay_idle_sleep: float = 0.05
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, url: str) -> str:
        # Accept plain postgres:// URLs as operators write them; SQLAlchemy needs the driver named.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_by_address(cls, text: str) -> str:
        proxy_networks(text)  # a ValueError names what is wrong
        return text

    @property
    def trusted_proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The proxies (DEARMP_FORWARDED_ALLOW_IPS) whose X-Forwarded-For intake believes."""
        return proxy_networks(self.forwarded_allow_ips)

    @field_validator("dissolution_at")
    @classmethod
    def _a_moment(cls, text: str) -> str:
        if text.strip():
            moment = datetime.fromisoformat(text.strip())  # a ValueError names what is wrong
            if moment.tzinfo is None:
                raise ValueError("DEARMP_DISSOLUTION_AT needs its UTC offset, e.g. +01:00")
        return text.strip()

    @property
    def dissolved_from(self) -> datetime | None:
        """When Parliament is (or will be) dissolved, if configured."""
        return datetime.fromisoformat(self.dissolution_at) if self.dissolution_at else None

    @field_validator("smtp_timeouts")
    @classmethod
    def _smtp_steps(cls, text: str) -> str:
        from shared.smtp import SmtpTimeouts

        SmtpTimeouts.parse(text)  # a ValueError names what is wrong
        return text

    @model_validator(mode="after")
    def _live_needs_real_secrets(self) -> Settings:
        weak = self.secret_key in ("", PLACEHOLDER) or len(self.secret_key) < 16
        if weak and self.delivery == "live":
            raise ValueError(
                "DEARMP_SECRET_KEY is missing or a placeholder; live delivery needs a real secret"
            )
        if weak and not _is_local(self.base_url):
            raise ValueError(
                "DEARMP_SECRET_KEY is missing or a placeholder; a site at a public address "
                "(DEARMP_BASE_URL) needs a real secret, or anyone could forge its links"
            )
        if self.delivery == "live" and self.mail_domain.endswith(".invalid"):
            raise ValueError("DEARMP_MAIL_DOMAIN must be a real domain in live delivery mode")
        return self

    @property
    def retry_delays(self) -> list[int]:
        return [int(part) for part in self.retry_delays_ms.split(",") if part.strip()]


def load_settings() -> Settings:
    """Read settings from the environment; raise ConfigError with a one-line reason."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        if field == "settings" or not first["loc"]:
            raise ConfigError(message) from None
        raise ConfigError(f"DEARMP_{field.upper()}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
