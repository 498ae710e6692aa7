"""Where a teacher config may send an API key, checked when a config is saved and again by the worker before every
client it builds (settings and DNS may have changed since).

* A config names a key (``settings.TEACHER_API_KEYS``), never an environment variable: the operator decides which
  variables are teacher keys, and a key tied to base URLs is sent to those only.
* A base URL must be http(s) and every address its host resolves to must be public, unless the host or address is
  in ``settings.TEACHER_ALLOWED_PRIVATE_HOSTS`` (the host of ``OPENAI_BASE_URL``, set by the operator, always is).
* Errors name the key, never the variable behind it, and say the same whether the key is unknown or its variable
  unset.
"""

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class TeacherConfigError(Exception):
    """The teacher cannot be used as configured (a key the workers lack, a base URL that is refused…)."""


class EndpointRefused(TeacherConfigError):
    """A base URL the teacher may not be sent to; ``field`` is the config field to blame."""

    def __init__(self, message: str, field: str = "base_url"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Endpoint:
    """What a client needs: the key's value and the checked base URL (None: the SDK's default, OpenAI)."""

    api_key: str
    base_url: str | None


def key_names() -> list[str]:
    return sorted(settings.TEACHER_API_KEYS)


def _key(name: str) -> dict:
    try:
        return settings.TEACHER_API_KEYS[name]
    except KeyError:
        raise EndpointRefused(f"API key {name or '(none)'} is not configured on the workers.", "api_key_name") from None


def effective_base_url(base_url: str) -> str:
    """The URL a config's requests go to: its own, else the operator's OPENAI_BASE_URL, else OpenAI."""
    return (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL).rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise EndpointRefused(f"{url} has an invalid port.") from None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(parts.scheme)


def url_matches(url: str, allowed: str) -> bool:
    """``allowed`` is a URL prefix (same scheme, host and port; the path starts with its path, segment by segment)
    or a bare host name or address (any scheme and port)."""
    if "://" not in allowed:
        return _origin(url)[1] == allowed.strip("[]").lower()
    if _origin(url) != _origin(allowed):
        return False
    path, prefix = urlsplit(url).path.rstrip("/"), urlsplit(allowed).path.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def check_key_for_url(name: str, url: str) -> None:
    """Refuse a key that is unknown, or tied to base URLs other than ``url``."""
    allowed = _key(name)["base_urls"]
    if allowed and not any(url_matches(url, entry) for entry in allowed):
        raise EndpointRefused(f"API key {name} may not be sent to {url}: it is tied to {', '.join(allowed)}.")


def _allowed_private() -> list[str]:
    entries = list(settings.TEACHER_ALLOWED_PRIVATE_HOSTS)
    if operator_url := os.environ.get("OPENAI_BASE_URL"):
        entries.append(_origin(operator_url)[1])
    return [entry.strip("[]").lower() for entry in entries]


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str, allowed: list[str]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_global and not address.is_multicast:
        return True
    if host in allowed:
        return True
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name, compared above
    return False


def resolve(host: str, port: int | None) -> list[str]:
    """Every address ``host`` resolves to (an address resolves to itself); none when it does not resolve (then
    nothing can be sent there either, and the worker resolves it again before it sends anything)."""
    try:
        return [ipaddress.ip_address(host.strip("[]")).compressed]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def check_addresses(host: str, addresses: list[str]) -> None:
    """Refuse when any address is private, loopback, link-local or otherwise not public, unless allowed."""
    allowed = _allowed_private()
    for text in addresses:
        if not _address_allowed(ipaddress.ip_address(text.split("%", 1)[0]), host.lower(), allowed):
            shown = host if host == text else f"{host} ({text})"
            raise EndpointRefused(
                f"The base URL's host {shown} is a private, loopback or link-local address; "
                "the workers may reach it only when TEACHER_ALLOWED_PRIVATE_HOSTS allows it."
            )


def check_url(url: str) -> None:
    scheme, host, port = _origin(url)
    if scheme not in {"http", "https"} or not host:
        raise EndpointRefused(f"{url} is not an http(s) URL.")
    if urlsplit(url).username or urlsplit(url).password:
        raise EndpointRefused("The base URL may not carry credentials: API keys come from TEACHER_API_KEYS.")
    check_addresses(host, resolve(host, port))


def check_endpoint(*, key_name: str, base_url: str) -> None:
    """Everything but the key's value: the key is configured and may go to the URL, which is public or allowed.
    An empty base URL is the operator's (OPENAI_BASE_URL) or OpenAI's: only the key's ties apply."""
    check_key_for_url(key_name, effective_base_url(base_url))
    if base_url:
        check_url(base_url)


def endpoint(snapshot: dict) -> Endpoint:
    """The worker's check before building a client for a run's config snapshot: the same checks as on save, now,
    with this worker's settings and DNS; then the key's value from this worker's environment."""
    name = snapshot_key_name(snapshot)
    base_url = snapshot.get("base_url") or ""
    check_endpoint(key_name=name, base_url=base_url)
    api_key = os.environ.get(_key(name)["env"])
    if not api_key:
        raise EndpointRefused(f"API key {name} is not configured on the workers.", "api_key_name")
    return Endpoint(api_key=api_key, base_url=effective_base_url(base_url))


def key_name_for_env(variable: str) -> str:
    """The configured key that reads ``variable``, or "" (for configs and run snapshots from before key names)."""
    return next((name for name, key in settings.TEACHER_API_KEYS.items() if key["env"] == variable), "")


def snapshot_key_name(snapshot: dict) -> str:
    if "api_key_name" in snapshot:
        return snapshot["api_key_name"]
    return key_name_for_env(snapshot.get("api_key_env") or "OPENAI_API_KEY")
