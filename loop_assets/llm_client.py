"""A small client for any OpenAI-compatible chat-completions endpoint, on httpx.

Used by the LLM judge and by the model endpoint (difficulty, eval runs). Pure: no Dagster.

- `complete(messages, **params)` sends `POST {base_url}/chat/completions` with `{"model", "messages",
  **params}` and never raises for anything the network or the server does: the outcome is a
  `ChatResult` whose `error` says why it failed after the retries.
- Retries, with exponential backoff and jitter (tenacity): HTTP 429 (a `Retry-After` of at most
  `MAX_RETRY_AFTER_S` seconds is honoured; a longer one gives up at once rather than stall a run),
  HTTP 5xx, timeouts and connection errors. Any other 4xx and a malformed body (not JSON, no
  `choices`, no message) fail at once: asking again would get the same answer.
- `timeout_s` bounds each phase of one attempt (connect, write, each read). `max_retries` counts the
  retries after the first attempt, so at most `max_retries + 1` requests are sent per call.
- At most `concurrency` requests are in flight per client, however many threads call it;
  `complete_many` runs conversations on a thread pool of that size and returns results in input order.
- The API key goes only into the `Authorization` header. It is never logged, never part of `repr`,
  and scrubbed from every error message (a server may echo it back).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import tenacity

if TYPE_CHECKING:
    from loop_assets.config import EndpointConfig

log = logging.getLogger(__name__)

MAX_ERROR_BODY_CHARS = 300
REDACTED = "[redacted]"


@dataclass(frozen=True)
class ChatResult:
    text: str | None  # assistant content ('' when empty); None when the call failed
    finish_reason: str | None
    latency_ms: float  # duration of the last attempt (the one whose outcome this is)
    error: str | None  # why it failed after retries (None on success)
    attempts: int  # HTTP requests sent for this call (1 + retries)

    @property
    def ok(self) -> bool:
        return self.error is None


class _Transient(Exception):
    """A failure worth another attempt (429, 5xx, timeout, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure another attempt would repeat (4xx, malformed body)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_detail(response: httpx.Response) -> str:
    """The server's error message (OpenAI shape `{"error": {"message": ...}}`), else the body's start."""
    text = response.text
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(error, str):
            text = error
    text = " ".join(text.split())
    return text[:MAX_ERROR_BODY_CHARS] + ("..." if len(text) > MAX_ERROR_BODY_CHARS else "")


def _content_text(content: Any) -> str | None:
    """Assistant content as text: a string, null ('') or a list of text parts; None if it is none of these."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
            else:
                return None
        return "".join(parts)
    return None


def parse_completion(body: str) -> tuple[str, str | None]:
    """(content, finish_reason) of a chat-completions response body; _Fatal naming what is wrong."""
    snippet = " ".join(body[:120].split())
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise _Fatal(f"malformed response: body is not JSON ({exc.msg} at char {exc.pos}): {snippet!r}") from None
    if not isinstance(payload, dict):
        raise _Fatal(f"malformed response: body is a JSON {type(payload).__name__}, not an object: {snippet!r}")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Fatal(f"malformed response: no choices in body: {snippet!r}")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _Fatal(f"malformed response: choices[0] has no message object: {snippet!r}")
    text = _content_text(message.get("content"))
    if text is None:
        raise _Fatal(f"malformed response: choices[0].message.content is not text: {snippet!r}")
    finish_reason = choice.get("finish_reason")
    return text, finish_reason if isinstance(finish_reason, str) else None


class ChatClient:
    """OpenAI-compatible chat client with bounded concurrency, timeouts and retries (see the module doc)."""

    MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After gives up instead of waiting
    MAX_BACKOFF_S = 30.0  # cap of one exponential backoff wait

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        concurrency: int = 4,
        backoff_s: float = 0.5,
    ):
        if not base_url:
            raise ValueError("base_url is required")
        if not model:
            raise ValueError("model is required")
        if timeout_s <= 0 or max_retries < 0 or concurrency < 1 or backoff_s < 0:
            raise ValueError("timeout_s > 0, max_retries >= 0, concurrency >= 1 and backoff_s >= 0 are required")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url if self.base_url.endswith("/chat/completions") else f"{self.base_url}/chat/completions"
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.concurrency = int(concurrency)
        self.backoff_s = float(backoff_s)
        self.__key = api_key or None
        self._slots = threading.BoundedSemaphore(self.concurrency)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.__key:
            headers["Authorization"] = f"Bearer {self.__key}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def from_config(cls, endpoint: EndpointConfig | None) -> ChatClient | None:
        """A client for a configured endpoint; None when it is not configured.

        The key is read from the environment variable `endpoint.api_key_env`; a named variable that is
        unset raises `config.ConfigError` naming it.
        """
        if endpoint is None or not endpoint.base_url:
            return None
        return cls(
            base_url=endpoint.base_url,
            model=endpoint.model,
            api_key=endpoint.api_key(),
            timeout_s=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
            concurrency=endpoint.concurrency,
            backoff_s=endpoint.backoff_s,
        )

    def __repr__(self) -> str:
        key = "set" if self.__key else "none"
        return f"ChatClient(url={self.url!r}, model={self.model!r}, api_key={key}, concurrency={self.concurrency})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def complete(self, messages: list[dict], **params: Any) -> ChatResult:
        """One chat completion, retried as the module doc says; never raises for network or server trouble."""
        attempts = 0
        latency_ms = 0.0
        payload = {**params, "model": self.model, "messages": messages}
        try:
            content = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return ChatResult(None, None, 0.0, self._scrub(f"request is not JSON-serialisable: {exc}"), 0)

        def attempt() -> tuple[str, str | None]:
            nonlocal attempts, latency_ms
            attempts += 1
            started = time.perf_counter()
            try:
                with self._slots:
                    return self._send(content)
            finally:
                latency_ms = (time.perf_counter() - started) * 1000.0

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            text, finish_reason = retrying(attempt)
        except _Transient as exc:
            tried = f"{attempts} attempt" + ("s" if attempts != 1 else "")
            return ChatResult(None, None, latency_ms, self._scrub(f"{exc.message} (gave up after {tried})"), attempts)
        except _Fatal as exc:
            return ChatResult(None, None, latency_ms, self._scrub(exc.message), attempts)
        except Exception as exc:  # a bug in a layer below must not take a whole run down
            message = f"unexpected client error: {type(exc).__name__}: {exc}"
            return ChatResult(None, None, latency_ms, self._scrub(message), attempts)
        return ChatResult(text, finish_reason, latency_ms, None, attempts)

    def complete_many(self, conversations: list[list[dict]], **params: Any) -> list[ChatResult]:
        """`complete` for each conversation, `concurrency` at a time; results in input order."""
        if not conversations:
            return []
        workers = min(self.concurrency, len(conversations))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chat") as pool:
            return list(pool.map(lambda messages: self.complete(messages, **params), conversations))

    # ------------------------------------------------------------------ internals

    def _send(self, content: bytes) -> tuple[str, str | None]:
        try:
            response = self._http.post(self.url, content=content)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.timeout_s:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection error ({type(exc).__name__}): {exc}") from None
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            detail = _error_detail(response)
            if retry_after is not None and retry_after > self.MAX_RETRY_AFTER_S:
                raise _Fatal(
                    f"HTTP 429 rate limited, Retry-After {retry_after:g}s is longer than the "
                    f"{self.MAX_RETRY_AFTER_S:g}s the client waits: {detail}"
                )
            raise _Transient(f"HTTP 429 rate limited: {detail}", retry_after=retry_after)
        if status >= 500:
            raise _Transient(f"HTTP {status} server error: {_error_detail(response)}")
        if status >= 400:
            raise _Fatal(f"HTTP {status} from {self.url}: {_error_detail(response)}")
        if status != 200:
            raise _Fatal(f"HTTP {status} from {self.url}: expected 200 with a chat completion")
        return parse_completion(response.text)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with jitter (half fixed, half random), at least the server's Retry-After."""
        backoff = min(self.MAX_BACKOFF_S, self.backoff_s * 2 ** (state.attempt_number - 1))
        delay = backoff / 2 + random.uniform(0, backoff / 2)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        reason = exc.message if isinstance(exc, _Transient) else repr(exc)
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.debug("chat %s: attempt %d failed (%s), retrying in %.2fs", self.model, state.attempt_number,
                  self._scrub(reason), wait)  # fmt: skip

    def _scrub(self, text: str) -> str:
        if self.__key:
            text = text.replace(self.__key, REDACTED)
        return text
