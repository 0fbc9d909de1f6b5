"""The OpenAI-compatible chat client against a real HTTP server on 127.0.0.1 (chat_server.py)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from loop_assets.config import ConfigError, EndpointConfig
from loop_assets.llm_client import REDACTED, ChatClient, ChatResult, parse_retry_after
from loop_assets_tests.chat_server import ChatServer, Reply

KEY = "sk-test-Zq81VxK0secretvalue"
HELLO = [{"role": "user", "content": "Hello?"}]


def client_for(server: ChatServer, **overrides) -> ChatClient:
    options = {"api_key": KEY, "timeout_s": 2.0, "max_retries": 3, "concurrency": 4, "backoff_s": 0.01}
    options.update(overrides)
    return ChatClient(server.base_url, "test-model", **options)


def test_success_sends_model_messages_params_and_bearer_key(chat_server: ChatServer) -> None:
    chat_server.default_text = "Hi there"
    with client_for(chat_server) as client:
        result = client.complete(HELLO, temperature=0, max_tokens=50)
    assert result == ChatResult(
        text="Hi there", finish_reason="stop", latency_ms=result.latency_ms, error=None, attempts=1
    )
    assert result.ok and result.latency_ms > 0
    (request,) = chat_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json == {"model": "test-model", "messages": HELLO, "temperature": 0, "max_tokens": 50}


def test_no_key_sends_no_authorization_header(chat_server: ChatServer) -> None:
    with client_for(chat_server, api_key=None) as client:
        assert client.complete(HELLO).ok
    assert "authorization" not in chat_server.requests[0].headers


def test_retries_429_and_5xx_then_succeeds(chat_server: ChatServer) -> None:
    chat_server.script(
        Reply.rate_limited(retry_after=0), Reply.server_error(500), Reply.server_error(503), Reply.chat("finally")
    )
    with client_for(chat_server, max_retries=3) as client:
        result = client.complete(HELLO)
    assert result.text == "finally"
    assert result.error is None
    assert result.attempts == 4
    assert chat_server.request_count == 4


def test_gives_up_after_max_retries_with_the_reason(chat_server: ChatServer) -> None:
    chat_server.script(*[Reply.server_error(503, "overloaded")] * 10)
    with client_for(chat_server, max_retries=2) as client:
        result = client.complete(HELLO)
    assert result.text is None
    assert result.attempts == 3
    assert chat_server.request_count == 3
    assert result.error is not None
    assert "HTTP 503" in result.error and "overloaded" in result.error and "gave up after 3 attempts" in result.error


def test_zero_retries_means_one_attempt(chat_server: ChatServer) -> None:
    chat_server.script(Reply.rate_limited(retry_after=0))
    with client_for(chat_server, max_retries=0) as client:
        result = client.complete(HELLO)
    assert result.attempts == 1 and "HTTP 429" in (result.error or "")
    assert chat_server.request_count == 1


def test_retry_after_is_honoured(chat_server: ChatServer) -> None:
    chat_server.script(Reply.rate_limited(retry_after=0.4))
    with client_for(chat_server, backoff_s=0.001) as client:
        result = client.complete(HELLO)
    assert result.ok and result.attempts == 2
    first, second = chat_server.requests
    assert second.received_at - first.received_at >= 0.38


def test_a_long_retry_after_gives_up_at_once(chat_server: ChatServer) -> None:
    chat_server.script(Reply.rate_limited(retry_after=3600))
    with client_for(chat_server) as client:
        started = time.monotonic()
        result = client.complete(HELLO)
    assert time.monotonic() - started < 2
    assert result.attempts == 1
    assert "Retry-After 3600s" in (result.error or "")


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_is_not_retried(chat_server: ChatServer, status: int) -> None:
    chat_server.script(Reply.client_error(status, "nope"))
    with client_for(chat_server) as client:
        result = client.complete(HELLO)
    assert result.attempts == 1
    assert chat_server.request_count == 1
    assert result.error is not None and f"HTTP {status}" in result.error and "nope" in result.error


def test_timeout_is_retried_then_reported(chat_server: ChatServer) -> None:
    chat_server.script(Reply.slow(3.0), Reply.slow(3.0))
    with client_for(chat_server, timeout_s=0.2, max_retries=1) as client:
        started = time.monotonic()
        result = client.complete(HELLO)
    assert time.monotonic() - started < 2
    assert result.text is None
    assert result.attempts == 2
    assert "timed out after 0.2s" in (result.error or "")


def test_timeout_then_success(chat_server: ChatServer) -> None:
    chat_server.script(Reply.slow(3.0), Reply.chat("second try"))
    with client_for(chat_server, timeout_s=0.2, max_retries=1) as client:
        result = client.complete(HELLO)
    assert result.text == "second try" and result.attempts == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply.malformed(), "malformed response: body is not JSON"),
        (Reply.no_choices(), "malformed response: no choices in body"),
        (Reply(200, {"choices": [{"index": 0}]}), "malformed response: choices[0] has no message object"),
        (Reply(200, {"choices": [{"message": {"content": 42}}]}), "choices[0].message.content is not text"),
        (Reply(200, "[1, 2]"), "body is a JSON list, not an object"),
    ],
)
def test_malformed_body_is_an_error_with_a_clear_message(chat_server: ChatServer, reply: Reply, message: str) -> None:
    chat_server.script(reply)
    with client_for(chat_server) as client:
        result = client.complete(HELLO)
    assert result.text is None
    assert result.attempts == 1  # asking again would get the same
    assert message in (result.error or "")


def test_null_content_is_empty_text(chat_server: ChatServer) -> None:
    chat_server.script(Reply.chat(None, finish_reason="tool_calls"), Reply.chat("", finish_reason="length"))
    with client_for(chat_server) as client:
        first, second = client.complete(HELLO), client.complete(HELLO)
    assert (first.text, first.finish_reason, first.error) == ("", "tool_calls", None)
    assert (second.text, second.finish_reason, second.error) == ("", "length", None)


def test_connection_refused_is_retried_and_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ChatClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.01, timeout_s=1) as client:
        result = client.complete(HELLO)
    assert result.attempts == 3
    assert "connection error" in (result.error or "")


def test_concurrency_is_bounded_and_results_keep_input_order(chat_server: ChatServer) -> None:
    chat_server.responder = lambda body: Reply.chat(f"echo {body['messages'][-1]['content']}", delay_s=0.1)
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    with client_for(chat_server, concurrency=3) as client:
        results = client.complete_many(conversations)
    assert [r.text for r in results] == [f"echo q{i}" for i in range(12)]
    assert chat_server.request_count == 12
    assert chat_server.max_in_flight <= 3
    assert chat_server.max_in_flight >= 2  # it did run concurrently


def test_concurrency_bound_holds_across_calling_threads(chat_server: ChatServer) -> None:
    chat_server.responder = lambda body: Reply.chat("x", delay_s=0.05)
    conversations = [HELLO] * 6
    with client_for(chat_server, concurrency=2) as client:
        threads = [threading.Thread(target=client.complete_many, args=(conversations,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert chat_server.request_count == 18
    assert chat_server.max_in_flight <= 2


def test_complete_many_of_nothing_sends_nothing(chat_server: ChatServer) -> None:
    with client_for(chat_server) as client:
        assert client.complete_many([]) == []
    assert chat_server.request_count == 0


def test_the_key_never_appears_in_errors_results_or_repr(chat_server: ChatServer) -> None:
    chat_server.script(
        Reply.client_error(401, f"Incorrect API key provided: {KEY}"),
        *[Reply.server_error(500, f"upstream rejected Bearer {KEY}")] * 2,
        Reply(200, f'{{"choices": [ {KEY}'),
    )
    with client_for(chat_server, max_retries=1) as client:
        results = [client.complete(HELLO) for _ in range(3)]
        assert KEY not in repr(client) and "api_key=set" in repr(client)
    for result in results:
        assert result.error is not None
        assert KEY not in repr(result)
        assert REDACTED in result.error
    assert "HTTP 401" in results[0].error and "HTTP 500" in results[1].error and "malformed" in results[2].error


def test_from_config_reads_the_key_from_the_named_environment_variable(chat_server: ChatServer, monkeypatch) -> None:
    assert ChatClient.from_config(None) is None
    endpoint = EndpointConfig(base_url=chat_server.base_url, model="judge-m", api_key_env="EVAL_LOOP_TEST_KEY")
    monkeypatch.delenv("EVAL_LOOP_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="EVAL_LOOP_TEST_KEY"):
        ChatClient.from_config(endpoint)
    monkeypatch.setenv("EVAL_LOOP_TEST_KEY", KEY)
    client = ChatClient.from_config(endpoint)
    assert client is not None
    with client:
        assert client.complete(HELLO).ok
    assert chat_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert chat_server.requests[0].json["model"] == "judge-m"


def test_parse_retry_after() -> None:
    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    http_date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(http_date, now=now) == pytest.approx(7.0)
