"""Neuronpedia: import feature cards by ref, URL or SAEDashboard export file.

A feature is named ``{model}@{sae}:{index}`` (``gpt2-small@6-res_scefr-ajt:650``), by its
page URL (``https://www.neuronpedia.org/gpt2-small/6-res_scefr-ajt/650``) or by its API
URL (``…/api/feature/gpt2-small/6-res_scefr-ajt/650``). :class:`NeuronpediaClient` fetches
``GET {base}/api/feature/{model}/{sae}/{index}`` with httpx: a timeout per request, retries
with exponential backoff on 429 and 5xx (``Retry-After`` honoured), an on-disk cache of
well-formed answers only, and the key from ``NEURONPEDIA_API_KEY`` sent as the
``x-api-key`` header and never logged or put in an error.

Answers and SAEDashboard export files become
:class:`~interp_agent.core.bridges.cards.FeatureCard` objects through
:mod:`interp_agent.core.bridges.dashboards`. Nothing in a card measures the criterion:
``inspect --backend neuronpedia`` says so unless activation records are given too.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_json
from interp_agent.core.bridges.cards import FeatureCard, write_cards
from interp_agent.core.bridges.dashboards import (
    PayloadShapeError,
    card_from_feature,
    layer_of_sae,
    now_utc,
    read_export,
)
from interp_agent.core.errors import RemoteServiceError, ValidationError
from interp_agent.core.secrets import redact

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.neuronpedia.org"
BASE_URL_ENV = "NEURONPEDIA_BASE_URL"
API_KEY_ENV = "NEURONPEDIA_API_KEY"
API_KEY_HEADER = "x-api-key"
FEATURES_FILE = "neuronpedia-features.jsonl"
"""Name of the feature JSONL that ``inspect --backend neuronpedia`` writes into its output folder."""

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REF = re.compile(rf"^({_NAME})@({_NAME}):(\d+)$")
_PATH = re.compile(rf"^/(?:api/feature/)?({_NAME})/({_NAME})/(\d+)/?$")


# -- refs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FeatureRef:
    """A Neuronpedia feature: model id, SAE id and latent index."""

    model_id: str
    """Neuronpedia's model id, e.g. ``gpt2-small``."""
    sae_id: str
    """Neuronpedia's SAE id (its URL calls it the layer), e.g. ``6-res_scefr-ajt``."""
    index: int
    """Index of the latent in the SAE."""

    def __str__(self) -> str:
        return f"{self.model_id}@{self.sae_id}:{self.index}"

    @property
    def layer(self) -> int | None:
        """The layer the SAE id starts with (``6-res_scefr-ajt`` -> 6), or None."""
        return layer_of_sae(self.sae_id)


def parse_ref(ref: str) -> FeatureRef:
    """Parse ``model@sae:index``, a neuronpedia.org feature page URL or an ``/api/feature/…`` URL.

    The host of a URL is not used for fetching: the client's base URL is (so a
    self-hosted Neuronpedia works through ``NEURONPEDIA_BASE_URL``).

    Raises:
        ValidationError: ``ref`` is none of these forms.
    """
    text = ref.strip()
    m = _REF.match(text)
    if m is None and text.lower().startswith(("http://", "https://")):
        m = _PATH.match(urllib.parse.urlsplit(text).path)
    if m is None:
        raise ValidationError(
            f"{ref!r} is not a Neuronpedia feature; write model@sae:index (e.g. gpt2-small@6-res_scefr-ajt:650), "
            "a feature URL (https://www.neuronpedia.org/gpt2-small/6-res_scefr-ajt/650) or an API URL "
            "(https://www.neuronpedia.org/api/feature/gpt2-small/6-res_scefr-ajt/650)"
        )
    return FeatureRef(m.group(1), m.group(2), int(m.group(3)))


# -- the client ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fetched:
    """One feature's API answer."""

    payload: dict[str, Any]
    """The JSON answer."""
    url: str
    """The API URL it came from."""
    retrieved_at: str
    """When it was fetched from the service (UTC ISO time; the original time for a cache hit)."""
    from_cache: bool
    """True when it was read from the on-disk cache."""


def default_cache_dir() -> Path:
    """``$INTERP_AGENT_CACHE/neuronpedia``, or ``~/.cache/interp-agent/neuronpedia``."""
    env = os.environ.get("INTERP_AGENT_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "interp-agent") / "neuronpedia"


class NeuronpediaClient:
    """Fetches Neuronpedia features over HTTP with timeouts, retries and an on-disk cache.

    Args:
        base_url: service root; default ``$NEURONPEDIA_BASE_URL`` or https://www.neuronpedia.org.
        api_key: sent as ``x-api-key``; default ``$NEURONPEDIA_API_KEY`` (reads need none).
        timeout: seconds allowed per request (connect, read, write each).
        max_retries: retries after a 429, a 5xx, a timeout or a dropped connection.
        backoff: first wait in seconds; doubled after each retry unless ``Retry-After`` says otherwise.
        max_wait: longest single wait, ``Retry-After`` included.
        cache_dir: folder of cached answers (default :func:`default_cache_dir`); ``False`` turns the cache off.
        sleep: how to wait (tests pass a recorder).
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 15.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        cache_dir: str | Path | bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: Any = None,
    ) -> None:
        if timeout <= 0 or max_retries < 0 or backoff < 0 or max_wait < 0:
            raise ValidationError(
                f"timeout {timeout}, max_retries {max_retries}, backoff {backoff}, max_wait {max_wait}: "
                "timeout must be > 0 and the others >= 0"
            )
        base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if not base.lower().startswith(("http://", "https://")):
            raise ValidationError(f"Neuronpedia base URL {base!r} must start with http:// or https://")
        self.base_url = base
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout, self.max_retries, self.backoff, self.max_wait = timeout, max_retries, backoff, max_wait
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            root = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir).expanduser()
            host = re.sub(r"[^A-Za-z0-9._-]+", "_", urllib.parse.urlsplit(base).netloc)
            self.cache_dir = root / host
        self._sleep = sleep
        self._transport = transport
        self._http: Any = None

    def __repr__(self) -> str:
        key = "set" if self._api_key else "not set"
        return f"NeuronpediaClient(base_url={self.base_url!r}, api key {key}, cache={self.cache_dir})"

    def __enter__(self) -> NeuronpediaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def api_url(self, ref: FeatureRef) -> str:
        """``{base}/api/feature/{model}/{sae}/{index}``."""
        return f"{self.base_url}/api/feature/{ref.model_id}/{ref.sae_id}/{ref.index}"

    def page_url(self, ref: FeatureRef) -> str:
        """The feature's web page, ``{base}/{model}/{sae}/{index}``."""
        return f"{self.base_url}/{ref.model_id}/{ref.sae_id}/{ref.index}"

    def card(self, ref: FeatureRef | str, *, refresh: bool = False) -> FeatureCard:
        """The feature's card, from the cache or the service.

        Raises:
            ValidationError: ``ref`` is not a feature ref.
            RemoteServiceError: the service is unreachable, has no such feature, or answered badly.
        """
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        got = self.fetch(ref, refresh=refresh)
        return self._card(ref, got)

    def _card(self, ref: FeatureRef, got: Fetched) -> FeatureCard:
        source = {"kind": "neuronpedia", "ref": str(ref), "url": self.page_url(ref), "api_url": got.url,
                  "retrieved_at": got.retrieved_at, "from_cache": got.from_cache}
        try:
            return card_from_feature(got.payload, source | {"format": "neuronpedia-api"},
                                     model_id=ref.model_id, sae_id=ref.sae_id)
        except (PayloadShapeError, ValueError) as exc:
            raise RemoteServiceError(
                redact(f"Neuronpedia's answer for {ref} ({got.url}) is not a usable feature: {exc}"),
                hint="check the ref; if the service changed its format, save the feature as JSON and pass the file",
            ) from None

    def fetch(self, ref: FeatureRef, *, refresh: bool = False) -> Fetched:
        """The feature's JSON answer; cached answers are used unless ``refresh``.

        Raises:
            RemoteServiceError: unreachable, 404, refused, not JSON, or no usable answer after every try.
        """
        url = self.api_url(ref)
        if not refresh:
            hit = self._read_cache(ref)
            if hit is not None:
                log.info("neuronpedia: %s from cache", ref)
                return hit
        payload = self._get_json(ref, url)
        got = Fetched(payload=payload, url=url, retrieved_at=now_utc(), from_cache=False)
        self._card(ref, got)  # only well-formed answers reach the cache
        self._write_cache(ref, got)
        return got

    # -- HTTP --
    def _client(self) -> Any:
        if self._http is None:
            import httpx

            headers = {"accept": "application/json", "user-agent": "interp-agent"}
            if self._api_key:
                headers[API_KEY_HEADER] = self._api_key
            self._http = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=headers,
                                      follow_redirects=True, transport=self._transport)
        return self._http

    def _get_json(self, ref: FeatureRef, url: str) -> dict[str, Any]:
        import httpx

        client = self._client()
        tries = self.max_retries + 1
        last = "no answer"
        for attempt in range(tries):
            retry_after: str | None = None
            try:
                log.info("neuronpedia: GET %s (try %d of %d)", url, attempt + 1, tries)
                resp = client.get(url)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
            except httpx.ConnectError as exc:
                raise RemoteServiceError(
                    redact(f"Neuronpedia at {self.base_url} is unreachable ({type(exc).__name__}: {exc}) "
                           f"while fetching {ref}"),
                    hint="check the network (or NEURONPEDIA_BASE_URL), or give a SAEDashboard export file "
                         "(--neuronpedia FILE.json) instead of a ref",
                ) from None
            except httpx.TransportError as exc:  # dropped connection, protocol error: worth another try
                last = f"connection failed ({type(exc).__name__})"
            else:
                status = resp.status_code
                if status == 200:
                    return self._decode(resp, ref, url)
                if status == 404:
                    raise RemoteServiceError(
                        f"Neuronpedia has no feature {ref} ({url} answered HTTP 404)",
                        hint="check the model id, SAE id and index on the feature's neuronpedia.org page",
                    )
                if status in (401, 403):
                    key = f"the {API_KEY_ENV} key was sent" if self._api_key else f"no {API_KEY_ENV} was set"
                    raise RemoteServiceError(
                        f"Neuronpedia refused {url} (HTTP {status}); {key}",
                        hint=f"set a valid {API_KEY_ENV}, or give a SAEDashboard export file instead",
                    )
                if status != 429 and status < 500:
                    raise RemoteServiceError(f"Neuronpedia answered HTTP {status} to {url} for {ref}",
                                             hint="check the ref")
                last = f"HTTP {status}"
                retry_after = resp.headers.get("retry-after")
            if attempt + 1 < tries:
                wait = self._wait(attempt, retry_after)
                log.warning("neuronpedia: %s for %s; retrying in %.2f s (%d of %d retries)", last, url, wait,
                            attempt + 1, self.max_retries)
                self._sleep(wait)
        raise RemoteServiceError(
            f"Neuronpedia gave no usable answer for {ref} from {url} in {tries} tries; the last was {last}",
            hint="try again later (raise max_retries or timeout), or give a SAEDashboard export file instead",
        )

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next try: ``Retry-After`` (seconds or HTTP date) when given, else exponential."""
        wait = self.backoff * (2 ** attempt)
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                when = email.utils.parsedate_to_datetime(retry_after) if retry_after.strip() else None
                if when is not None:
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=_dt.timezone.utc)
                    wait = (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        return min(max(wait, 0.0), self.max_wait)

    def _decode(self, resp: Any, ref: FeatureRef, url: str) -> dict[str, Any]:
        try:
            payload = resp.json()
        except (ValueError, UnicodeDecodeError):
            start = resp.text[:60]
            raise RemoteServiceError(
                redact(f"Neuronpedia's answer from {url} for {ref} was not JSON "
                       f"(HTTP {resp.status_code}, content-type {resp.headers.get('content-type')!r}, "
                       f"starts {start!r})"),
                hint="the service may be down or behind a captive portal; try again later or give a "
                     "SAEDashboard export file instead",
            ) from None
        if not isinstance(payload, dict):
            raise RemoteServiceError(
                f"Neuronpedia's answer from {url} for {ref} is JSON {type(payload).__name__}, not a feature object",
                hint="check the ref; a missing feature can come back as null",
            )
        return payload

    # -- cache --
    def _cache_path(self, ref: FeatureRef) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / ref.model_id / ref.sae_id / f"{ref.index}.json"

    def _read_cache(self, ref: FeatureRef) -> Fetched | None:
        path = self._cache_path(ref)
        if path is None or not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return Fetched(payload=doc["payload"], url=doc["url"], retrieved_at=doc["retrieved_at"], from_cache=True)
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("neuronpedia: ignoring unreadable cache file %s", path)
            return None

    def _write_cache(self, ref: FeatureRef, got: Fetched) -> None:
        path = self._cache_path(ref)
        if path is None:
            return
        try:
            write_json(path, {"schema_version": "interp-agent.neuronpedia_cache.v1", "ref": str(ref), "url": got.url,
                              "retrieved_at": got.retrieved_at, "payload": got.payload})
        except OSError as exc:  # a read-only cache must not fail the import
            log.warning("neuronpedia: could not cache %s in %s (%s)", ref, path, exc)


# -- many sources -------------------------------------------------------------------------------
def load_cards(items: Sequence[str | Path], *, client: NeuronpediaClient | None = None) -> list[FeatureCard]:
    """Cards for refs, URLs and export files, in the order given; the same feature twice is kept once.

    A value that names an existing file is read as an export; anything else must be a ref
    or URL, fetched with ``client`` (a default client when None, made only if needed).

    Raises:
        ValidationError: nothing given, a value that is neither a file nor a ref, or two
            different features that would share one feature id.
        InputFileError: a bad export file.
        RemoteServiceError: a fetch failed.
    """
    if not items:
        raise ValidationError("no Neuronpedia features given; pass refs (gpt2-small@6-res_scefr-ajt:650), URLs "
                              "or SAEDashboard export files")
    own = client is None
    cards: dict[str, FeatureCard] = {}
    try:
        for item in items:
            text = str(item)
            is_url = text.lower().startswith(("http://", "https://"))
            if isinstance(item, Path) or (not is_url and Path(text).expanduser().is_file()):
                got = read_export(Path(text).expanduser())
            else:
                ref = parse_ref(text)
                if client is None:
                    client = NeuronpediaClient()
                got = [client.card(ref)]
            for card in got:
                known = cards.get(card.feature_id)
                if known is not None and (known.model, known.sae_id, known.index) != (
                    card.model, card.sae_id, card.index
                ):
                    raise ValidationError(
                        f"two features map to {card.feature_id}: {known.model}@{known.sae_id}:{known.index} and "
                        f"{card.model}@{card.sae_id}:{card.index}; inspect one SAE per layer at a time"
                    )
                cards.setdefault(card.feature_id, card)
    finally:
        if own and client is not None:
            client.close()
    return list(cards.values())


def cards_for_inspection(
    items: Sequence[str | Path], out: str | Path, *, model: str, client: NeuronpediaClient | None = None
) -> tuple[Path, list[FeatureCard], list[str]]:
    """Load the cards and write them as feature JSONL into ``out`` for ``inspect``.

    Returns:
        The written file (``out/neuronpedia-features.jsonl``), the cards, and warnings
        (e.g. cards of another model than ``model``).
    """
    cards = load_cards(items, client=client)
    path = write_cards(Path(out) / FEATURES_FILE, cards)
    others = sorted({c.model for c in cards if c.model and c.model != model})
    warnings = [f"the Neuronpedia cards belong to model(s) {others}, not {model!r}"] if others else []
    return path, cards, warnings


NO_MEASUREMENT_WARNING = (
    "NO CRITERION MEASUREMENT: the neuronpedia backend imports feature cards (labels, top examples, logit "
    "effects, density) and measures nothing about the criterion; features are ordered only by how close their "
    "label is to the criterion (semantic, all-MiniLM-L6-v2) and by any intervention evidence. Add --records "
    "(activation records with these feature ids) for a measured association"
)
MEASURED_NOTE = (
    "the association comes from the activation records; the Neuronpedia cards add imported labels, top "
    "examples, logit effects and density"
)
METHOD_TEXT = (
    "feature cards imported from Neuronpedia (live API or a SAEDashboard export): label = the first explanation, "
    "top examples = its top activations with per-token values, logit effects = pos_str/neg_str, density = "
    "frac_nonzero; all imported as the source states them, none re-measured here. {measured}"
)


def method_text(measured: bool) -> str:
    """The report's ``method.neuronpedia`` text."""
    return METHOD_TEXT.format(measured=(
        "The criterion association was measured on the given activation records." if measured else
        "No criterion association was measured: no activation records were given."))
