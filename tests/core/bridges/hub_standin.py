"""A local stand-in for the Hugging Face Hub API, served on 127.0.0.1, that records every request.

It implements just what ``HfApi.create_repo`` and ``HfApi.create_commit`` call for small
files (huggingface_hub 0.2x-2.x; read from its ``hf_api.py`` and ``_commit_api.py``):

    POST /api/repos/create                          {name, organization, visibility, type} -> {url}
    POST /api/validate-yaml                         {content, repoType} (a commit that adds README.md)
    POST /api/{models|datasets}/{repo}/preupload/{revision}   {files: [{path, sample, size}]}
                                                    -> every file "regular" (inline in the commit)
    POST /api/{models|datasets}/{repo}/commit/{revision}      NDJSON: a header line, then per file one
                                                    {"key": "file", "value": {path, content (base64), encoding}}
    GET  /api/{models|datasets}/{repo}              repo info (create_repo asks it after a 401/403 with exist_ok)

Every request must carry ``Authorization: Bearer <token>``; otherwise the answer is 401,
as the Hub answers a bad token. Anything else is answered 404 and kept in ``unexpected``.
``conftest.py`` beside this file gives the ``hub`` and ``hub_token`` fixtures to the tests here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

_REPO = r"(?P<kind>models|datasets)/(?P<repo>[^/]+/[^/]+)"
_PREUPLOAD = re.compile(rf"^/api/{_REPO}/preupload/(?P<rev>[^/?]+)$")
_COMMIT = re.compile(rf"^/api/{_REPO}/commit/(?P<rev>[^/?]+)$")
_INFO = re.compile(rf"^/api/{_REPO}(/revision/[^/?]+)?$")


@dataclass
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Commit:
    """One commit the stand-in accepted."""

    repo: str
    kind: str
    revision: str
    header: dict[str, Any]
    files: dict[str, bytes]
    content_type: str


@dataclass
class HubStandIn:
    """The stand-in's state: what it was asked, which repos exist, which commits it took."""

    token: str
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> Request:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with hub.lock:
                hub.requests.append(req)
            return req

        def _authorised(self, req: Request) -> bool:
            if req.headers.get("authorization") == f"Bearer {hub.token}":
                return True
            self._answer(
                401, {"error": "Invalid credentials in Authorization header"},
                {"X-Error-Message": "Invalid credentials"}
            )
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            req = self._record()
            if not self._authorised(req):
                return
            m = _INFO.match(req.path.split("?")[0])
            if m and m["repo"] in hub.repos:
                return self._answer(200, {"id": m["repo"], "sha": "0" * 40, "private": hub.repos[m["repo"]]["private"]})
            hub.unexpected.append(f"GET {req.path}")
            self._answer(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

        def do_POST(self) -> None:  # noqa: N802
            req = self._record()
            if not self._authorised(req):
                return
            path = req.path.split("?")[0]
            if path == "/api/repos/create":
                body = json.loads(req.body)
                repo = f"{body['organization']}/{body['name']}"
                prefix = "datasets/" if body.get("type") == "dataset" else ""
                if repo in hub.repos:
                    return self._answer(
                        409, {"error": "You already created this repo", "url": f"{hub.url}/{prefix}{repo}"}
                    )
                hub.repos[repo] = {"type": body.get("type"), "private": body.get("visibility") == "private"}
                return self._answer(200, {"url": f"{hub.url}/{prefix}{repo}"})
            if path == "/api/validate-yaml":
                content = json.loads(req.body)["content"]
                try:
                    meta = yaml.safe_load(content.split("---\n")[1]) if content.startswith("---\n") else {}
                except yaml.YAMLError as exc:
                    return self._answer(400, {"errors": [{"message": str(exc)}]})
                ok = isinstance(meta, dict) and isinstance(meta.get("tags", []), list)
                return self._answer(
                    200 if ok else 400, {"errors": [] if ok else [{"message": "bad metadata"}], "warnings": []}
                )
            m = _PREUPLOAD.match(path)
            if m:
                if m["repo"] not in hub.repos:
                    return self._answer(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                files = json.loads(req.body)["files"]
                return self._answer(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                    for f in files], "commitOid": "0" * 40})
            m = _COMMIT.match(path)
            if m:
                if m["repo"] not in hub.repos:
                    return self._answer(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
                header = next(x["value"] for x in lines if x["key"] == "header")
                files: dict[str, bytes] = {}
                for item in lines:
                    if item["key"] == "file":
                        assert item["value"]["encoding"] == "base64"
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    elif item["key"] != "header":
                        hub.unexpected.append(f"commit entry {item['key']}")
                oid = f"{len(hub.commits) + 1:040x}"
                hub.commits.append(
                    Commit(m["repo"], m["kind"], m["rev"], header, files, req.headers.get("content-type", ""))
                )
                prefix = "datasets/" if m["kind"] == "datasets" else ""
                return self._answer(200, {"success": True, "commitOid": oid,
                                          "commitUrl": f"{hub.url}/{prefix}{m['repo']}/commit/{oid}"})
            hub.unexpected.append(f"POST {req.path}")
            self._answer(404, {"error": f"no route {req.path}"})

    return Handler


@pytest.fixture
def hub_token() -> str:
    """The token the stand-in accepts (shaped like a real one, so redaction and scanning see it)."""
    return "hf_StandInTokenAbcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture
def hub(hub_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    """A running stand-in Hub on 127.0.0.1; HF_ENDPOINT points at it and offline mode is off."""
    state = HubStandIn(token=hub_token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", state.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_OFFLINE once, at import; another test may have imported it with the flag set
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
