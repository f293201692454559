"""The explain workflow end to end on a tiny saved model (synthetic activations) and a random SAE folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.explain.evidence import read_evidence
from interp_agent.core.explain.explanations import iter_explanations
from interp_agent.core.workflows.explain import ExplainRequest, check_request, run_explain

WORDS = "rain snow storm bread cheese soup river music seven forty train garden".split()
"""The corpus words of ``write_explain_inputs`` (tests/conftest.py)."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, write_explain_inputs):
    return write_explain_inputs(tmp_path_factory.mktemp("explain"))


def _request(root: Path, out: str, **kw) -> ExplainRequest:
    return ExplainRequest(out=str(root / out), model=str(root / "model"), sae=str(root / "sae"),
                          corpus=str(root / "corpus.txt"), max_contexts=400, context_length=16, **kw)


def test_a_run_writes_every_artifact_and_scores_only_on_held_out_contexts(setup):
    run = run_explain(_request(setup, "run", n_features=6))
    folder = run.folder
    for name in ("explain.json", "explanations.jsonl", "labels.parquet", "report.html", "evidence/manifest.json"):
        assert (folder / name).exists(), name
    summary = json.loads((folder / "explain.json").read_text())
    assert summary["n_contexts"] == 400 and 0 < summary["n_held_out_contexts"] < 400
    assert summary["corpus"]["name"] == "corpus.txt" and summary["distribution"]["embedding"]["n"] == len(run.explained)
    evidence = read_evidence(folder / "evidence")
    held = evidence.contexts.held_out
    items = list(iter_explanations(folder / "explanations.jsonl"))
    assert items and all(i.explanation.author.kind == "local_tokens" for i in items)
    for item in items:
        shown = set(item.explanation.shown_contexts)
        assert shown and not any(held[c] for c in shown)
        score = item.score("embedding")
        assert score is not None and score.contexts and all(held[c] for c in score.contexts)
        assert not shown & set(score.contexts)
        assert score.null_random_explanation.value is not None and score.null_feature != item.explanation.feature_id
    assert pq.read_table(folder / "labels.parquet").num_rows == len(items)
    assert summary["timings"]["harvest_s"] > 0 and "seconds_per_feature" in summary


def test_features_can_be_named_and_dead_ones_are_skipped(setup):
    run = run_explain(_request(setup, "named", feature_ids=("SAE:L1:F0", "SAE:L1:F3")))
    assert set(run.evidence.features) == {"SAE:L1:F0", "SAE:L1:F3"}
    assert set(run.explained) <= {"SAE:L1:F0", "SAE:L1:F3"}


@pytest.mark.parametrize("kw, match", [
    ({"explainer": "poet"}, "explainer"),
    ({"scorers": ("embedding", "vibes")}, "scorers"),
    ({"scorers": ("detection",)}, "judge"),
    ({"explainer": "none"}, "nothing to score"),
])
def test_bad_requests_name_the_argument(setup, kw, match):
    with pytest.raises(ValidationError, match=match):
        check_request(_request(setup, "bad", **kw))
    with pytest.raises(ValidationError, match="sae"):
        check_request(ExplainRequest(out="x"))


def test_an_unknown_feature_id_is_refused_with_close_ones(setup):
    with pytest.raises(ValidationError, match="SAE:L1:F99") as err:
        run_explain(_request(setup, "unknown", feature_ids=("SAE:L1:F99",)))
    assert "SAE:L1:F" in (err.value.hint or "")


def test_every_scorer_runs_with_a_local_judge_and_the_output_side_is_interventional(setup):
    run = run_explain(_request(setup, "all", n_features=2, scorers=("embedding", "detection", "fuzzing", "output"),
                               judge="model"))
    assert run.explained
    for item in run.explained.values():
        methods = {s.method: s for s in item.scores}
        assert set(methods) == {"embedding", "detection", "fuzzing", "output"}
        assert methods["detection"].judge and "weak local judge" in methods["detection"].judge
        assert methods["output"].provenance == "interventional" and "steered" in methods["output"].note
        assert methods["embedding"].provenance == "held_out_text" and methods["embedding"].judge is None
    summary = json.loads((run.folder / "explain.json").read_text())
    assert summary["distribution"]["output"]["n"] == len(run.explained)


def test_a_report_gets_its_top_features_explained_and_written_back(setup):
    from interp_agent.core.inspection import inspect

    prompts = setup / "prompts.jsonl"
    rng = np.random.default_rng(1)
    rows = [{"prompt_id": f"p{i}", "text": " ".join(rng.choice(WORDS[:6] if i % 2 else WORDS[6:], 6)),
             "criterion_score": float(i % 2)} for i in range(60)]
    prompts.write_text("\n".join(json.dumps(r) for r in rows))
    inspected = inspect(str(setup / "model"), "weather or food words", backend="hf", dataset=prompts,
                        hookpoints=["blocks.1.hook_resid_post"], out=setup / "inspect")
    top = [f["feature_id"] for f in inspected.report["features"][:4]]
    run = run_explain(ExplainRequest(out=str(setup / "from-report"), model=str(setup / "model"),
                                     report=str(setup / "inspect" / "report.json"), top_k=4,
                                     corpus=str(setup / "corpus.txt"), max_contexts=400, context_length=16))
    assert set(run.evidence.features) <= set(top) and run.evidence.features
    written = json.loads((setup / "from-report" / "report.json").read_text())
    attached = [f for f in written["features"] if f.get("explained")]
    assert attached, "the report's top feature at its hookpoint fires often enough to explain"
    assert {f["feature_id"] for f in attached} == {i.explanation.feature_id for i in run.explained.values()}
    for f in attached:
        assert f["explained"]["scores"][0]["method"] == "embedding" and f["explained"]["author"]["kind"]
    page = (setup / "from-report" / "inspect_report.html").read_text()
    assert "explanation-panel" in page


def test_imported_explanations_are_scored_on_held_out_contexts_like_any_other(setup):
    labels = setup / "features.jsonl"
    labels.write_text("\n".join(json.dumps({"feature_id": f"SAE:L1:F{i}", "model": "tiny", "layer": 1,
                                            "label": "weather words such as rain and snow"}) for i in range(24)))
    run = run_explain(_request(setup, "imported", explainer="none", explanations=str(labels)))
    assert run.explained
    held = run.evidence.contexts.held_out
    for item in run.explained.values():
        assert item.explanation.author.kind == "imported" and item.explanation.author.name == "features.jsonl"
        score = item.score("embedding")
        assert score is not None and all(held[c] for c in score.contexts)
    summary = json.loads((run.folder / "explain.json").read_text())
    not_scored = [w for w in summary["warnings"] if "not scored" in w]
    assert len(run.explained) + len(not_scored) == 24  # every import is scored, or the warning says why not
