"""Criterion packs and criterion sets: pack quality checks, example validation, the shared split."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from interp_agent.core.criteria import (
    CriterionSet,
    CriterionWarning,
    from_examples,
    from_file,
    from_pack,
    length_stats,
    list_packs,
    load_pack,
    split,
    validate_pack,
)
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt, write_scored_prompts
from interp_agent.core.ranking.config import HELD_OUT_FRACTION
from interp_agent.core.ranking.heldout import (
    PROMPT_COUNT_ADVICE,
    RECOMMENDED_PROMPTS_PER_CLASS,
    TARGET_AUROC,
    recommended_prompts_per_class,
)
from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes

REQUIRED_PACKS = {"measurement_unit", "french", "python_code", "negative_sentiment", "question"}


def _balanced(n_per_class: int, words_pos: int = 6, words_neg: int = 6) -> list[ScoredPrompt]:
    pos = [ScoredPrompt(f"p{i}", " ".join([f"pos{i}"] + ["w"] * (words_pos - 1)), 1.0) for i in range(n_per_class)]
    neg = [ScoredPrompt(f"n{i}", " ".join([f"neg{i}"] + ["w"] * (words_neg - 1)), 0.0) for i in range(n_per_class)]
    return pos + neg


# ------------------------------------------------------------------ packs


def test_the_five_required_packs_are_shipped() -> None:
    assert REQUIRED_PACKS <= set(list_packs())


@pytest.mark.parametrize("name", sorted(REQUIRED_PACKS))
def test_every_shipped_pack_passes_validation(name: str) -> None:
    pack = load_pack(name)
    assert validate_pack(pack.prompts) == []
    n_pos = sum(p.criterion_score == 1 for p in pack.prompts)
    assert n_pos >= 40 and len(pack.prompts) - n_pos >= 40
    assert pack.criterion.strip() and pack.path.is_file()


def test_no_text_is_shared_between_shipped_packs() -> None:
    seen: dict[str, str] = {}
    for name in list_packs():
        for p in load_pack(name).prompts:
            key = " ".join(p.text.casefold().split())
            assert key not in seen, f"{p.prompt_id} repeats {seen[key]}"
            seen[key] = p.prompt_id


def test_measurement_unit_targets_are_single_words_with_a_leading_space() -> None:
    targets = load_pack("measurement_unit").targets
    assert targets is not None and len(targets) >= 14
    assert len(set(targets)) == len(targets)
    for t in targets:
        assert re.fullmatch(r" [a-z]+", t), t
    assert {" meters", " feet", " kilograms", " degrees", " minutes"} <= set(targets)


def test_measurement_unit_prompts_end_on_a_number() -> None:
    for p in load_pack("measurement_unit").prompts:
        assert re.search(r"\d$", p.text), p.text


def test_measurement_unit_pairs_have_the_same_word_count_within_two() -> None:
    rows = {p.prompt_id: p for p in load_pack("measurement_unit").prompts}
    for pid, p in rows.items():
        if "-pos-" in pid:
            q = rows[pid.replace("-pos-", "-neg-")]
            assert abs(len(p.text.split()) - len(q.text.split())) <= 2, (p.text, q.text)


def test_validate_pack_accepts_a_clean_balanced_set() -> None:
    assert validate_pack(_balanced(30)) == []


def test_validate_pack_flags_duplicate_ids_and_texts_after_normalising_case_and_spaces() -> None:
    rows = _balanced(30)
    rows.append(ScoredPrompt("p0", "something new here and there", 1.0))
    rows.append(ScoredPrompt("extra", "  POS3   w w w w w ", 1.0))
    problems = validate_pack(rows)
    assert any("duplicate prompt_id 'p0'" in p for p in problems)
    assert any("duplicate text" in p and "'extra'" in p and "'p3'" in p for p in problems)


def test_validate_pack_flags_class_imbalance() -> None:
    rows = _balanced(30)[:30] + _balanced(30)[30:45]  # 30 positive, 15 negative, 60 rows needed
    rows += [ScoredPrompt(f"x{i}", f"more{i} w w w w w", 1.0) for i in range(15)]
    problems = validate_pack(rows)
    assert any(p.startswith("class imbalance") and "negative" in p for p in problems)


def test_validate_pack_flags_a_length_confound_and_reports_mean_word_counts() -> None:
    problems = validate_pack(_balanced(30, words_pos=12, words_neg=6))
    confound = [p for p in problems if p.startswith("length confound")]
    assert confound and "positive 12.0" in confound[0] and "negative 6.0" in confound[0]


def test_validate_pack_flags_a_length_correlation_even_when_the_gap_is_small() -> None:
    # Means 10.5 vs 9.5 (gap 10 %) but lengths split perfectly by class: |r| near 1.
    rows = _balanced(30, words_pos=11, words_neg=10)
    rows = [ScoredPrompt(p.prompt_id, p.text + (" w" if p.criterion_score else ""), p.criterion_score) for p in rows]
    stats = length_stats(rows)
    assert stats.relative_gap < 0.2 and abs(stats.point_biserial_r) > 0.9
    assert any(p.startswith("length confound") for p in validate_pack(rows))


def test_validate_pack_flags_too_few_prompts_and_non_binary_scores() -> None:
    rows = _balanced(10)
    rows[0] = ScoredPrompt("p0", rows[0].text, 0.7)
    problems = validate_pack(rows)
    assert any(p.startswith("too few prompts: 20") for p in problems)
    assert any("must be 0 or 1" in p for p in problems)


def test_length_stats_point_biserial_is_pearson_of_length_with_label() -> None:
    rng = np.random.default_rng(0)
    rows = [ScoredPrompt(f"r{i}", " ".join(["w"] * int(rng.integers(1, 20))), float(i % 2)) for i in range(50)]
    lengths = np.array([len(p.text.split()) for p in rows], dtype=float)
    labels = np.array([p.criterion_score for p in rows])
    assert length_stats(rows).point_biserial_r == pytest.approx(np.corrcoef(lengths, labels)[0, 1])


def test_unknown_pack_name_lists_the_available_packs() -> None:
    with pytest.raises(ValidationError) as info:
        load_pack("klingon")
    assert "french" in str(info.value)


def test_packs_are_found_in_given_folders_and_the_first_folder_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, criterion in ((first, "from a"), (second, "from b")):
        folder.mkdir()
        write_scored_prompts(folder / "tiny.jsonl", _balanced(30))
        (folder / "index.json").write_text(json.dumps({"tiny": {"criterion": criterion, "file": "tiny.jsonl"}}))
    (second / "index.json").write_text(json.dumps({
        "tiny": {"criterion": "from b", "file": "tiny.jsonl"},
        "other": {"criterion": "only b", "file": "tiny.jsonl", "targets": [" x"]},
    }))
    assert list_packs([first, second]) == ["other", "tiny"]
    assert load_pack("tiny", [first, second]).criterion == "from a"
    assert load_pack("other", [first, second]).targets == (" x",)


# ------------------------------------------------------------------ criterion sets


def test_from_pack_carries_the_criterion_and_targets() -> None:
    cset = from_pack("measurement_unit")
    assert cset.source == "pack" and "measurement unit" in cset.criterion
    assert cset.targets and " meters" in cset.targets
    assert cset.n_positive == cset.n_negative


def test_from_examples_numbers_ids_per_class() -> None:
    n = RECOMMENDED_PROMPTS_PER_CLASS  # as many as advised: no warning
    pos = [f"positive example number {i}" for i in range(n)]
    neg = [f"negative example number {i}" for i in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cset = from_examples("c", pos, neg)
    assert [p.prompt_id for p in cset.prompts[:2]] == ["pos-0", "pos-1"]
    assert cset.prompts[n].prompt_id == "neg-0" and cset.prompts[n].criterion_score == 0.0
    assert cset.source == "examples" and cset.notes == ()


def test_the_advice_on_prompt_counts_is_one_number_from_the_held_out_power_estimate() -> None:
    from interp_agent.core.criteria.sets import ADVISED_EXAMPLES

    assert ADVISED_EXAMPLES == RECOMMENDED_PROMPTS_PER_CLASS == recommended_prompts_per_class()
    n = RECOMMENDED_PROMPTS_PER_CLASS - 1
    with pytest.warns(CriterionWarning) as record:
        from_examples("c", [f"positive example {i}" for i in range(n)], [f"negative example {i}" for i in range(n)])
    (message,) = [str(w.message) for w in record]
    assert message == f"few examples: {n} positives, {n} negatives; write {PROMPT_COUNT_ADVICE}"
    with pytest.raises(ValidationError) as err:
        from_examples("c", ["a b"] * 3, ["x"])
    assert err.value.hint == f"write {PROMPT_COUNT_ADVICE}"
    # the investigation prompt and the README give the same number, with the same target
    root = Path(__file__).resolve().parents[3]
    sentence = (f"about {RECOMMENDED_PROMPTS_PER_CLASS} of each, so that the {HELD_OUT_FRACTION:.0%} held-out split "
                f"can detect a held-out AUROC of {TARGET_AUROC}")
    assert sentence in " ".join((root / "prompts" / "investigation_loop.md").read_text().split())
    readme = " ".join((root / "README.md").read_text().split())
    assert f"Write about {RECOMMENDED_PROMPTS_PER_CLASS} of each class" in readme
    assert f"held-out AUROC of {TARGET_AUROC}" in readme
    for path in (root / "prompts").glob("*.md"):  # no other count of prompts to write
        assert not re.search(r"at least\s+\d+\s+(of each|prompts)", path.read_text()), path


def test_from_examples_needs_eight_of_each_class() -> None:
    with pytest.raises(ValidationError, match="negatives: need at least 8 examples, got 7"):
        from_examples("c", [f"p {i}" for i in range(8)], [f"n {i}" for i in range(7)])


def test_from_examples_rejects_duplicates_across_classes_after_normalising() -> None:
    pos = [f"text {i}" for i in range(8)]
    neg = [f"other {i}" for i in range(7)] + ["  TEXT   3 "]
    with pytest.raises(ValidationError, match=r"negatives\[7\] repeats positives\[3\]"):
        from_examples("c", pos, neg)


def test_from_examples_rejects_empty_texts_and_a_bare_string() -> None:
    with pytest.raises(ValidationError, match=r"positives\[2\] is empty"):
        from_examples("c", ["a b", "c d", "  "] + [f"x {i}" for i in range(6)], [f"n {i}" for i in range(8)])
    with pytest.raises(ValidationError, match="one string"):
        from_examples("c", "just one string of text", [f"n {i}" for i in range(8)])


def test_from_examples_warns_when_few_examples_and_when_lengths_differ() -> None:
    pos = [f"p{i} " + "long " * 20 for i in range(10)]
    neg = [f"n{i} short" for i in range(10)]
    with pytest.warns(CriterionWarning) as record:
        cset = from_examples("c", pos, neg)
    messages = [str(w.message) for w in record]
    assert any("few examples: 10 positives, 10 negatives" in m for m in messages)
    assert any("length confound" in m for m in messages)
    assert len(cset.notes) == 2


def test_criterion_set_rejects_an_empty_criterion_and_repeated_ids() -> None:
    rows = tuple(_balanced(5))
    with pytest.raises(ValidationError, match="criterion"):
        CriterionSet(" ", rows, "file")
    with pytest.raises(ValidationError, match="'p0' repeats"):
        CriterionSet("c", rows + (rows[0],), "file")


def test_from_file_reads_scored_prompts_and_notes_imbalance(tmp_path: Path) -> None:
    rows = _balanced(30)[:40]  # 30 positive, 10 negative
    path = write_scored_prompts(tmp_path / "s.jsonl", rows)
    with pytest.warns(CriterionWarning, match="unbalanced"):
        cset = from_file(path, "c")
    assert cset.source == "file" and [p.prompt_id for p in cset.prompts] == [p.prompt_id for p in rows]


def test_split_puts_each_prompt_where_the_ranking_hash_split_puts_it() -> None:
    cset = from_pack("negative_sentiment")
    ids = [p.prompt_id for p in cset.prompts]
    for fraction, salt in ((0.3, "interp-agent"), (0.5, "another salt")):
        calibration, held_out = split(cset, fraction, salt)
        groups = assign_splits(prompt_hashes(ids, salt), fraction, [None] * len(ids))
        expected_held_out = [pid for pid, g in zip(ids, groups, strict=True) if g == HELD_OUT]
        assert [p.prompt_id for p in held_out] == expected_held_out
        assert len(calibration) + len(held_out) == len(ids)
        assert not {p.prompt_id for p in calibration} & set(expected_held_out)


def test_split_lets_an_explicit_split_field_win(tmp_path: Path) -> None:
    rows = _balanced(20)
    rows = [ScoredPrompt(p.prompt_id, p.text, p.criterion_score, "held_out" if i in (0, 20) else "train")
            for i, p in enumerate(rows)]
    cset = from_file(write_scored_prompts(tmp_path / "s.jsonl", rows), "c")
    calibration, held_out = split(cset)
    assert [p.prompt_id for p in held_out] == ["p0", "n0"] and len(calibration) == 38


def test_split_refuses_a_part_without_both_classes(tmp_path: Path) -> None:
    rows = [ScoredPrompt(p.prompt_id, p.text, p.criterion_score, "held_out" if p.criterion_score else "train")
            for p in _balanced(10)]
    cset = from_file(write_scored_prompts(tmp_path / "s.jsonl", rows), "c")
    with pytest.raises(EvidenceError, match="calibration split .* has 0 positive and 10 negative"):
        split(cset)


def test_split_rejects_a_held_out_fraction_outside_the_unit_interval() -> None:
    with pytest.raises(ValidationError, match="held_out_fraction"):
        split(from_pack("french"), 1.0)


def test_importing_criteria_loads_neither_torch_nor_mcp() -> None:
    code = "import sys, interp_agent.core.criteria; print('torch' in sys.modules, 'mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
