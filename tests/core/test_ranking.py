"""Ranking: planted features win on held-out evidence, streaming equals dense, causal evidence moves ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from interp_agent.core.errors import EvidenceError
from interp_agent.core.formats import (
    ActivationRecord,
    InterventionRecord,
    jsonl_to_parquet,
    write_records,
)
from interp_agent.core.ranking import (
    RankingConfig,
    RecordsSource,
    rank_records,
    summarise_interventions,
)
from interp_agent.core.ranking.splits import assign_splits, prompt_hashes
from interp_agent.core.ranking.stats import (
    auroc_interval,
    fisher_z_interval,
    prompts_needed_for_r,
)
from interp_agent.core.synthetic import (
    PlantedConfig,
    planted_interventions,
    planted_records,
)

CRITERION = "synthetic criterion"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    ps = planted_records("toy/model-a", CRITERION, PlantedConfig(n_prompts=400))
    path = tmp_path_factory.mktemp("planted") / "records.jsonl"
    write_records(path, ps.records, ps.feature_metadata)
    return ps, path


def _family(ps) -> dict[str, str]:
    return {fid: fam for fam, ids in ps.families.items() for fid in ids}


def test_planted_features_rank_on_top_with_held_out_support_and_distractors_do_not(planted) -> None:
    ps, path = planted
    body = rank_records(RecordsSource(path), RankingConfig(top_k=20))
    feats = body["features"]
    fam = _family(ps)
    n_true = len(ps.families["true"])
    top = feats[:n_true]
    assert {f["feature_id"] for f in top} == set(ps.families["true"])
    for f in top:
        assoc = f["association"]
        assert assoc["held_out_supported"], f["feature_id"]
        assert assoc["held_out"]["q_value"] < 1e-6
        assert np.sign(assoc["held_out"]["pearson_r"]) == np.sign(assoc["train"]["pearson_r"])
        assert f["stability"]["bootstrap_top_k_frequency"] > 0.9
    # the suppressing concept is found and labelled as such
    suppressors = [f for f in top if f["direction"] == "suppresses"]
    assert len(suppressors) == 1 and suppressors[0]["label"].startswith("absence")
    # distractors: none of the always-on or rare ones reach the report; the best distractor is far below
    reported = {fam[f["feature_id"]] for f in feats}
    assert "always_on" not in reported and "rare" not in reported
    assert feats[n_true]["importance"] < 0.5 * top[-1]["importance"]
    # rare features fire on a handful of positives: weakly associated, never supported on held-out
    everything = rank_records(RecordsSource(path), RankingConfig(top_k=200, candidates=505))["features"]
    rare = [f for f in everything if fam[f["feature_id"]] == "rare"]
    assert rare and max(abs(f["association"]["train"]["pearson_r"]) for f in rare) < 0.3
    assert all(not f["association"]["held_out_supported"] for f in rare)


def test_streaming_statistics_equal_a_dense_computation(planted) -> None:
    ps, path = planted
    cfg = RankingConfig(top_k=30)
    feats = rank_records(RecordsSource(path, chunk_rows=37), cfg)["features"]
    ids = [r.prompt_id for r in ps.records]
    g = assign_splits(prompt_hashes(ids, cfg.split_salt), cfg.held_out_fraction)
    y = np.array([r.criterion_score for r in ps.records])
    for f in feats:
        x = np.array(
            [dict(zip(r.feature_ids, r.activations, strict=True)).get(f["feature_id"], 0.0) for r in ps.records]
        )
        for gi, name in ((0, "train"), (1, "held_out")):
            m = g == gi
            ref = stats.pearsonr(x[m], y[m])
            got = f["association"][name]
            assert got["pearson_r"] == pytest.approx(ref.statistic, abs=1e-9)
            assert got["n"] == m.sum() and got["nnz"] == int((x[m] != 0).sum())
            exact_auc = stats.mannwhitneyu(x[m][y[m] == 1], x[m][y[m] == 0]).statistic / (
                (y[m] == 1).sum() * (y[m] == 0).sum()
            )
            assert got["auroc"] == pytest.approx(exact_auc, abs=0.01)
            assert got["mean_positive"] == pytest.approx(x[m][y[m] == 1].mean())
        assert f["association"]["train"]["p_value"] == pytest.approx(
            stats.pearsonr(x[g == 0], y[g == 0]).pvalue, rel=1e-5, abs=1e-300
        )


def test_jsonl_and_parquet_give_the_same_report(planted, tmp_path: Path) -> None:
    _, path = planted
    jsonl_to_parquet(path, tmp_path / "ds")
    a = rank_records(RecordsSource(path), RankingConfig(top_k=15))
    b = rank_records(RecordsSource(tmp_path / "ds"), RankingConfig(top_k=15))
    assert [f["feature_id"] for f in a["features"]] == [f["feature_id"] for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        assert fa["importance"] == pytest.approx(fb["importance"], rel=1e-9)
        assert fa["examples"] == fb["examples"]
        assert fa["histogram"] == fb["histogram"]
    assert a["summary"] == b["summary"]


def test_causal_evidence_moves_features_as_it_says(planted) -> None:
    _ps, path = planted
    base = rank_records(RecordsSource(path), RankingConfig(top_k=20))["features"]
    promoters = [f["feature_id"] for f in base[:5] if f["direction"] == "promotes"]
    top, fifth = promoters[0], promoters[-1]
    rows = []
    for i in range(8):  # ablating the top feature does nothing; ablating the fifth drops the score a lot
        rows.append(InterventionRecord(top, "ablate", 0.8, 0.8 + (0.01 if i % 2 else -0.01), criterion=CRITERION))
        rows.append(InterventionRecord(fifth, "ablate", 0.8, 0.2 + 0.01 * i, criterion=CRITERION))
    evidence = summarise_interventions(rows, CRITERION)
    moved = rank_records(RecordsSource(path), RankingConfig(top_k=20), evidence=evidence)["features"]
    order = [f["feature_id"] for f in moved]
    assert order[0] == fifth
    assert order.index(top) > 0
    causal = moved[0]["causal"]
    assert causal["mean_effect"] == pytest.approx(0.565) and causal["agrees_with_association"]
    assert causal["ci95"][0] < 0.565 < causal["ci95"][1]


def test_evidence_against_the_association_lowers_the_feature(planted) -> None:
    _ps, path = planted
    base = rank_records(RecordsSource(path), RankingConfig(top_k=20))["features"]
    top = base[0]["feature_id"]
    rows = [InterventionRecord(top, "ablate", 0.5, 0.95) for _ in range(6)]  # ablation raises the score
    moved = rank_records(
        RecordsSource(path), RankingConfig(top_k=20), evidence=summarise_interventions(rows, CRITERION)
    )
    f = next(f for f in moved["features"] if f["feature_id"] == top)
    assert f["causal"]["agrees_with_association"] is False
    assert f["importance_components"]["causal"]["value"] < 0
    assert f["rank"] > 1


def test_synthetic_interventions_with_controls_keep_the_true_features_on_top(planted) -> None:
    ps, path = planted
    evidence = summarise_interventions(planted_interventions(ps, CRITERION), CRITERION)
    assert evidence.controls is not None and evidence.controls["n"] == 32
    feats = rank_records(RecordsSource(path), RankingConfig(top_k=10), evidence=evidence)["features"]
    assert {f["feature_id"] for f in feats[:5]} == set(ps.families["true"])
    for f in feats[:5]:
        assert f["causal"]["n_controls"] == 32
        assert f["causal"]["agrees_with_association"] is True


def _tiny(tmp_path: Path, scores: list[float], name: str = "r.jsonl", splits=None) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i, s in enumerate(scores):
        rows.append(ActivationRecord(f"p{i}", s, ("a", "b"), (float(s + rng.normal(0, 0.1)), float(rng.normal())),
                                     split=None if splits is None else splits[i]))
    write_records(tmp_path / name, rows)
    return tmp_path / name


def test_continuous_scores_report_no_auroc(tmp_path: Path) -> None:
    scores = list(np.linspace(0, 1, 60))
    body = rank_records(RecordsSource(_tiny(tmp_path, scores)), RankingConfig(top_k=2, candidates=2))
    assert body["summary"]["score_kind"] == "continuous"
    assert body["features"][0]["feature_id"] == "a"
    assert body["features"][0]["association"]["train"]["auroc"] is None


def test_an_explicit_split_field_overrides_the_hash(tmp_path: Path) -> None:
    scores = [float(i % 2) for i in range(40)]
    splits = ["train"] * 30 + ["held_out"] * 10
    body = rank_records(RecordsSource(_tiny(tmp_path, scores, splits=splits)), RankingConfig(top_k=2, candidates=2))
    assert body["summary"]["n_train_rows"] == 30 and body["summary"]["n_held_out_rows"] == 10


def test_constant_scores_are_a_clear_evidence_error(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="every criterion_score is 1.0"):
        rank_records(RecordsSource(_tiny(tmp_path, [1.0] * 20)), RankingConfig(top_k=2, candidates=2))


def test_absent_feature_counts_as_zero_activation(tmp_path: Path) -> None:
    # 'a' is present only on positives with activation 1: absent rows must count as 0, giving r = 1
    rows = [ActivationRecord(f"p{i}", float(i % 2), ("a",) if i % 2 else ("b",), (1.0,)) for i in range(40)]
    write_records(tmp_path / "r.jsonl", rows)
    body = rank_records(RecordsSource(tmp_path / "r.jsonl"), RankingConfig(top_k=2, candidates=2))
    a = next(f for f in body["features"] if f["feature_id"] == "a")
    assert a["association"]["train"]["pearson_r"] == pytest.approx(1.0)
    assert a["association"]["train"]["auroc"] == pytest.approx(1.0)
    assert a["specificity"]["train"] == pytest.approx(1.0)


def test_criterion_mismatch_is_excluded_and_reported_unless_allowed() -> None:
    rows = [InterventionRecord("f", "ablate", 0.9, 0.1, criterion="Another  CRITERION"),
            InterventionRecord("f", "ablate", 0.9, 0.2, criterion="  The   criterion ")]
    ev = summarise_interventions(rows, "the criterion")
    assert ev.features["f"].effect.n == 1 and any("excluded" in w for w in ev.warnings)
    ev = summarise_interventions(rows, "the criterion", allow_criterion_mismatch=True)
    assert ev.features["f"].effect.n == 2 and any("used anyway" in w for w in ev.warnings)


def test_controls_are_summarised_apart_and_subtracted() -> None:
    rows = [InterventionRecord("f", "steer", 0.2, 0.7) for _ in range(4)]
    rows += [
        InterventionRecord("r1", "steer", 0.2, 0.4, metadata={"control_type": "random_direction"}) for _ in range(3)
    ]
    rows += [InterventionRecord("r2", "steer", 0.2, 0.2, side_effect_score=0.0,
                                metadata={"control_type": "matched_frequency", "control_for": "f"})]
    ev = summarise_interventions(rows, "c")
    assert set(ev.features) == {"f"}
    assert ev.controls["n"] == 4 and set(ev.controls["by_type"]) == {"random_direction", "matched_frequency"}
    fc = ev.features["f"]
    assert fc.control_effect == pytest.approx(0.0) and fc.n_controls == 1  # its own control wins over the pool
    assert fc.strong_causal_score == pytest.approx(0.5)
    pooled = summarise_interventions(rows[:7], "c").features["f"]
    assert pooled.control_effect == pytest.approx(0.2)
    assert pooled.strong_causal_score == pytest.approx(0.3)


def test_token_rows_share_their_prompts_split_and_probe_activation(tmp_path: Path) -> None:
    rows = []
    for i in range(60):
        y = float(i % 2)
        for t in range(3):
            rows.append(ActivationRecord(f"p{i}", y, ("a", "b"), (y * (t + 1) + 0.1, float(t == 1)), token_index=t))
    write_records(tmp_path / "tok.jsonl", rows)
    calls: list[tuple[str, int, int | None]] = []
    body = rank_records(RecordsSource(tmp_path / "tok.jsonl"), RankingConfig(top_k=2, candidates=2),
                        progress=lambda phase, done, total: calls.append((phase, done, total)))
    s = body["summary"]
    assert s["n_rows"] == 180 and s["n_prompts"] == 60
    assert s["n_train_rows"] % 3 == 0 and s["n_held_out_rows"] % 3 == 0  # tokens never split apart
    a = next(f for f in body["features"] if f["feature_id"] == "a")
    probes = a["probe_activations"]
    assert len(probes) == 60
    assert probes["p1"] == pytest.approx((1.1 + 2.1 + 3.1) / 3)  # mean over the prompt's tokens
    assert calls[-1] == ("candidate pass", 180, 180)
    assert {c[0] for c in calls} == {"association pass", "candidate pass"}


# -- how sure a held-out number is ---------------------------------------------------------------
def _pairs(tmp_path: Path, n_pairs: int = 40) -> tuple[Path, list[str], np.ndarray, dict[str, np.ndarray]]:
    """Matched pairs (one prompt where the criterion holds, one where it does not) with a planted and a null feature."""
    rng = np.random.default_rng(11)
    ids = [f"p{i}" for i in range(2 * n_pairs)]
    y = np.array([float(i % 2) for i in range(2 * n_pairs)])
    acts = {"planted": y + rng.normal(0, 0.5, len(y)), "null": rng.normal(0, 1, len(y))}
    rows = [ActivationRecord(pid, float(y[i]), tuple(acts), tuple(float(acts[f][i]) for f in acts))
            for i, pid in enumerate(ids)]
    write_records(tmp_path / "pairs.jsonl", rows)
    return tmp_path / "pairs.jsonl", ids, y, acts


def _exact_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.unique(np.concatenate([pos, neg]))
    return (np.bincount(np.searchsorted(values, pos), minlength=len(values)).astype(float),
            np.bincount(np.searchsorted(values, neg), minlength=len(values)).astype(float))


def test_held_out_intervals_match_references_and_tell_a_planted_signal_from_a_null(tmp_path: Path) -> None:
    path, ids, y, acts = _pairs(tmp_path)
    cfg = RankingConfig(top_k=2, candidates=2)
    body = rank_records(RecordsSource(path), cfg)
    held_out = assign_splits(prompt_hashes(ids, cfg.split_salt), cfg.held_out_fraction) == 1
    assert body["summary"]["n_held_out_prompts"] == held_out.sum() == body["summary"]["n_held_out_rows"]
    by_id = {f["feature_id"]: f for f in body["features"]}
    for fid, x in acts.items():
        held = by_id[fid]["association"]["held_out"]
        ref = stats.pearsonr(x[held_out], y[held_out]).confidence_interval(0.95)
        assert held["pearson_r_ci95"] == pytest.approx([ref.low, ref.high], rel=1e-6)
        exact = auroc_interval(*_exact_counts(x[held_out & (y == 1)], x[held_out & (y == 0)]))
        assert held["auroc_ci95"] == pytest.approx(list(exact), abs=0.02)  # 1024 bins vs exact values
        assert held["auroc_ci95"][0] <= held["auroc"] <= held["auroc_ci95"][1]
    planted, null = by_id["planted"], by_id["null"]
    assert planted["association"]["held_out"]["ci_excludes_chance"] is True and planted["notes"] == []
    assert null["association"]["held_out"]["ci_excludes_chance"] is False
    r_train = null["association"]["train"]["pearson_r"]
    need = null["association"]["held_out_power"]["prompts_needed_at_train_r"]
    assert need == prompts_needed_for_r(r_train) > held_out.sum()
    (note,) = null["notes"]
    assert note.startswith(f"held-out evidence does not exclude chance on {held_out.sum()} held-out prompts")
    assert f"would need about {need} held-out prompts" in note
    assert body["summary"]["n_held_out_excludes_chance"] == 1
    assert any(w.startswith("held-out evidence does not exclude chance for 1 of the 2 reported features")
               and "null" in w and f"about {need} held-out prompts" in w for w in body["warnings"])


def test_a_held_out_split_too_small_for_statistics_says_what_it_counts_and_what_is_needed(seed_dir: Path) -> None:
    body = rank_records(RecordsSource(seed_dir / "activation_records.jsonl"), RankingConfig(top_k=3, candidates=3))
    s = body["summary"]
    assert (s["n_held_out_rows"], s["n_held_out_prompts"], s["n_train_prompts"]) == (1, 1, 3)
    for f in body["features"]:
        assert f["association"]["held_out"] is None and f["specificity"]["held_out"] is None
        need = f["association"]["held_out_power"]["prompts_needed_at_train_r"]
        assert need == prompts_needed_for_r(f["association"]["train"]["pearson_r"])
        (note,) = f["notes"]
        assert note.startswith("no held-out statistics: the held-out split has 1 row (1 prompt)")
        assert f"about {need} held-out prompts" in note
    assert body["warnings"][0].startswith("no reported feature has held-out statistics; the top feature")
    assert not any("rows: held-out evidence is weak" in w for w in body["warnings"])


def test_token_records_take_the_held_out_prompts_not_the_rows_as_the_sample_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    rows = []
    for i in range(60):
        y = float(i % 2)
        for t in range(3):
            rows.append(ActivationRecord(f"p{i}", y, ("a",), (float(0.5 * y + rng.normal()),), token_index=t))
    write_records(tmp_path / "tok.jsonl", rows)
    held = rank_records(RecordsSource(tmp_path / "tok.jsonl"), RankingConfig(top_k=1, candidates=1))["features"][0]
    held = held["association"]["held_out"]
    assert held["n"] == 3 * held["n_prompts"]
    lo, hi = fisher_z_interval(held["pearson_r"], held["n_prompts"])
    assert held["pearson_r_ci95"] == pytest.approx([lo, hi])
    narrow = fisher_z_interval(held["pearson_r"], held["n"])
    assert hi - lo > narrow[1] - narrow[0]  # tokens of one prompt are not independent evidence


def test_bootstrap_sums_equal_the_sparse_dense_product_they_replace() -> None:
    from scipy import sparse

    from interp_agent.core.ranking.association import weighted_candidate_sums

    rng = np.random.default_rng(0)
    for n_rows, n_cands, nnz in [(10, 3, 5), (1000, 50, 40_000), (5, 4, 0)]:
        flat = rng.choice(n_rows * n_cands, size=nnz, replace=False)  # distinct (row, candidate) pairs
        rows, cands = flat // n_cands, flat % n_cands
        x, y = rng.standard_normal(nnz), rng.standard_normal(n_rows)
        weights = rng.poisson(1.0, (n_rows, 7)).astype(np.float64)
        ours = weighted_candidate_sums(rows, cands, (x, x * x, x * y[rows]), weights, n_cands)
        X = sparse.csr_matrix((x, (rows, cands)), shape=(n_rows, n_cands))
        reference = [X.T @ weights, X.multiply(X).T @ weights, X.multiply(y[:, None]).tocsr().T @ weights]
        for got, want in zip(ours, reference, strict=True):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10, atol=1e-10)
