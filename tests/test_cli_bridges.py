"""The command line of the SAE Lens and exporter bridges: inspect --backend saelens, export-records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp_agent.cli import EXIT_BAD_INPUT, main
from interp_agent.core.sae.lens import SaeWeights, save_sae_lens


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_inspect_saelens_backend_with_a_local_folder_ranks_its_latents(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    W = rng.normal(size=(576, 128)) / 24.0
    sae = save_sae_lens(tmp_path / "sae", SaeWeights("blocks.4.hook_resid_post", W, np.zeros(128), W.T.copy(),
                                                     np.zeros(576), None, "standard", None))
    code, out, err = run(capsys, "inspect", "--model", "smollm2-135m", "--backend", "saelens", "--pack",
                         "measurement_unit", "--sae", str(sae), "--top-k", "200", "--bootstrap", "5",
                         "--out", str(tmp_path / "r"), "--json")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["backend"] == "saelens" and report["live"]["hookpoints"] == ["blocks.4.hook_resid_post"]
    assert any(f["feature_id"].startswith("SAE:L4:F") for f in report["features"])
    assert json.loads(out)["backend"] == "saelens"


def test_inspect_saelens_backend_without_an_sae_exits_2_with_the_two_ways(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "inspect", "--model", "smollm2-135m", "--backend", "saelens", "--pack",
                       "measurement_unit", "--out", str(tmp_path / "r"))
    assert code == EXIT_BAD_INPUT
    assert "--sae " in err and "--saelens-release" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_records_via_nnsight_writes_records_jsonl(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "records.jsonl"
    code, stdout, err = run(capsys, "export-records", "--via", "nnsight", "--model", "smollm2-135m", "--pack",
                            "measurement_unit", "--hookpoint", "blocks.5.hook_resid_post", "--pooling", "last",
                            "--max-length", "32", "--out", str(out), "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert json.loads(stdout)["prompts"] == len(rows) > 50
    assert rows[0]["model"] == "smollm2-135m"
    # the process stays usable: import nnsight mounts .save on object, which breaks every anyio
    # TypedAttributeSet defined afterwards, hence import mcp (see exporters.import_nnsight)
    assert "save" not in vars(object)
    from anyio import TypedAttributeSet, typed_attribute

    class Probe(TypedAttributeSet):
        value: int = typed_attribute()

    from interp_agent.server.models import InspectInput

    assert InspectInput.model_fields


def test_export_records_remote_needs_nnsight(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "export-records", "--via", "transformer-lens", "--remote", "--model", "gpt2",
                       "--pack", "measurement_unit", "--hookpoint", "blocks.5.hook_resid_post",
                       "--out", str(tmp_path / "r.jsonl"))
    assert code == EXIT_BAD_INPUT and "--via nnsight" in err
