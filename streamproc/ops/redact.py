"""Secret redaction: one implementation for logs, errors, metrics labels and notify/.

Apprise URLs carry their credentials in every position: ``mailto://user:pass@host``,
``slack://TokenA/TokenB/TokenC`` (the "host" is a token), ``tgram://123:ABC/chat``,
``json://host/path?token=...``. So ``redact_url`` is conservative: it keeps the scheme, and the
host (and port) only when the host is plainly a network address (an IP, ``localhost`` or a DNS
name with an alphabetic top-level label); everything else becomes ``***``::

    mailto://user:pw@smtp.example.com/?to=a@b.c  ->  mailto://smtp.example.com/***
    slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazk      ->  slack://***
    json://127.0.0.1:8080/hook?token=abc          ->  json://127.0.0.1:8080/***

``redact_text`` applies that to every URL inside free text, masks ``password=...``-style
pairs and ``Bearer``/``Basic`` credentials, and replaces every value registered with
``register_secret`` (SASL and MQTT passwords, read at startup) wherever it appears.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import urllib.parse

MASK = "***"

# A URL inside text: scheme://, then anything up to whitespace or a quote/bracket.
_URL_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]{0,31})://([^\s'\"<>`]*)")
# key=value, key: value, 'key': 'value', "key": "value" for secret-ish keys.
_KV_RE = re.compile(
    r"""(?ix)
    (\b(?:[a-z0-9_.\-]*(?:password|passwd|passphrase|secret|token|api[_\-]?key|apikey
        |access[_\-]?key|private[_\-]?key|credentials?)|pwd|pass)
     ["']?\s*[=:]\s*)
    (["']?)
    ([^\s"',;&)}\]]+)
    """
)
_AUTH_RE = re.compile(r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/\-]+=*)")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_SERVICE_RE = re.compile(r"^[A-Za-z0-9_.+\-]{1,40}$")

# Secrets shorter than this are not registered: masking every "abc" in every log line would
# make logs unreadable; such a secret is not one anyway.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded form) wherever it appears in redacted text."""
    global _secret_re
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        before = len(_secrets)
        _secrets.add(value)
        for variant in (urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)):
            _secrets.add(variant)
        if len(_secrets) != before:
            # Longest first so a secret containing another is masked whole.
            alternatives = sorted(_secrets, key=len, reverse=True)
            _secret_re = re.compile("|".join(re.escape(s) for s in alternatives))


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _secret_re
    with _lock:
        _secrets.clear()
        _secret_re = None


def _plain_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    return _HOSTNAME_RE.match(host) is not None


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` plus ``/***`` when anything else was there; the host itself is
    masked unless it is plainly a network address (see the module docstring)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    scheme = scheme if _SERVICE_RE.match(scheme) else MASK
    # The authority ends at the first / ? or #; credentials end at its last @.
    cut = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1 and i < cut:
            cut = i
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):  # [v6]:port
        end = hostport.find("]")
        host, port = hostport[: end + 1], hostport[end + 1 :].lstrip(":")
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if not (port.isascii() and port.isdigit()):
        # "123:ABC" is a Telegram token, not host:port.
        host, port = hostport, ""
    removed = bool(at or userinfo or tail.strip("/"))
    if host and _plain_host(host):
        out = f"{scheme}://{host}" + (f":{port}" if port else "")
    else:
        out = f"{scheme}://{MASK}"
        removed = False  # the mask already says it
    return out + (f"/{MASK}" if removed else "")


def service_name(channel: str) -> str:
    """The service name of an Apprise URL (its scheme), or ``channel`` itself when it already
    is a plain name; anything else reads ``unknown``. Safe as a metrics label."""
    if "://" in channel:
        channel = channel.split("://", 1)[0]
    channel = channel.strip().lower()
    return channel if _SERVICE_RE.match(channel) else "unknown"


def _kv_sub(match: re.Match[str]) -> str:
    value = match.group(3)
    if value == MASK or value.startswith(MASK):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{MASK}"


def redact_text(text: str) -> str:
    """Mask URLs' credentials, secret-looking key/value pairs, auth headers and registered
    secrets in ``text``."""
    if not text:
        return text
    secret_re = _secret_re
    if secret_re is not None:
        text = secret_re.sub(MASK, text)
    if "://" in text:
        text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    text = _KV_RE.sub(_kv_sub, text)
    return _AUTH_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)


def _token_like(part: str) -> bool:
    """A URL part that is probably a credential: long, or digits mixed with letters."""
    if len(part) >= 16:
        return True
    return len(part) >= 8 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)


def register_url_secrets(url: str) -> None:
    """Register the credential-looking parts of an Apprise URL (password, user key, a host
    that is a token, token-like path segments and query values), so they are masked even
    where a library prints one alone."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        register_secret(urllib.parse.unquote(password))
        if _token_like(user):
            register_secret(urllib.parse.unquote(user))
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if hostname and not _plain_host(hostname):
        register_secret(urllib.parse.unquote(host))
        for piece in host.split(":"):
            if _token_like(piece):
                register_secret(piece)
    for segment in path.split("/"):
        segment = urllib.parse.unquote(segment)
        if _token_like(segment):
            register_secret(segment)
    for _key, value in urllib.parse.parse_qsl(query, keep_blank_values=False):
        if _token_like(value) or _key.lower() in (
            "token",
            "key",
            "apikey",
            "secret",
            "password",
            "pass",
        ):
            register_secret(value)


def register_config_secrets(config: object) -> None:
    """Register every secret a loaded ``Config`` holds: the Kafka SASL password, the MQTT
    password, the API token, the webhook secrets of ``ingest:`` and the credential parts of
    inline notify URLs. Call once after loading the config (and again after a reload)."""
    kafka = getattr(config, "kafka", None)
    if kafka is not None:
        register_secret(getattr(kafka, "sasl_password", None))
    mqtt = getattr(config, "mqtt", None)
    if mqtt is not None:
        register_secret(getattr(mqtt, "password", None))
    api = getattr(config, "api", None)
    if api is not None:
        register_secret(getattr(api, "token", None))
    ingest = getattr(config, "ingest", None)
    if ingest is not None:
        for secret in ingest.webhooks.secrets.values():
            register_secret(secret)
    notify = getattr(config, "notify", None) or {}
    urls = notify.get("urls") or []
    for entry in [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []:
        url = entry.get("url") if isinstance(entry, dict) else entry
        if isinstance(url, str):
            register_url_secrets(url)
    fallback = notify.get("fallback")
    if isinstance(fallback, str) and "://" in fallback:
        register_url_secrets(fallback)
