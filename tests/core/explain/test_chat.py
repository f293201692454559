"""The OpenAI-compatible chat client and judge, against a stand-in server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interp_agent.core.errors import MissingCredentialError, RemoteServiceError, ValidationError
from interp_agent.core.explain.chat import ChatEndpoint, ChatJudge, judge_messages, parse_answers
from interp_agent.core.explain.evidence import EvidenceSet
from interp_agent.core.explain.judges import run_judge
from interp_agent.core.explain.scoring import detection_task, fuzzing_task

KEY = "sk-test-0123456789abcdef"
WEATHER = {"rain", "snow", "storm", "clouds", "wind", "thunder", "sunny", "fog"}


@dataclass
class StandIn:
    """What the stand-in server does next, and what it was sent."""

    mode: str = "good"
    """good, garbage, short, 500, flaky, not_json, no_choices, 401, sleep."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _good_reply(body: dict[str, Any]) -> str:
    """1 for each numbered text holding a weather word (a marked one, when texts are marked)."""
    user = body["messages"][-1]["content"]
    texts = re.findall(r"^\d+\. (.*)$", user, flags=re.MULTILINE)
    answers = []
    for text in texts:
        words = re.findall(r"«(.*?)»", text) or text.split()
        answers.append(int(any(w in WEATHER for w in words)))
    return f"Sure. Item [1] onwards: {json.dumps(answers)}"


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left (the timeout test)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
            mode = state.mode
            if mode == "flaky":
                state.mode = "good"
                mode = "500"
            if mode == "sleep":
                time.sleep(1.0)
                mode = "good"
            auth = self.headers.get("authorization")
            if mode == "500":
                return self._send(500, f"internal error; you sent {auth}", "text/plain")
            if mode == "401":
                return self._send(401, json.dumps({"error": f"bad key {auth}"}))
            if mode == "not_json":
                return self._send(200, f"<html>captive portal for {auth}</html>", "text/html")
            if mode == "no_choices":
                return self._send(200, json.dumps({"error": {"message": f"no model; key {auth}"}}))
            content = {"good": _good_reply(body), "garbage": "They are all about the weather, I think.",
                       "short": "[1, 0]"}[mode]
            return self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}))

    return Handler


@pytest.fixture
def server() -> Iterator[StandIn]:
    state = StandIn()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _endpoint(state: StandIn, **kw: Any) -> ChatEndpoint:
    return ChatEndpoint(state.url, KEY, "stand-in", backoff_s=0.0, **kw)


def test_the_environment_configures_the_endpoint_with_openai_fallbacks() -> None:
    env = {"INTERP_AGENT_CHAT_BASE_URL": "http://h:1/v1/", "INTERP_AGENT_CHAT_API_KEY": KEY,
           "INTERP_AGENT_CHAT_MODEL": "m"}
    ep = ChatEndpoint.from_env(env)
    assert (ep.base_url, ep.api_key, ep.model, ep.url) == ("http://h:1/v1", KEY, "m", "http://h:1/v1/chat/completions")
    fallback = ChatEndpoint.from_env({"OPENAI_BASE_URL": "https://o/v1", "OPENAI_API_KEY": KEY,
                                      "INTERP_AGENT_CHAT_MODEL": "m"})
    assert (fallback.base_url, fallback.api_key) == ("https://o/v1", KEY)
    assert ChatEndpoint.from_env({"OPENAI_BASE_URL": "https://o/v1", "INTERP_AGENT_CHAT_MODEL": "m"}).api_key is None


def test_a_missing_base_url_names_the_variables_and_never_a_value() -> None:
    with pytest.raises(MissingCredentialError, match="INTERP_AGENT_CHAT_BASE_URL.*OPENAI_BASE_URL") as info:
        ChatEndpoint.from_env({"INTERP_AGENT_CHAT_API_KEY": KEY, "INTERP_AGENT_CHAT_MODEL": "m"})
    assert KEY not in str(info.value)
    with pytest.raises(MissingCredentialError, match="INTERP_AGENT_CHAT_MODEL"):
        ChatEndpoint.from_env({"INTERP_AGENT_CHAT_BASE_URL": "http://h/v1", "INTERP_AGENT_CHAT_API_KEY": KEY})
    with pytest.raises(ValidationError, match="http:// or https://"):
        ChatEndpoint("ftp://h", KEY, "m")


def test_the_key_is_not_in_the_repr() -> None:
    ep = ChatEndpoint("http://h/v1", KEY, "m")
    assert KEY not in repr(ep) and KEY not in str(ep) and "api key set" in repr(ep)


def test_complete_posts_the_messages_with_the_bearer_key(server: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages = judge_messages("weather", ["rain today", "a library"], "detection")
    reply = _endpoint(server).complete(messages, max_tokens=50)
    assert parse_answers(reply, 2) == [1.0, 0.0]
    sent = server.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {KEY}"
    assert sent["body"]["model"] == "stand-in" and sent["body"]["messages"] == messages
    assert sent["body"]["max_tokens"] == 50 and sent["body"]["temperature"] == 0.0
    assert KEY not in caplog.text


@pytest.mark.parametrize(("mode", "said"), [("500", "HTTP 500"), ("401", "HTTP 401"), ("not_json", "not JSON"),
                                            ("no_choices", "without choices")])
def test_bad_answers_say_what_came_back_with_the_key_redacted(server: StandIn, mode: str, said: str) -> None:
    server.mode = mode
    with pytest.raises(RemoteServiceError, match=said) as info:
        _endpoint(server, retries=1).complete([{"role": "user", "content": "hi"}])
    text = str(info.value)
    assert KEY not in text and "[REDACTED]" in text and server.url in text
    assert len(server.requests) == (2 if mode == "500" else 1)  # only a 5xx is retried


def test_a_timeout_names_the_url_and_the_limit(server: StandIn) -> None:
    server.mode = "sleep"
    with pytest.raises(RemoteServiceError, match=r"0\.3 s") as info:
        _endpoint(server, timeout_s=0.3, retries=0).complete([{"role": "user", "content": "hi"}])
    assert f"{server.url}/chat/completions" in str(info.value) and "timeout_s" in str(info.value)
    assert KEY not in str(info.value)


def test_a_failed_try_is_retried(server: StandIn) -> None:
    server.mode = "flaky"
    assert _endpoint(server, retries=1).complete(judge_messages("weather", ["rain"], "detection")).endswith("[1]")
    assert len(server.requests) == 2


def test_the_first_json_list_is_parsed_and_garbage_is_refused() -> None:
    assert parse_answers("texts [1-3] scored: [1, 0.25, false] done [0]", 3) == [1.0, 0.25, 0.0]
    for reply, why in [("no list here", "no JSON list"), ("[1, 0]", "2 answers for 3"), ("[1, 2, 0]", "entry 2 "),
                       ('["yes", 1, 0]', "yes")]:
        with pytest.raises(ValueError, match=why):
            parse_answers(reply, 3)


def test_the_chat_judge_scores_a_detection_task_end_to_end(server: StandIn, evidence: EvidenceSet) -> None:
    judge = ChatJudge(_endpoint(server), batch_size=8)
    feature = evidence.feature("toy:weather")
    task, key = detection_task(feature, evidence.contexts, "weather words", seed=0)
    score = run_judge(judge, task, key, null_text="food words", null_feature="toy:food")
    assert score.judge == "chat:stand-in" and score.method == "detection"
    assert score.auroc.value == 1.0 and score.balanced_accuracy.value == 1.0
    assert len(server.requests) == 6  # 20 items in batches of 8, for the task and for its null
    fuzz, fuzz_key = fuzzing_task(feature, evidence.contexts, "weather words", seed=0)
    assert run_judge(judge, fuzz, fuzz_key).auroc.value == 1.0


@pytest.mark.parametrize("mode", ["garbage", "short"])
def test_the_chat_judge_reports_garbage_answers(server: StandIn, evidence: EvidenceSet, mode: str) -> None:
    server.mode = mode
    task, key = detection_task(evidence.feature("toy:weather"), evidence.contexts, "weather words", seed=0)
    with pytest.raises(RemoteServiceError, match="answered garbage") as info:
        run_judge(ChatJudge(_endpoint(server)), task, key)
    assert KEY not in str(info.value)
