"""The MCP Inspector CLI (the TypeScript SDK's client, as in Claude Code and Claude Desktop) against `serve`.

That client checks a result's structuredContent against the tool's outputSchema, so these
tests are what tells us an agent in those hosts sees our ``{code, message, hint}`` on a bad
call instead of a protocol error. Two majors are pinned: 0.x (0.15, the version the bug
was first seen with) and 2.x, whose CLI exits 5 when a tool returns isError.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")

SERVE = [sys.executable, "-m", "interp_agent.cli", "serve"]
VERSIONS = ["0.15.0", "2.12.0"]

# (tool name, arguments, our error code, words the message must contain)
BAD_CALLS = [
    ("plan_scale", {"model_params": "x", "tokens": "1B", "d_model": "8"}, "invalid_argument", ["'x'", "size"]),
    ("plan_scale", {"model_params": "7B", "tokens": "1B", "d_model": "8", "calibration": "no-cal.json"},
     "invalid_argument", ["calibration", "no-cal.json", "does not exist"]),
    ("inspect", {"model": "m", "criterion": "c", "records": "/etc/passwd"}, "path_outside_workspace",
     ["records", "/etc/passwd"]),
    ("inspect", {"model": "m", "criterion": "c", "records": "inputs/activation_records.jsonl", "wait_seconds": "51"},
     "invalid_argument", ["wait_seconds", "50"]),
    ("job_status", {"job_id": "0123456789abcdef"}, "job_not_found", ["0123456789abcdef"]),
    ("inspect", {"model": "m", "criterion": "c"}, "invalid_argument", ["no evidence given"]),
    ("intervene", {"model": "smollm2-135m", "pack": "question", "features": '["contrast@blocks.15"]'},
     "invalid_argument", ["'contrast@blocks.15' is not a feature id", "direction:contrast@blocks.15.hook_resid_post"]),
    ("feature_card", {"run_id": "no-such-run"}, "invalid_argument", ["no-such-run", "report.json"]),
    ("train_sae", {"hookpoint": "blocks.2.hook_resid_post"}, "invalid_argument", ["exactly one source"]),
    ("feature_evidence", {"run_id": "no-such-run"}, "invalid_argument", ["no-such-run", "evidence"]),
    ("score_explanation", {"run_id": "no-such-run", "feature_id": "L3:D1", "explanation": "   "}, "invalid_argument",
     ["explanation", "empty"]),
    ("judge_explanation", {"task_id": "tNOPE", "answers": '{"i1": 1}'}, "invalid_argument", ["tNOPE"]),
    ("explain", {"hookpoint": "blocks.3.hook_resid_post", "scorers": '["detection"]'}, "invalid_argument",
     ["judge"]),
    ("investigate", {"pack": "measurement_unit", "max_forward_passes": "0"}, "invalid_argument", ["budget of zero"]),
    ("investigate", {"model": "smollm2-135m"}, "invalid_argument", ["needs prompts"]),
    ("dossier", {"name": "no-such-dossier"}, "invalid_argument", ["no-such-dossier"]),
    ("plan_evidence", {}, "invalid_argument", ["one of them"]),
    ("inspect", {"model": "toy/m", "criterion": "c", "backend": "toy", "dossier": "../up"}, "invalid_argument",
     ["dossier"]),
    ("match", {"method": "activations", "left_side": '{"hookpoint": "blocks.3.hook_resid_post"}',
               "right_side": '{"hookpoint": "blocks.3.resid"}'}, "invalid_argument", ["right side", "blocks.3.resid"]),
    ("match", {"left_side": '{"hookpoint": "blocks.3.hook_resid_post"}'}, "invalid_argument", ["fingerprint"]),
    ("validate_matches", {"matches": "no-such-run", "pack": "question"}, "invalid_argument", ["no-such-run"]),
    ("diff_models", {"tuned": "finetune:default", "hookpoints": '["blocks.3.hook_resid_post"]',
                     "dataset": "inputs/activation_records.jsonl"}, "invalid_argument", ["needs its criterion"]),
    ("train_crosscoder", {"hookpoints": '["blocks.3.hook_resid_post"]'}, "invalid_argument", ["two or more sources"]),
    ("harvest", {"hookpoint": "blocks.3.hook_resid_post", "pack": "question", "corpus": "builtin"}, "invalid_argument",
     ["exactly one of", "dataset", "corpus"]),
    ("harvest", {"hookpoint": "blocks.3.hook_resid_post", "pack": "question", "workers": "2"}, "invalid_argument",
     ["local engine runs one worker", "workers=2"]),
    ("compile_criterion", {"criterion": "the text is a question", "positives": '["Is it?", "Is it?"]',
                           "negatives": '["It is.", "It was."]'}, "invalid_argument",
     ["exact_duplicates", "class_balance", "pos-1"]),
    ("score_prompts", {"prompts": "inputs/nope.jsonl", "criterion": "c"}, "invalid_argument",
     ["nope.jsonl", "does not exist"]),
    ("export_steering", {"interventions": "inputs/interventions.jsonl", "feature_id": "L3:D1"}, "invalid_argument",
     ["L3:D1", "no (non-control) rows"]),
    ("apply_steering", {"vector": "inputs/features.jsonl", "prompts": '["Hello"]'}, "bad_input_file",
     ["features.jsonl", "safetensors"]),
    ("import_interp_lab", {"path": "inputs/features.jsonl"}, "bad_input_file", ["features.jsonl", "not valid JSON"]),
    ("convert_hidden_dump", {"src": "inputs/activation_records.jsonl"}, "bad_input_file", ["prompt_index"]),
]

# tools whose successful results carry next_actions, job views and cards: each must pass the client's check
# of structuredContent against its outputSchema
GOOD_CALLS = [
    ("profile_env", {}),
    ("inspect", {"model": "toy/m", "criterion": "c", "backend": "toy", "dossier": "toy-study", "wait_seconds": "40"}),
    ("job_list", {}),
    ("list_artifacts", {}),
    ("dossier", {"name": "toy-study"}),
    ("dossier", {}),
    ("plan_evidence", {"dossier": "toy-study"}),
    ("harvest", {"hookpoint": "blocks.3.hook_resid_post", "pack": "question", "shard_size": "64", "max_length": "32",
                 "wait_seconds": "45"}),
    ("capabilities", {}),
    ("compile_criterion", {"criterion": "the text is a question"}),
    ("import_interp_lab", {"path": "inputs/report_records_3_1_0.json"}),
]
INTERP_LAB_REPORT = Path(__file__).resolve().parents[1] / "fixtures" / "interp_lab" / "report_records_3_1_0.json"


def inspector(version: str, workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One Inspector CLI call against a fresh `interp-agent serve` over stdio."""
    cmd = ["npx", "-y", f"@modelcontextprotocol/inspector@{version}", "--cli", *SERVE, "--workspace", str(workspace),
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def call(version: str, workspace: Path, tool: str, arguments: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """tools/call with each argument as the CLI's ``--tool-arg key=value``."""
    args = ["--method", "tools/call", "--tool-name", tool]
    for key, value in arguments.items():
        args += ["--tool-arg", f"{key}={value}"]
    return inspector(version, workspace, *args)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_inspector_lists_tools_and_accepts_a_good_result(workspace: Path, version: str) -> None:
    listed = inspector(version, workspace, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {"inspect", "plan_scale", "job_status"} <= {t["name"] for t in json.loads(listed.stdout)["tools"]}
    called = call(version, workspace, "plan_scale", {"model_params": "7B", "tokens": "100M", "d_model": "4096"})
    assert called.returncode == 0, called.stderr[-2000:]
    result = json.loads(called.stdout)
    assert result.get("isError") in (None, False)
    assert result["structuredContent"]["route"] in {"single_gpu", "multi_gpu", "cluster"}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_inspector_shows_our_code_message_and_hint_for_every_bad_call(workspace: Path, version: str) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda case: call(version, workspace, case[0], case[1]), BAD_CALLS))
    for (tool, _, code, words), proc in zip(BAD_CALLS, runs, strict=True):
        # 2.x exits 5 for an isError result; anything else (a -32602 schema rejection) is the bug
        assert proc.returncode in (0, 5), f"{tool}: {proc.stdout[-1000:]} {proc.stderr[-2000:]}"
        assert "does not match the tool's output schema" not in proc.stdout + proc.stderr
        result = json.loads(proc.stdout)
        assert result["isError"] is True and "structuredContent" not in result
        error = json.loads(result["content"][0]["text"])["error"]
        assert error["code"] == code, (tool, error)
        assert all(word in error["message"] for word in words), (tool, error)
        assert error["hint"], (tool, error)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_inspector_accepts_every_result_shape_with_next_actions(workspace: Path, version: str) -> None:
    shutil.copy(INTERP_LAB_REPORT, workspace / "inputs" / INTERP_LAB_REPORT.name)
    results = {}
    for tool, arguments in GOOD_CALLS:  # in order: the inspect job's run is listed and carded below
        proc = call(version, workspace, tool, arguments)
        assert proc.returncode == 0, f"{tool}: {proc.stdout[-1000:]} {proc.stderr[-2000:]}"
        results[tool] = json.loads(proc.stdout)["structuredContent"]
    assert results["dossier"]["dossiers"][0]["name"] == "toy-study"  # the listing (the last dossier call)
    assert results["plan_evidence"]["missing"]  # a toy report: no live call can raise it, and it says so
    assert results["inspect"]["job"]["state"] == "completed", results["inspect"]["job"]
    harvested = results["harvest"]
    assert harvested["job"]["state"] == "completed", harvested["job"]
    assert harvested["result"]["complete"] and harvested["result"]["records"]
    assert [a["tool"] for a in harvested["next_actions"]][:2] == ["train_sae", "inspect"]
    assert "hf" in {b["name"] for b in results["capabilities"]["backends"]}
    assert results["compile_criterion"]["brief"]["per_class"]["recommended"] > 0
    imported = results["import_interp_lab"]
    assert imported["kind"] == "report" and imported["next_actions"][0]["tool"] == "feature_card"
    run_id = results["inspect"]["job"]["run_id"]
    card = call(version, workspace, "feature_card", {"run_id": run_id})
    assert card.returncode == 0, card.stderr[-2000:]
    content = json.loads(card.stdout)["structuredContent"]
    assert content["synthetic"] is True and content["card"]["feature_id"]
    actions = results["inspect"]["next_actions"] + results["profile_env"]["next_actions"]
    assert actions and all(set(a) == {"tool", "arguments", "why"} for a in actions)


def test_the_inspector_reports_an_unknown_tool_by_name(workspace: Path) -> None:
    proc = call(VERSIONS[0], workspace, "no_such_tool", {})
    error = json.loads(json.loads(proc.stdout)["content"][0]["text"])["error"]
    assert error["code"] == "unknown_tool" and "no_such_tool" in error["message"] and "plan_scale" in error["hint"]


SENTENCES = [
    "The rain fell on the old city all night.", "She paid forty dollars for the blue bicycle.",
    "Our train leaves the station at seven in the morning.", "He planted tomatoes and beans in the garden.",
    "The museum opens a new exhibition about ancient Egypt.", "Please send me the report before Friday.",
    "Cats sleep for most of the day.", "The river froze early this winter.",
    "Water boils at one hundred degrees Celsius.", "They played chess in the park until dark.",
]


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_the_inspector_runs_the_explanation_tools_end_to_end(workspace: Path, version: str) -> None:
    (workspace / "inputs" / "corpus.txt").write_text("\n".join(SENTENCES * 30))
    proc = call(version, workspace, "explain", {"hookpoint": "blocks.3.hook_resid_post", "n_features": "2",
                                               "corpus": "inputs/corpus.txt", "max_contexts": "128",
                                               "context_length": "16", "wait_seconds": "45"})
    assert proc.returncode == 0, f"{proc.stdout[-1000:]} {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout)["structuredContent"]
    assert out["job"]["state"] == "completed", out["job"]
    evidence_call = out["next_actions"][0]
    assert evidence_call["tool"] == "feature_evidence"
    proc = call(version, workspace, "feature_evidence", evidence_call["arguments"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = json.loads(proc.stdout)["structuredContent"]
    score_call = shown["next_actions"][0]
    proc = call(version, workspace, "score_explanation", {**score_call["arguments"],
                                                         "explanation": "words about weather and trains"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored = json.loads(proc.stdout)["structuredContent"]
    assert scored["scores"][0]["method"] == "embedding" and scored["task"]["items"]
    answers = {item["item_id"]: 1 for item in scored["task"]["items"]}
    proc = call(version, workspace, "judge_explanation", {"task_id": scored["task"]["task_id"],
                                                         "answers": json.dumps(answers)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    graded = json.loads(proc.stdout)["structuredContent"]
    assert graded["score"]["method"] == "detection" and graded["score"]["judge"] == "agent"


def test_the_inspector_accepts_a_started_investigation_and_its_cancel(workspace: Path) -> None:
    proc = call(VERSIONS[-1], workspace, "investigate", {"pack": "measurement_unit", "n_explain": "0",
                                                         "dossier": "units", "wait_seconds": "0"})
    assert proc.returncode == 0, f"{proc.stdout[-1000:]} {proc.stderr[-2000:]}"
    started = json.loads(proc.stdout)["structuredContent"]
    assert started["job"]["kind"] == "investigate" and started["result"] is None
    assert [a["tool"] for a in started["next_actions"]] == ["job_status", "job_cancel"]
    cancelled = call(VERSIONS[-1], workspace, "job_cancel", {"job_id": started["job"]["job_id"]})
    assert cancelled.returncode == 0, cancelled.stderr[-2000:]
    assert json.loads(cancelled.stdout)["structuredContent"]["job"]["state"] == "cancelled"
