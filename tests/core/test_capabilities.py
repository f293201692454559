"""``capabilities``: one fast call, nothing heavy imported, credentials by name only, tables pinned to the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interp_agent.cli import build_parser, main
from interp_agent.core import capabilities as caps_module
from interp_agent.core.capabilities import BACKENDS, MCP_TOOLS, capabilities, render_capabilities

HEAVY = ("torch", "transformers", "sentence_transformers", "sae_lens", "ray", "numpy", "scipy", "mcp")

_FRESH = """
import json, sys
from interp_agent.core.capabilities import capabilities
caps = capabilities()
print(json.dumps({"heavy": [m for m in %r if m in sys.modules],
                  "backends": {b["name"]: b["works"] for b in caps["backends"]}}))
"""


def test_a_fresh_interpreter_answers_importing_nothing_heavy() -> None:
    proc = subprocess.run([sys.executable, "-c", _FRESH % (HEAVY,)], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["heavy"] == []
    assert set(out["backends"]) == set(BACKENDS)


def test_the_backend_table_is_the_inspect_registry_and_works_follows_the_packages() -> None:
    from interp_agent.core.inspect.backends import BACKEND_REGISTRY

    assert set(BACKENDS) == set(BACKEND_REGISTRY)
    caps = capabilities(probe_accelerators=False)
    for row in caps["backends"]:
        needed = [pkg for extra in row["needs_extras"] for pkg in caps_module.CAPABILITY_EXTRAS[extra]]
        assert row["works"] == all(caps["packages"][p] for p in needed), row


def test_a_missing_package_turns_its_backends_off_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = caps_module._version
    monkeypatch.setattr(caps_module, "_version", lambda dist: None if dist in ("sae-lens", "ray") else real(dist))
    caps = capabilities(probe_accelerators=False)
    rows = {b["name"]: b for b in caps["backends"]}
    assert rows["saelens"]["works"] is False and rows["saelens"]["missing_packages"] == ["sae-lens"]
    assert rows["saelens"]["install"] == "pip install 'interp-agent[hf,saelens]'"
    assert rows["records"]["works"] is True and "install" not in rows["records"]
    assert caps["extras"]["saelens"] == {"installed": False, "missing": ["sae-lens"]}
    ray = next(x for x in caps["executors"] if x["name"] == "ray")
    assert ray["works"] is False and ray["install"] == "pip install 'interp-agent[scale]'"
    assert "saelens (pip install 'interp-agent[hf,saelens]')" in render_capabilities(caps)


def test_credentials_are_reported_by_name_and_presence_never_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_value-that-must-not-leak")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-value-not-to-leak")
    monkeypatch.delenv("NEURONPEDIA_API_KEY", raising=False)
    caps = capabilities(probe_accelerators=False)
    creds = caps["credentials"]
    assert creds["HF_TOKEN"]["present"] is True and creds["OPENAI_API_KEY"]["present"] is True
    used_for = caps_module.CREDENTIALS["NEURONPEDIA_API_KEY"]
    assert creds["NEURONPEDIA_API_KEY"] == {"present": False, "used_for": used_for}
    text = json.dumps(caps) + render_capabilities(caps)
    assert "must-not-leak" not in text and "not-to-leak" not in text


def test_gpu_probe_can_be_skipped_and_then_reports_none() -> None:
    gpu = capabilities(probe_accelerators=False)["gpu"]
    assert (gpu["count"], gpu["devices"], gpu["usable"], gpu["probe"]) == (0, [], False, "none")


def test_the_embedded_model_cache_path_is_the_loaders() -> None:
    from interp_agent.core.models.loading import MARKER_FILE, embedded_cache_dir

    models = capabilities(probe_accelerators=False)["models"]
    assert models["embedded_model"]["cache"] == str(embedded_cache_dir())
    assert models["embedded_model"]["cache_built"] == (embedded_cache_dir() / MARKER_FILE).is_file()
    assert models["embedded_model"]["installed"] is True and models["sentence_encoder"]["installed"] is True


def test_the_tool_list_is_the_servers(tmp_path: Path) -> None:
    from interp_agent.server.app import tool_specs
    from interp_agent.server.state import ServerState

    state = ServerState(workspace=tmp_path, read_roots=(), runner=None)  # pyright: ignore[reportArgumentType]
    assert sorted(MCP_TOOLS) == sorted(spec.name for spec in tool_specs(state))


def test_cli_capabilities_json_lists_the_parsers_commands(capsys: pytest.CaptureFixture) -> None:
    assert main(["capabilities", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)
    assert caps["schema_version"] == "interp-agent.capabilities.v1"
    args = build_parser().parse_args(["capabilities"])
    assert caps["cli_commands"] == sorted(args.commands) and "capabilities" in caps["cli_commands"]
    assert caps["mcp_tools"] == sorted(MCP_TOOLS)
