"""The public Python API is pinned, and the core never imports the server, jobs or CLI layers."""

from __future__ import annotations

import subprocess
import sys

import interp_agent


def test_public_names_are_pinned() -> None:
    assert sorted(interp_agent.__all__) == sorted(
        [
            "EvidenceError", "InputFileError", "InspectionResult", "InterpAgentError", "MissingDependencyError",
            "RankingConfig", "ValidationError", "__version__", "apply_steering", "calibrate", "capabilities",
            "compile_criterion", "convert", "convert_hidden_dump", "diff_models", "explain", "export_steering",
            "feature_effects", "finetune", "import_interp_lab", "inspect", "intervene", "investigate", "load_report",
            "match", "match_activations", "score_prompts", "train_crosscoder", "train_sae", "validate_matches",
        ]
    )
    for name in interp_agent.__all__:
        assert hasattr(interp_agent, name), name


def test_importing_the_core_pulls_in_neither_mcp_nor_torch_nor_the_cli() -> None:
    code = (
        "import sys, interp_agent, interp_agent.core.inspection, interp_agent.core.matching, interp_agent.core.reports;"
        "bad = [m for m in ('mcp', 'torch', 'sentence_transformers', 'interp_agent.cli', 'interp_agent.server',"
        " 'interp_agent.jobs') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_api_inspects_and_matches(tmp_path) -> None:
    a = interp_agent.inspect("toy/model-a", "c", backend="toy", out=tmp_path / "a")
    b = interp_agent.inspect("toy/model-b", "c", backend="toy", out=tmp_path / "b")
    m = interp_agent.match(a, tmp_path / "b" / "report.json", out=tmp_path / "matches.json", use_text=False)
    assert a.paths["html"].is_file() and b.report["synthetic"]
    assert m["summary"]["n_matches"] > 0 and (tmp_path / "matches.md").is_file()


def test_the_model_side_of_the_core_pulls_in_no_server_job_or_cli_layer() -> None:
    code = (
        "import sys, interp_agent.core.live, interp_agent.core.interventions, interp_agent.core.models,"
        " interp_agent.core.criteria, interp_agent.core.scale, interp_agent.core.runs;"
        "bad = [m for m in ('mcp', 'interp_agent.cli', 'interp_agent.server', 'interp_agent.jobs')"
        " if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
