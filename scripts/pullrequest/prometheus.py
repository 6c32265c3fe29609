"""A small client for Prometheus' HTTP query API, as `canary analyze` needs
it: instant queries, TLS verified, a timeout and a few retries, an optional
bearer token that is sent and never shown."""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scripts.core.errors import UsageError
from scripts.pullrequest.canaryconfig import TOKEN_ENV

TIMEOUT = (5, 30)  # connect, read (seconds)


class PrometheusError(Exception):
    """Prometheus unreachable or answering an error: one line, URL redacted."""


def display_url(url: str) -> str:
    """The URL as it may be printed: without credentials, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UsageError(f"--prometheus {display_url(url)}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--prometheus {url!r}: expected an http:// or https:// URL")
    return url


def _session(retries: int) -> requests.Session:
    session = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=0.5,
                  status_forcelist=(429, 502, 503, 504), allowed_methods=("GET",),
                  respect_retry_after_header=True, raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class Sample:
    labels: dict[str, str]
    value: float | None  # None for NaN (no data, e.g. a quantile of nothing)


@dataclass
class Prometheus:
    url: str
    token: str | None = None
    retries: int = 2
    session: requests.Session | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_url(self.url)
        self.session = self.session or _session(self.retries)
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.where = display_url(self.url)

    def _fail(self, reason: str) -> PrometheusError:
        return PrometheusError(f"Prometheus at {self.where}: {reason}")

    def query(self, expression: str, at: float | None = None) -> list[Sample]:
        """An instant query; its vector as samples."""
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        endpoint = self.url.rstrip("/") + "/api/v1/query"
        assert self.session is not None
        try:
            response = self.session.get(endpoint, params=params, timeout=TIMEOUT)
        except requests.exceptions.SSLError:
            raise self._fail("TLS verification failed (set REQUESTS_CA_BUNDLE to trust a private CA)") from None
        except requests.exceptions.Timeout:
            raise self._fail(f"no answer within {TIMEOUT[1]} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise self._fail(f"cannot connect ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise self._fail(f"request failed ({type(exc).__name__})") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.status_code in (401, 403):
            raise self._fail(f"HTTP {response.status_code}: not authorised (is {TOKEN_ENV} set and valid?)")
        if not isinstance(body, dict) or "status" not in body:
            raise self._fail(f"HTTP {response.status_code}: not Prometheus' query API (no JSON status)")
        if body.get("status") != "success":
            raise self._fail(f"HTTP {response.status_code}: {body.get('errorType', 'error')}: "
                             f"{str(body.get('error', ''))[:200]}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise self._fail(f"expected a vector for {expression!r}, got {data.get('resultType')!r}")
        samples = []
        for item in data["result"]:
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                raise self._fail(f"a malformed sample in the answer to {expression!r}") from None
            samples.append(Sample(dict(item.get("metric") or {}), None if math.isnan(value) else value))
        return samples


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "No route to host", "Network is unreachable", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
