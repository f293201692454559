"""Markdown and HTML of a dossier: grouped by feature, grades with reasons, the ladder, evidence and run links."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from interp_agent.core.dossier import (
    Claim,
    Dossier,
    DossierStore,
    Evidence,
    RunRef,
    file_run,
    render_html,
    render_markdown,
)


def _filed(workspace: Path) -> DossierStore:
    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "inspect", workspace / "runs" / "hf1", run_id="hf1", top=3)
    file_run(store, "intervene", workspace / "runs" / "iv1", run_id="iv1")
    return store


def test_markdown_groups_claims_by_feature_with_grade_reason_ladder_and_numbers(workspace: Path):
    store = _filed(workspace)
    text = render_markdown(store.read())
    section = text.split("## direction:contrast@blocks.20.hook_resid_post (smollm2-135m)")[1].split("\n## ")[0]
    assert "Feature ladder: imported · | correlational ✓ | held_out ✓ | causal ✓ | explained · | transferred ·" \
        in section
    assert "### tracks:" in section and "### causes:" in section
    assert "grade **held_out**" in section and "grade **causal**" in section
    assert "effect_ci95=[0.172, 0.3549]" in section
    assert "[runs/iv1/summary.json](../runs/iv1/summary.json) (run iv1)" in section
    weak = text.split("## L20:D17 (smollm2-135m)")[1]
    assert "causal ~" in weak and "supports (weak)" in weak


def test_evidence_of_a_removed_run_is_marked_in_both_renderings(workspace: Path):
    store = _filed(workspace)
    shutil.rmtree(workspace / "runs" / "iv1")
    dossier = store.read()
    missing = store.missing_runs(dossier)
    md = render_markdown(dossier, missing_runs=missing)
    assert "**Missing runs:**" in md and "- runs/iv1/summary.json: run folder not found" in md
    assert md.count("**RUN MISSING**") == 3
    page = render_html(dossier, missing_runs=missing)
    assert page.count('<span class="missing-run">run missing</span>') == 3


def test_the_html_page_is_self_contained_and_escapes_every_value():
    claim = Claim.new("means", "m<b>", "L1:D2", explanation='<script>alert("x")</script> & units')
    ev = Evidence.new("explained", "contradicts", "AUROC 0.5 <b>bold</b>", {"note": "<img src=x>"},
                      RunRef("runs/<x>", "explanations.jsonl", "r&d"), provenance="correlational", tool="explain")
    page = render_html(Dossier.empty("units", criterion="c < d").add(claim, [ev]))
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; units" in page
    assert "<img" not in page and "<b>bold" not in page and "c &lt; d" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<link" not in page and "@import" not in page
    assert 'class="rung rung-contradicted"' in page and "rung-not_applicable" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_a_synthetic_dossier_says_so_at_the_top(workspace: Path):
    store = DossierStore.in_workspace(workspace, "toys")
    file_run(store, "inspect", workspace / "runs" / "toy-a", top=2)
    dossier = store.read()
    assert "**SYNTHETIC:**" in render_markdown(dossier).split("## ")[0]
    assert 'class="synthetic-banner"' in render_html(dossier)


def test_the_compact_view_lists_claims_highest_grade_first_with_missing_runs(workspace: Path):
    import json

    from interp_agent.core.dossier import summary_dict

    store = _filed(workspace)
    shutil.rmtree(workspace / "runs" / "hf1")
    dossier = store.read()
    view = summary_dict(dossier, missing_runs=store.missing_runs(dossier), limit=2)
    json.dumps(view)
    assert view["n_claims"] == 6 and view["by_grade"] == {"causal": 2, "held_out": 3, "none": 1}
    assert [c["grade"] for c in view["claims"]] == ["causal", "causal"]
    assert "explained" not in view["claims"][0]["rungs"]
    assert {m["folder"] for m in view["missing_runs"]} == {"runs/hf1"}
