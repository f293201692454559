"""An OpenAI-compatible chat endpoint, and a judge that scores explanations through it.

:class:`ChatEndpoint` POSTs ``{base_url}/chat/completions`` (OpenAI, vLLM, llama.cpp's server,
Ollama's ``/v1``, …) with httpx: one timeout per request, ``retries`` more tries after a timeout,
a dropped connection, a 429 or a 5xx. It is configured by

- ``INTERP_AGENT_CHAT_BASE_URL`` (else ``OPENAI_BASE_URL``), e.g. ``http://localhost:8000/v1``;
- ``INTERP_AGENT_CHAT_API_KEY`` (else ``OPENAI_API_KEY``), sent as ``Authorization: Bearer``;
  optional, local servers often need none;
- ``INTERP_AGENT_CHAT_MODEL``, the model id.

The key is never logged, never in a repr, and replaced by ``[REDACTED]`` in every error message
(with the values of secret-named environment variables, see ``core/secrets``).

:class:`ChatJudge` answers detection and fuzzing tasks (``core/explain/scoring``) by asking the
endpoint for a JSON list with one 0/1 (or probability) per numbered item.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interp_agent.core.errors import MissingCredentialError, RemoteServiceError, ValidationError, arg
from interp_agent.core.explain.scoring import MARK_CLOSE, MARK_OPEN, JudgeMethod
from interp_agent.core.secrets import REDACTED, redact

log = logging.getLogger(__name__)

BASE_URL_ENV = "INTERP_AGENT_CHAT_BASE_URL"
API_KEY_ENV = "INTERP_AGENT_CHAT_API_KEY"
MODEL_ENV = "INTERP_AGENT_CHAT_MODEL"
FALLBACK_BASE_URL_ENV, FALLBACK_API_KEY_ENV = "OPENAI_BASE_URL", "OPENAI_API_KEY"
MAX_SHOWN_CHARS = 300
"""Longest part of an unusable answer quoted in an error."""


@dataclass(frozen=True, slots=True)
class ChatEndpoint:
    """An OpenAI-compatible ``/chat/completions`` endpoint."""

    base_url: str
    """Root the API paths hang off, e.g. ``https://api.openai.com/v1`` (a trailing slash is dropped)."""
    api_key: str | None = field(repr=False)
    """Sent as a Bearer token; None sends no Authorization header."""
    model: str
    """Model id sent with every request."""
    timeout_s: float = 30.0
    """Seconds allowed per request (connect, read, write each)."""
    retries: int = 1
    """More tries after a timeout, a dropped connection, HTTP 429 or 5xx."""
    backoff_s: float = 0.5
    """Wait before the first retry; doubled after each."""

    def __post_init__(self) -> None:
        base = str(self.base_url).strip().rstrip("/")
        if not base.lower().startswith(("http://", "https://")):
            raise ValidationError(f"the chat base URL {redact(base)!r} must start with http:// or https://",
                                  hint=f"set {BASE_URL_ENV} to e.g. http://localhost:8000/v1")
        object.__setattr__(self, "base_url", base)
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValidationError(f"{arg('model')} must name the endpoint's model", hint=f"set {MODEL_ENV}")
        if not self.timeout_s > 0 or self.retries < 0 or self.backoff_s < 0:
            raise ValidationError(f"timeout_s {self.timeout_s}, retries {self.retries}, backoff_s {self.backoff_s}: "
                                  "timeout_s must be > 0, retries and backoff_s >= 0")

    def __repr__(self) -> str:
        key = "set" if self.api_key else "not set"
        return f"ChatEndpoint(base_url={self.base_url!r}, model={self.model!r}, api key {key})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, timeout_s: float = 30.0,
                 retries: int = 1) -> ChatEndpoint:
        """The endpoint the environment configures (see the module docstring).

        Raises:
            MissingCredentialError: no base URL or no model is set (names the variables, never a value).
        """
        env = os.environ if environ is None else environ
        base = env.get(BASE_URL_ENV) or env.get(FALLBACK_BASE_URL_ENV)
        if not base:
            raise MissingCredentialError(
                f"no chat endpoint is configured: neither {BASE_URL_ENV} nor {FALLBACK_BASE_URL_ENV} is set",
                hint=f"set {BASE_URL_ENV} (e.g. http://localhost:8000/v1), {MODEL_ENV} and, if the server needs "
                     f"one, {API_KEY_ENV}; or judge and explain locally instead")
        model = env.get(MODEL_ENV)
        if not model:
            raise MissingCredentialError(f"{MODEL_ENV} is not set: the chat endpoint needs a model id",
                                         hint=f"set {MODEL_ENV} to a model the endpoint serves")
        key = env.get(API_KEY_ENV) or env.get(FALLBACK_API_KEY_ENV) or None
        return cls(base, key, model, timeout_s=timeout_s, retries=retries)

    @property
    def url(self) -> str:
        """``{base_url}/chat/completions``."""
        return f"{self.base_url}/chat/completions"

    def shown(self, text: str) -> str:
        """``text`` safe to put in a message: the key and any secret redacted, then cut to MAX_SHOWN_CHARS."""
        if self.api_key:
            text = text.replace(self.api_key, REDACTED)
        text = redact(text)
        return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 200, temperature: float = 0.0) -> str:
        """The assistant's reply to ``messages``.

        Raises:
            ValidationError: ``messages`` is not a list of {role, content} strings.
            RemoteServiceError: a timeout, no connection, a refusal, or an answer without
                ``choices[0].message.content`` (the message quotes what came back).
        """
        _check_messages(messages)
        payload = {"model": self.model, "messages": messages, "max_tokens": int(max_tokens),
                   "temperature": float(temperature)}
        resp = self._post(payload)
        return self._content(resp)

    def _post(self, payload: dict[str, Any]) -> Any:
        """The first 200 answer; RemoteServiceError when every try failed or the server refused."""
        import httpx

        headers = {"accept": "application/json", "user-agent": "interp-agent"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        tries = self.retries + 1
        last = "no answer"
        with httpx.Client(timeout=httpx.Timeout(self.timeout_s), headers=headers) as client:
            for attempt in range(tries):
                log.info("chat: POST %s (model %s, try %d of %d)", self.url, self.model, attempt + 1, tries)
                try:
                    resp = client.post(self.url, json=payload)
                except httpx.TimeoutException:
                    last = f"no answer within the {self.timeout_s:g} s timeout"
                except httpx.TransportError as exc:
                    last = f"connection failed ({type(exc).__name__}: {self.shown(str(exc))})"
                else:
                    if resp.status_code == 200:
                        return resp
                    last = f"HTTP {resp.status_code}: {self.shown(resp.text)}"
                    if resp.status_code != 429 and resp.status_code < 500:
                        raise self._refused(resp.status_code, last)
                if attempt + 1 < tries:
                    log.warning("chat: %s from %s; retrying", last.split(":")[0], self.url)
                    time.sleep(self.backoff_s * 2 ** attempt)
        raise RemoteServiceError(
            f"the chat endpoint {self.url} gave no usable answer in {tries} {'try' if tries == 1 else 'tries'}; "
            f"the last: {last}",
            hint=f"check that the server is up and serves {self.model!r}, or raise timeout_s (now "
                 f"{self.timeout_s:g} s) or retries; or judge locally instead")

    def _refused(self, status: int, last: str) -> RemoteServiceError:
        if status in (401, 403):
            hint = f"check {API_KEY_ENV} (or {FALLBACK_API_KEY_ENV}); it was {'sent' if self.api_key else 'not set'}"
        elif status == 404:
            hint = f"check {BASE_URL_ENV} (most servers want it to end in /v1) and {MODEL_ENV}"
        else:
            hint = "check the request limits (max_tokens) and the model id"
        return RemoteServiceError(f"the chat endpoint {self.url} refused the request: {last}", hint=hint)

    def _content(self, resp: Any) -> str:
        try:
            payload = resp.json()
        except (ValueError, UnicodeDecodeError):
            raise RemoteServiceError(
                f"the chat endpoint {self.url} answered HTTP 200 with something that is not JSON: "
                f"{self.shown(resp.text)!r}",
                hint="check the base URL points at an OpenAI-compatible API (usually ending in /v1)") from None
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise RemoteServiceError(
                f"the chat endpoint {self.url} answered JSON without choices[0].message.content: "
                f"{self.shown(json.dumps(payload))}",
                hint="check the base URL points at an OpenAI-compatible /chat/completions API")
        return content


def _check_messages(messages: Any) -> None:
    ok = isinstance(messages, list) and bool(messages) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages)
    if not ok:
        raise ValidationError(f"{arg('messages')} must be a non-empty list of {{'role': str, 'content': str}}")


# --- the judge ------------------------------------------------------------------------------

_ASK: dict[JudgeMethod, str] = {
    "detection": "For each text, answer 1 if the explanation describes it (the feature would fire on it), "
                 "else 0.",
    "fuzzing": f"In each text some tokens are marked {MARK_OPEN}like this{MARK_CLOSE}. For each text, answer 1 if "
               "the marked tokens are what the explanation describes, else 0.",
}


def judge_messages(explanation: str, items: Sequence[str], method: JudgeMethod) -> list[dict[str, str]]:
    """The (system, user) messages :class:`ChatJudge` sends: the explanation and the numbered items."""
    system = ("You check explanations of features of a language model: an explanation says on which text "
              "a feature fires. You answer with a JSON list only.")
    lines = "\n".join(f"{i}. {' '.join(text.split())}" for i, text in enumerate(items, 1))
    user = (f"Explanation: {explanation}\n\nTexts:\n{lines}\n\n{_ASK[method]} Reply with only a JSON list of "
            f"{len(items)} numbers, one per text in order (0 or 1, or a probability between 0 and 1), "
            "e.g. [1, 0, 1].")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_answers(reply: str, n: int) -> list[float]:
    """The first JSON list of ``n`` entries in ``reply`` (else the first JSON list), as numbers in [0, 1].

    Raises:
        ValueError: no JSON list, no list of ``n`` entries, or an entry that is not a number in [0, 1].
    """
    decoder = json.JSONDecoder()
    lists: list[list[Any]] = []
    for match in re.finditer(r"\[", reply):
        try:
            value, _ = decoder.raw_decode(reply, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            lists.append(value)
    if not lists:
        raise ValueError("no JSON list in the reply")
    found = next((v for v in lists if len(v) == n), lists[0])
    if len(found) != n:
        raise ValueError(f"a list of {len(found)} answers for {n} texts")
    out: list[float] = []
    for v in found:
        try:
            x = float(v) if isinstance(v, (bool, int, float, str)) else float("nan")
        except ValueError:
            x = float("nan")
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"the entry {v!r} is not a number in [0, 1]")
        out.append(x)
    return out


class ChatJudge:
    """A chat endpoint as judge: one request per ``batch_size`` items, answered as a JSON list."""

    def __init__(self, endpoint: ChatEndpoint, *, batch_size: int = 20) -> None:
        """Judge through ``endpoint``; ``batch_size`` items per request."""
        if batch_size < 1:
            raise ValidationError(f"{arg('batch_size', batch_size)} must be at least 1")
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.name = f"chat:{endpoint.model}"

    def judge(self, explanation: str, items: Sequence[str], method: JudgeMethod) -> list[float]:
        """One probability per item that it fits ``explanation``.

        Raises:
            RemoteServiceError: the endpoint failed, or "answered garbage" (no usable JSON list).
        """
        out: list[float] = []
        for start in range(0, len(items), self.batch_size):
            chunk = list(items[start:start + self.batch_size])
            reply = self.endpoint.complete(judge_messages(explanation, chunk, method),
                                           max_tokens=16 + 8 * len(chunk), temperature=0.0)
            try:
                out += parse_answers(reply, len(chunk))
            except ValueError as exc:
                raise RemoteServiceError(
                    f"the chat endpoint {self.endpoint.url} ({self.endpoint.model}) answered garbage: {exc}; the "
                    f"reply was {self.endpoint.shown(reply)!r}",
                    hint="use a stronger instruction-following model, or judge the task yourself and grade it") \
                    from None
        return out
