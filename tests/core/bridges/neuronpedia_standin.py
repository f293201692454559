"""A local stand-in for Neuronpedia's feature API on 127.0.0.1, and a fast sentence encoder.

The stand-in is a ``ThreadingHTTPServer`` that answers each path with a scripted sequence
of replies (status, headers, body, delay) and records every request with its headers, so
tests can check retries, timeouts, the key header and the cache without the network. The
live answers are built from the SAEDashboard batch fixture by :func:`live_payload`.
``conftest.py`` beside this file gives the ``np_hub``, ``batch`` and ``word_encoder`` fixtures to the tests here.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "neuronpedia"
BATCH = FIXTURES / "saedashboard_batch-1_gpt2-small_0-res-jb.json"
SINGLE = FIXTURES / "saedashboard_feature_gpt2-small_res-jb_f15.json"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeNeuronpedia:
    """Routes of scripted replies; a route's last reply repeats once the others are used."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.url = ""

    def serve(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` with ``replies`` in order."""
        self.routes[path] = list(replies)

    def hits(self, path: str) -> int:
        """Requests seen for ``path``."""
        return sum(1 for p, _ in self.requests if p == path)

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            replies = self.routes.get(path)
            if not replies:
                return Reply(404, {"message": "not found"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


@pytest.fixture
def np_hub(monkeypatch) -> Iterator[FakeNeuronpedia]:
    """A running fake Neuronpedia; proxies are switched off so 127.0.0.1 is reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeNeuronpedia()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with fake.lock:
                fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            reply = fake.next_reply(self.path)
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                for k, v in ({"Content-Type": "application/json"} | reply.headers).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def batch() -> dict[str, Any]:
    """The SAEDashboard batch fixture (gpt2-small, layer 0, res-jb; features 2 and 3)."""
    return json.loads(BATCH.read_text())


def live_payload(feature: dict[str, Any], model_id: str, sae_id: str, explanation: str | None) -> dict[str, Any]:
    """A SAEDashboard feature in the shape of Neuronpedia's live ``/api/feature`` answer (camelCase)."""
    acts = []
    for a in feature["activations"]:
        values = a["values"]
        peak = max(range(len(values)), key=values.__getitem__)
        acts.append({"tokens": a["tokens"], "values": values, "maxValue": values[peak], "maxValueTokenIndex": peak,
                     "binMin": a["bin_min"], "binMax": a["bin_max"], "binContains": a["bin_contains"]})
    layer = int(sae_id.split("-")[0])
    return {
        "modelId": model_id, "layer": sae_id, "index": str(feature["feature_index"]),
        "hookName": f"blocks.{layer}.hook_resid_pre",
        "maxActApprox": max(a["maxValue"] for a in acts),
        "frac_nonzero": feature["frac_nonzero"],
        "pos_str": feature["pos_str"], "pos_values": feature["pos_values"],
        "neg_str": feature["neg_str"], "neg_values": feature["neg_values"],
        "freq_hist_data_bar_heights": feature["freq_hist_data_bar_heights"],
        "freq_hist_data_bar_values": feature["freq_hist_data_bar_values"],
        "explanations": [] if explanation is None else [
            {"description": explanation, "explanationModelName": "written-for-tests", "typeName": "manual"}],
        "activations": acts,
    }


class WordEncoder:
    """Bag-of-words embeddings: texts sharing words are close. Stands in for all-MiniLM-L6-v2."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def word_encoder(monkeypatch) -> None:
    """Replace the sentence encoder (7 s to load) with bag-of-words; ordering by label is all these tests need."""
    import interp_agent.core.matching.text as text

    monkeypatch.setattr(text, "load_text_encoder", lambda: WordEncoder())
