"""Renderings of report.json: Markdown, self-contained HTML, inline-SVG histograms, writing."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from interp_agent.core.reports import render_html, render_markdown, write_report
from interp_agent.core.reports.svg import POSITIVE_COLOUR, histogram_svg

SCRIPT_LABEL = "<script>alert(1)</script>"


def _feature_with_causal() -> dict:
    return {
        "feature_id": "L18:F104921", "rank": 1, "importance": 0.71, "direction": "promotes",
        "label": "constructed benchmark or test scenario", "explanation": "Fires on eval-style prompts.",
        "layer": 18, "source": "records",
        "association": {
            "provenance": "correlational",
            "train": {"n": 280, "nnz": 151, "pearson_r": 0.82, "p_value": 1e-30, "q_value": 1e-27,
                      "auroc": 0.95, "mean_positive": 0.9, "mean_negative": 0.1},
            "held_out": {"n": 120, "nnz": 60, "pearson_r": 0.79, "p_value": 1e-12, "q_value": 1e-11,
                         "auroc": 0.93, "mean_positive": 0.88, "mean_negative": 0.12},
            "held_out_supported": True,
        },
        "specificity": {"provenance": "correlational", "train": 0.91, "held_out": 0.89, "base_rate": 0.5},
        "stability": {"provenance": "correlational", "bootstrap_top_k_frequency": 0.98,
                      "bootstrap_r_interval": [0.76, 0.87], "resamples": 50},
        "causal": {"provenance": "interventional", "n": 8, "mean_effect": 0.42, "ci95": [0.3, 0.54],
                   "side_effect": 0.04, "control_effect": 0.02, "n_controls": 6,
                   "strong_causal_score": 0.36, "interventions": {"ablate": 8},
                   "agrees_with_association": True},
        "importance_components": {
            "association": {"value": 0.82, "provenance": "correlational"},
            "specificity": {"value": 0.82, "provenance": "correlational"},
            "stability": {"value": 0.98, "provenance": "correlational"},
            "causal": {"value": 0.36, "provenance": "interventional"},
        },
        "examples": [
            {"prompt_id": "eval-1", "text": "Q: a test scenario", "token_index": None, "token": None,
             "activation": 0.92, "criterion_score": 1.0},
            {"prompt_id": "eval-2", "text": "Consider this benchmark", "token_index": 3, "token": " bench",
             "activation": 0.46, "criterion_score": 1.0},
        ],
        "histogram": {"edges": [0.0, 0.25, 0.5, 0.75, 1.0], "positive": [3, 5, 20, 30],
                      "negative": [40, 2, 1, 0], "zeros_positive": 10, "zeros_negative": 130},
        "probe_activations": {"p-17": 0.0, "p-3": 0.81},
        "decoder_signature": [0.1, -0.4, 0.3, 0.2],
        "imported": None,
    }


def _feature_with_script_label() -> dict:
    return {
        "feature_id": "L18:F7", "rank": 2, "importance": 0.4, "direction": "suppresses",
        "label": SCRIPT_LABEL, "explanation": None, "layer": 18, "source": "records",
        "association": {
            "provenance": "correlational",
            "train": {"n": 280, "nnz": 20, "pearson_r": -0.31, "p_value": 2.5e-7, "q_value": 4e-5,
                      "auroc": None, "mean_positive": 0.01, "mean_negative": 0.2},
            "held_out": None,
            "held_out_supported": False,
        },
        "specificity": {"provenance": "correlational", "train": 0.6, "held_out": None, "base_rate": 0.5},
        "stability": {"provenance": "correlational", "bootstrap_top_k_frequency": 0.5,
                      "bootstrap_r_interval": [-0.4, -0.2], "resamples": 50},
        "causal": None,
        "importance_components": {
            "association": {"value": 0.31, "provenance": "correlational"},
            "specificity": {"value": 0.2, "provenance": "correlational"},
            "stability": {"value": 0.5, "provenance": "correlational"},
            "causal": None,
        },
        "examples": [{"prompt_id": "x-1", "text": '<img src="https://evil.example/x.png"> see https://a.example',
                      "token_index": None, "token": None, "activation": 0.3, "criterion_score": 0.0}],
        "histogram": {"edges": [0.0, 0.5, 1.0], "positive": [1, 0], "negative": [10, 4],
                      "zeros_positive": 100, "zeros_negative": 20},
        "probe_activations": None, "decoder_signature": None, "imported": None,
    }


def _features_backend_feature() -> dict:
    return {
        "feature_id": "SAE:L6:F650", "rank": 3, "importance": 0.2, "direction": "promotes",
        "label": "units of length", "explanation": "Mentions of metres and feet.", "layer": 6, "source": "sae",
        "association": None, "specificity": None, "stability": None, "causal": None,
        "importance_components": {"semantic": {"value": 0.61, "provenance": "semantic"}, "causal": None},
        "examples": [], "histogram": None, "probe_activations": None, "decoder_signature": None,
        "imported": {"provenance": "imported", "activation_signature": [0.1, 0.2],
                     "causal_effects": {"criterion": 0.78}, "examples": ["5 metres long"]},
    }


def _report(*, synthetic: bool = False) -> dict:
    return {
        "schema_version": "interp-agent.inspection_report.v1",
        "model": "my/model",
        "criterion": "the next token should be a physical measurement unit",
        "backend": "records",
        "synthetic": synthetic,
        "provenance": {"tool": "interp-agent", "tool_version": "0.1.0", "created_utc": "2025-01-01T00:00:00+00:00",
                       "python": "3.11.7", "platform": "Linux",
                       "inputs": [{"role": "records", "path": "records.jsonl", "sha256": "ab" * 32}]},
        "settings": {"held_out_fraction": 0.3, "split_salt": "interp-agent", "top_k": 20, "candidates": 200,
                     "bootstrap": 50, "seed": 0, "alpha": 0.05, "auroc_bins": 1024,
                     "allow_intervention_criterion_mismatch": False},
        "summary": {"n_rows": 400, "n_prompts": 400, "n_train_rows": 280, "n_held_out_rows": 120,
                    "n_features_tested": 812, "score_kind": "binary", "positive_rate": 0.5,
                    "n_significant_train": 9, "n_held_out_supported": 5, "ranking_stability": 0.91,
                    "n_intervention_rows": 8, "n_control_rows": 6},
        "method": {"importance": "weighted mean of the components", "association": "Pearson r, BH q-values",
                   "specificity": "precision at the midpoint", "stability": "bootstrap top-k frequency",
                   "causal": "ablation effect minus control effect", "split": "hash of prompt id"},
        "warnings": ["only 8 intervention rows"],
        "controls": {"n": 6, "mean_effect": 0.01, "ci95": [-0.02, 0.04],
                     "by_type": {"random_feature": {"n": 6, "mean_effect": 0.0}}, "provenance": "interventional"},
        "probe_prompts": ["p-17", "p-3"],
        "features": [_feature_with_causal(), _feature_with_script_label(), _features_backend_feature()],
    }


class _Collector(HTMLParser):
    """Start tags and their attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser.tags


def _table_lines(markdown: str) -> list[str]:
    section = markdown.split("## Ranked features", 1)[1].split("### ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()]


def test_markdown_table_lists_features_in_rank_order_with_formatted_numbers() -> None:
    rows = _table_lines(render_markdown(_report()))
    assert [row.split(" | ")[1] for row in rows] == ["L18:F104921", "L18:F7", "SAE:L6:F650"]
    first = [cell.strip() for cell in rows[0].strip("|").split(" | ")]
    assert first == ["1", "L18:F104921", "constructed benchmark or test scenario", "promotes", "0.71", "0.82",
                     "0.79", "yes", "0.93", "0.89", "0.98", "0.36"]
    third = [cell.strip() for cell in rows[2].strip("|").split(" | ")]
    assert third[5:] == ["—"] * 7


def test_markdown_sorts_features_by_rank_even_when_the_list_is_shuffled() -> None:
    report = _report()
    report["features"] = list(reversed(report["features"]))
    rows = _table_lines(render_markdown(report))
    assert [row.split(" | ")[0] for row in rows] == ["| 1", "| 2", "| 3"]


def test_markdown_prints_p_and_q_values_in_scientific_notation() -> None:
    text = render_markdown(_report())
    assert "1.00e-30" in text and "1.00e-27" in text and "2.50e-07" in text


def test_markdown_falls_back_to_train_values_when_held_out_is_null() -> None:
    row = _table_lines(render_markdown(_report()))[1]
    assert "0.6 (train)" in row
    assert "supported on held-out prompts: not tested (no held-out statistics)" in render_markdown(_report())


def test_synthetic_banner_appears_only_for_synthetic_reports() -> None:
    assert "SYNTHETIC DATA" in render_markdown(_report(synthetic=True))
    assert "SYNTHETIC DATA" not in render_markdown(_report(synthetic=False))
    assert 'class="synthetic-banner"' in render_html(_report(synthetic=True))
    assert "synthetic-banner\"" not in render_html(_report(synthetic=False))
    assert "SYNTHETIC DATA" not in render_html(_report(synthetic=False))


def test_markdown_escapes_html_and_table_pipes_in_labels() -> None:
    report = _report()
    report["features"][0]["label"] = "a | b"
    text = render_markdown(report)
    assert SCRIPT_LABEL not in text
    assert "&lt;script&gt;" in text
    assert r"a \| b" in text


def test_html_is_one_document_without_external_references() -> None:
    page = render_html(_report())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    tags = _tags(page)
    assert [t for t, _ in tags].count("body") == 1
    for tag, attrs in tags:
        for name in ("src", "href", "xlink:href", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
    assert not any(tag in ("link", "img", "iframe") for tag, _ in tags)
    assert "url(" not in page and "@import" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)


def test_html_escapes_a_label_containing_a_script_tag() -> None:
    page = render_html(_report())
    assert SCRIPT_LABEL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert [tag for tag, _ in _tags(page)].count("script") == 1  # only the table-sorting script
    assert '<img src="https://evil' not in page


def test_html_has_one_histogram_svg_in_each_card_that_has_a_histogram() -> None:
    report = _report()
    page = render_html(report)
    assert page.count("<svg") == 2
    cards = page.split('<article class="feature"')[1:]
    assert [card.count("<svg") for card in cards] == [1, 1, 0]
    assert "No activation histogram" in cards[2]


def test_html_links_every_table_row_to_an_existing_feature_anchor() -> None:
    report = _report()
    tags = _tags(render_html(report))
    card_ids = [attrs["id"] for tag, attrs in tags if tag == "article"]
    assert len(card_ids) == len(set(card_ids)) == len(report["features"])
    hrefs = [attrs.get("href") or "" for tag, attrs in tags if tag == "a"]
    links = [href[1:] for href in hrefs if href.startswith("#feature-")]
    assert links == card_ids
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", anchor) for anchor in card_ids)


def test_html_tags_each_number_block_with_its_provenance_kind() -> None:
    page = render_html(_report())
    cards = page.split('<article class="feature"')[1:]
    assert "tag-interventional" in cards[0] and "tag-correlational" in cards[0]
    assert "tag-interventional" not in cards[1]
    assert "No intervention evidence" in cards[1]
    assert "tag-semantic" in cards[2] and "tag-imported" in cards[2]
    assert "Not measured (no activation records)" in cards[2]


def test_html_shades_examples_in_proportion_to_the_largest_activation() -> None:
    card = render_html(_report()).split('<article class="feature"')[1]
    widths = re.findall(r"rgba\([^)]*\) ([0-9.]+)%", card)
    assert widths == ["100.0", "50.0"]


def _bar_heights(svg: str) -> list[float]:
    """Heights of the histogram bars (the rects that carry a tooltip), in drawing order."""
    return [float(h) for h in re.findall(r'height="([0-9.]+)" fill="[^"]+"><title>', svg)]


def test_histogram_bars_are_fractions_of_their_own_class() -> None:
    svg = histogram_svg({"edges": [0.0, 1.0], "positive": [10], "negative": [1000],
                         "zeros_positive": 0, "zeros_negative": 0})
    assert svg is not None
    heights = _bar_heights(svg)
    # the zero panel's bars are empty and drawn as nothing; the one bin: the two classes fill it equally.
    assert len(heights) == 2 and heights[0] == heights[1] > 0
    assert "activation 0:" not in svg  # no tooltip on an empty bar


def test_histogram_draws_the_zero_bar_on_its_own_scale() -> None:
    svg = histogram_svg({"edges": [0.5, 1.0, 2.0], "positive": [1, 1], "negative": [0, 1],
                         "zeros_positive": 998, "zeros_negative": 9})
    assert svg is not None and svg.startswith("<svg") and svg.endswith("</svg>")
    assert "= 0" in svg and "0.5" in svg and ">2<" in svg and POSITIVE_COLOUR in svg
    heights = _bar_heights(svg)
    # The tallest non-zero bin reaches the top of its panel although zeros dominate.
    assert max(heights[2:]) == max(heights[:2])
    assert histogram_svg(None) is None


def test_write_report_writes_three_files_and_json_round_trips(tmp_path: Path) -> None:
    report = _report()
    paths = write_report(report, tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json", "report.md"]
    with open(paths["json"], encoding="utf-8") as fh:
        assert json.load(fh) == report
    assert paths["md"].read_text(encoding="utf-8") == render_markdown(report)
    assert paths["html"].read_text(encoding="utf-8") == render_html(report)


def test_rendering_with_every_optional_block_null_does_not_raise() -> None:
    report = _report()
    report.update(controls=None, warnings=None, method=None, summary=None, settings=None, provenance=None)
    bare = {key: None for key in _feature_with_causal()}
    bare.update(feature_id="L0:F1", rank=1, importance_components={"causal": None}, examples=None)
    report["features"] = [bare, copy.deepcopy(_features_backend_feature())]
    for rendered in (render_markdown(report), render_html(report)):
        assert "L0:F1" in rendered and "SAE:L6:F650" in rendered
    assert "No intervention evidence" in render_html(report)
    for empty in ({}, {"features": None}, {"features": []}):
        assert "No features were reported" in render_markdown(empty)
        assert "No features were reported" in render_html(empty)


# -- held-out intervals, notes and what each count means ----------------------------------------
NOTE = ("held-out evidence does not exclude chance on 19 held-out prompts: r +0.37 (95% CI [-0.10, +0.71]); "
        "the r interval includes 0; detecting the training effect (r +0.66) would need about 16 held-out prompts")


def _report_with_intervals() -> dict:
    """The sample report with the interval fields ``rank_records`` writes, and a feature with a thin held-out set."""
    report = _report()
    report["summary"] |= {"n_train_prompts": 280, "n_held_out_prompts": 120, "n_held_out_excludes_chance": 1}
    feature = report["features"][0]
    feature["association"]["held_out"] |= {"n_prompts": 120, "pearson_r_ci95": [0.71, 0.85],
                                           "auroc_ci95": [0.88, 0.96], "ci_excludes_chance": True}
    feature["association"]["held_out_power"] = {
        "provenance": "correlational", "method": "Fisher z, two-sided alpha 0.05, power 0.8",
        "n_held_out_prompts": 120, "prompts_needed_at_train_r": 9, "prompts_needed_at_held_out_r": 10}
    feature["notes"] = []
    report["features"][1]["notes"] = [NOTE]
    return report


def test_markdown_and_html_show_held_out_intervals_the_power_estimate_and_notes() -> None:
    report = _report_with_intervals()
    text = render_markdown(report)
    first = [cell.strip() for cell in _table_lines(text)[0].strip("|").split(" | ")]
    assert first[6] == r"0.79 \[0.71, 0.85\]" and first[8] == r"0.93 \[0.88, 0.96\]"
    assert "| Pearson r, 95% CI (held-out only) | — | [0.71, 0.85] |" in text
    assert "supported on held-out prompts: yes; 95% intervals exclude chance: yes" in text
    assert "Held-out prompts needed (Fisher z, two-sided alpha 0.05, power 0.8): 9 to detect the training r" in text
    assert "- Note: held-out evidence does not exclude chance on 19 held-out prompts" in text
    assert "with held-out 95% intervals that exclude chance: 1" in text
    page = render_html(report)
    cards = page.split('<article class="feature"')[1:]
    assert "[0.71, 0.85]" in cards[0] and "[0.88, 0.96]" in cards[0] and "9 to detect the training r" in cards[0]
    assert "<h4>Notes</h4>" in cards[1] and "would need about 16 held-out prompts" in cards[1]
    assert "<h4>Notes</h4>" not in cards[0]


def test_summary_says_what_each_held_out_count_counts() -> None:
    report = _report_with_intervals()
    assert "- Prompts: 400, one row each: 280 train, 120 held-out" in render_markdown(report)
    tokens = copy.deepcopy(report)
    tokens["summary"] |= {"n_rows": 1200, "n_train_rows": 840, "n_held_out_rows": 360}
    assert ("- Rows: 1200 from 400 prompts: train 840 rows of 280 prompts, held-out 360 rows of 120 prompts"
            in render_markdown(tokens))
    seed_like = copy.deepcopy(report)
    seed_like["summary"] |= {"n_rows": 4, "n_prompts": 4, "n_train_rows": 3, "n_held_out_rows": 1,
                             "n_train_prompts": 3, "n_held_out_prompts": 1}
    text = render_markdown(seed_like)
    assert "- Prompts: 4, one row each: 3 train, 1 held-out" in text
    assert (
        "supported on held-out prompts: not tested: the held-out split has 1 row, and held-out statistics need "
        "at least 3" in text
    )
    assert "of the 3 reported, confirmed on held-out prompts:" in text
    continuous = copy.deepcopy(report)
    continuous["summary"]["score_kind"] = "continuous"
    assert "Scores: continuous; mean score, scaled to [0, 1]: 0.5" in render_markdown(continuous)
    assert "mean score (0..1)" in render_html(continuous)


def test_stability_is_said_as_a_count_of_resamples_not_a_bare_share() -> None:
    text = render_markdown(_report())
    assert "in the top 20 with the same sign in 49 of 50 bootstrap resamples (98%)" in text
    assert "in the bootstrap top-k 0.98 of 50" not in text


def test_a_report_without_records_says_nothing_was_measured_instead_of_printing_dashes() -> None:
    report = _report()
    report["summary"] = {"n_rows": 0, "n_prompts": 0, "n_features_tested": 2, "n_intervention_rows": 4,
                         "n_control_rows": 0}
    text = render_markdown(report)
    summary = text.split("## Summary", 1)[1].split("##", 1)[0]
    assert "No activation records: nothing was measured on prompts" in summary
    assert "positive rate" not in summary and "Ranking stability" not in summary and "—" not in summary
    assert "No activation records" in render_html(report)


def test_compact_rows_carry_the_held_out_intervals_and_notes() -> None:
    from interp_agent.core.reports.compact import COMPACT_FIELDS, compact_feature

    report = _report_with_intervals()
    rows = [compact_feature(f) for f in report["features"]]
    assert all(tuple(r) == COMPACT_FIELDS for r in rows)
    assert rows[0]["r_held_out_ci95"] == [0.71, 0.85] and rows[0]["auroc_held_out_ci95"] == [0.88, 0.96]
    assert rows[0]["auroc_held_out"] == 0.93 and rows[0]["n_held_out_prompts"] == 120
    assert rows[0]["held_out_excludes_chance"] is True and rows[0]["held_out_prompts_needed"] == 9
    assert rows[1]["notes"] == [NOTE] and rows[1]["r_held_out_ci95"] is None
    assert rows[2]["r_train"] is None and rows[2]["notes"] == []  # the features backend: nothing measured
