"""Criterion authoring on real packs, planted confounds, templates and a small real generation run.

The encoder is the real all-MiniLM-L6-v2; the length gate counts the embedded SmolLM2 tokenizer's tokens.
Planted sets are synthetic (written here) and say so in their names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.criteria import load_pack
from interp_agent.core.criteria.authoring import compile_criterion, criterion_brief, score_prompts
from interp_agent.core.criteria.gates import NEAR_DUPLICATE_COSINE, run_gates
from interp_agent.core.criteria.templates import expand_template, parse_template
from interp_agent.core.errors import EvidenceError, InputFileError, ValidationError
from interp_agent.core.formats.prompts import read_scored_prompts


@pytest.fixture(scope="module")
def encoder():
    from interp_agent.core.explain.scorers import MemoEncoder
    from interp_agent.core.matching.text import load_text_encoder

    return MemoEncoder(load_text_encoder())  # each test text is embedded once per module


@pytest.fixture(scope="module")
def count_tokens():
    from interp_agent.core.criteria.authoring import token_counter

    return token_counter("smollm2-135m")


def _gates(name, encoder, count_tokens):
    pack = load_pack(name)
    return {g.gate: g for g in run_gates(pack.prompts, pack.criterion, encoder, count_tokens=count_tokens)}


def test_the_question_and_sentiment_packs_pass_every_gate(encoder, count_tokens) -> None:
    for name in ("question", "negative_sentiment"):
        gates = _gates(name, encoder, count_tokens)
        assert all(g.passed for g in gates.values()), {k: g.detail for k, g in gates.items() if not g.passed}
        assert gates["near_duplicates"].value < 0.75 < NEAR_DUPLICATE_COSINE


def test_french_and_code_packs_fail_only_on_token_length(encoder, count_tokens) -> None:
    # a finding, not a tuning target: French and code take many more SmolLM2 tokens than matched English
    for name in ("french", "python_code"):
        gates = _gates(name, encoder, count_tokens)
        failed = [k for k, g in gates.items() if not g.passed]
        assert failed == ["length_confound"], failed
        assert gates["length_confound"].extra["auroc"]["tokens"] > 0.9
        assert gates["length_confound"].extra["auroc"]["words"] < 0.6
    lexical = _gates("french", encoder, None)["lexical_confound"]
    assert lexical.passed and lexical.extra["bow_accuracy"] > 0.95  # words separate French, legitimately


def test_the_measurement_pack_fails_held_out_agreement_of_a_text_classifier(encoder) -> None:
    # a next-token criterion: the prompt text alone barely shows it to a sentence classifier
    gates = _gates("measurement_unit", encoder, None)
    assert [k for k, g in gates.items() if not g.passed] == ["held_out_agreement"]
    assert gates["held_out_agreement"].value < 0.8


def test_a_planted_last_word_confound_fails_the_lexical_gate_and_names_it(encoder, tmp_path: Path) -> None:
    pack = load_pack("question")
    rows = [{"prompt_id": p.prompt_id, "text": p.text + (" indeed" if p.criterion_score else ""),
             "criterion_score": p.criterion_score} for p in pack.prompts]
    path = tmp_path / "planted_confound.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValidationError) as err:
        compile_criterion(pack.criterion, prompts=path, encoder=encoder, tokenizer_model=None)
    assert "lexical_confound" in err.value.message and "'indeed'" in err.value.message
    assert "line 1 " in err.value.message  # offenders are quoted with their file line
    kept = compile_criterion(pack.criterion, prompts=path, encoder=encoder, tokenizer_model=None,
                             allow_failures=True, out=tmp_path / "kept")
    assert "lexical_confound" in kept.failed_gates  # (the extra word also lengthens every positive)
    saved = json.loads((tmp_path / "kept" / "criterion_set.json").read_text())
    assert saved["failed_gates"] == kept.failed_gates and saved["schema_version"].endswith("criterion_set.v1")
    # the same word is fine when the criterion is about it
    ok = compile_criterion(pack.criterion, prompts=path, encoder=encoder, tokenizer_model=None,
                           expected_words=["indeed"], allow_failures=True)
    assert "lexical_confound" not in ok.failed_gates


def test_near_duplicates_within_a_class_fail_and_minimal_pairs_across_classes_do_not(encoder) -> None:
    pack = load_pack("question")
    pos = [p.text for p in pack.prompts if p.criterion_score][:30]
    neg = [p.text for p in pack.prompts if not p.criterion_score][:30]
    compiled = compile_criterion(pack.criterion, positives=pos, negatives=neg, encoder=encoder,
                                 tokenizer_model=None, allow_failures=True)
    assert "near_duplicates" not in compiled.failed_gates
    copy = pos[0].replace("?", " exactly?").replace("the ", "this ", 1)
    with pytest.raises(ValidationError, match="near_duplicates"):
        compile_criterion(pack.criterion, positives=[*pos, copy], negatives=neg, encoder=encoder,
                          tokenizer_model=None)
    with pytest.raises(ValidationError, match="exact_duplicates"):
        compile_criterion(pack.criterion, positives=[*pos, pos[3].upper()], negatives=neg, encoder=encoder,
                          tokenizer_model=None)


def test_an_unbalanced_set_fails_the_balance_gate(encoder) -> None:
    pack = load_pack("question")
    pos = [p.text for p in pack.prompts if p.criterion_score]
    neg = [p.text for p in pack.prompts if not p.criterion_score][:12]
    compiled = compile_criterion(pack.criterion, positives=pos, negatives=neg, encoder=encoder,
                                 tokenizer_model=None, allow_failures=True)
    assert "class_balance" in compiled.failed_gates


def test_a_compiled_pack_is_written_as_scored_prompts_inspect_can_read(encoder, tmp_path: Path) -> None:
    pack = load_pack("question")
    out = compile_criterion(pack.criterion, prompts=pack.path, encoder=encoder, out=tmp_path / "q")
    assert out.passed and out.folder == tmp_path / "q"
    back = read_scored_prompts(tmp_path / "q" / "prompts.jsonl")
    assert [p.text for p in back] == [p.text for p in pack.prompts]
    meta = json.loads((tmp_path / "q" / "criterion_set.json").read_text())
    assert meta["made"]["source"] == "agent" and {g["gate"] for g in meta["gates"]} >= {"lexical_confound"}
    assert meta["counts"]["by_origin"] == {"agent": len(pack.prompts)}


def test_template_expansion_is_deterministic_and_its_fixed_words_are_caught(encoder) -> None:
    spec = parse_template({"slots": {"n": [str(i) for i in range(2, 40)],
                                     "thing": ["rope", "road", "river", "wall", "bridge", "tower", "table"]},
                           "positive": ["The {thing} is {n}"], "negative": ["The {thing} has {n}"]})
    a, b = expand_template(spec, 25, seed=1), expand_template(spec, 25, seed=1)
    assert a == b and a != expand_template(spec, 25, seed=2) and len(set(a[0])) == 25
    compiled = compile_criterion("the next token should be a physical measurement unit", source="template",
                                 template=spec,
                                 n_per_class=25, encoder=encoder, tokenizer_model=None, allow_failures=True)
    assert set(compiled.origins) == {"template"}
    lexical = next(g for g in compiled.gates if g.gate == "lexical_confound")
    unexplained = {c["token"] for c in lexical.extra["carriers"] if not c["explained"]}
    assert not lexical.passed and {"is", "has"} <= unexplained  # function words, but fixed in every prompt
    with pytest.raises(ValidationError, match="unknown slot"):
        parse_template({"positive": ["a {x}"], "negative": ["b"], "slots": {}})
    with pytest.raises(ValidationError, match="distinct"):
        expand_template(parse_template({"positive": ["a {x}"], "negative": ["b {x}"], "slots": {"x": ["1", "2"]}}),
                        5)


def test_a_bad_template_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("positive: [unclosed\n")
    with pytest.raises(InputFileError, match="t.yaml"):
        compile_criterion("the text is a question", source="template", template=bad, tokenizer_model=None)


def test_the_brief_states_every_gate_and_the_recommended_count() -> None:
    brief = criterion_brief("the text is a question")
    assert set(brief["gates"]) == {"exact_duplicates", "near_duplicates", "class_balance", "length_confound",
                                   "lexical_confound", "held_out_agreement"}
    assert brief["per_class"]["recommended"] > brief["per_class"]["minimum"]
    with pytest.raises(ValidationError):
        criterion_brief("  ")


def test_score_prompts_scores_a_text_file_with_held_out_accuracy(encoder, tmp_path: Path) -> None:
    texts = tmp_path / "new.txt"
    texts.write_text("Where did you park the car?\nThe car is parked behind the library.\n\nWhy is the sky blue?\n")
    res = score_prompts(texts, scorer="question", binarize=0.5, out=tmp_path / "scored", encoder=encoder)
    assert [r["criterion_score"] for r in res.rows] == [1.0, 0.0, 1.0]
    assert res.summary["held_out_accuracy"] > 0.8 and res.summary["scorer"]["held_out"]["n_held_out"] > 20
    assert (tmp_path / "scored" / "scored_prompts.jsonl").is_file()
    labelled = score_prompts(load_pack("question").path, "the text is a question", encoder=encoder)
    assert labelled.summary["n_in_training"] == labelled.summary["n_prompts"]  # every pack prompt was learnt from
    with pytest.raises(ValidationError, match="train"):
        score_prompts(texts, "the text mentions a colour", encoder=encoder)


def test_score_prompts_refuses_a_near_chance_classifier(encoder, tmp_path: Path) -> None:
    import random

    # labels drawn at random (synthetic): with 47 held-out prompts the null AUROC has SE ~0.085, so about one
    # random labelling in eight clears 0.6 by chance; this draw (seed 0) does not (held-out AUROC 0.56)
    pack = load_pack("negative_sentiment")
    rng = random.Random(0)
    shuffled = [{"prompt_id": p.prompt_id, "text": p.text, "criterion_score": rng.random() < 0.5}
                for p in pack.prompts]
    train = tmp_path / "random_labels_synthetic.jsonl"
    train.write_text("".join(json.dumps(r | {"criterion_score": int(r["criterion_score"])}) + "\n" for r in shuffled))
    texts = tmp_path / "x.txt"
    texts.write_text("Is it raining?\n")
    with pytest.raises(EvidenceError, match="near chance"):
        score_prompts(texts, "the text is a question", train=train, encoder=encoder)


@pytest.mark.slow
def test_the_embedded_model_generates_labelled_candidates_that_pass_the_filter(encoder, tmp_path: Path) -> None:
    pack = load_pack("question")
    pos = [p.text for p in pack.prompts if p.criterion_score][:10]
    neg = [p.text for p in pack.prompts if not p.criterion_score][:10]
    compiled = compile_criterion(pack.criterion, positives=pos, negatives=neg, source="model", n_per_class=3,
                                 seed=0, encoder=encoder, allow_failures=True, out=tmp_path / "gen")
    generated = [p for p, o in zip(compiled.prompts, compiled.origins, strict=True) if o == "generated"]
    record = compiled.made["generation"]
    assert generated and record["model"] == "smollm2-135m" and record["sampling"]["seed"] == 0
    assert sum(record["filter"]["n_kept"].values()) == len(generated)
    rows = [json.loads(line) for line in (tmp_path / "gen" / "prompts.jsonl").read_text().splitlines()]
    assert all(r["generator"]["temperature"] == 0.9 for r in rows if r["origin"] == "generated")
    assert any("optimistic" in n for n in compiled.notes)


def test_the_cli_prints_the_brief_and_compiles_a_pack(tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main

    assert main(["compile-criterion", "the text is a question", "--brief", "--json"]) == 0
    assert "lexical_confound" in json.loads(capsys.readouterr().out)["gates"]
    pack = load_pack("question")
    assert main(["compile-criterion", pack.criterion, "--prompts", str(pack.path), "--no-tokens",
                 "--out", str(tmp_path / "q"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    texts = tmp_path / "t.txt"
    texts.write_text("Is it late?\n")
    assert main(["score-prompts", str(texts), "--train", str(tmp_path / "q"), "--binarize", "0.5",
                 "--out", str(tmp_path / "s")]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    assert main(["compile-criterion", pack.criterion, "--positive", "Is it?", "--negative", "It is."]) == 2


def test_the_candidate_filter_drops_wrong_class_duplicates_and_near_copies(encoder) -> None:
    from interp_agent.core.criteria.generate import clean, filter_candidates

    pack = load_pack("question")
    seeds = list(pack.prompts)
    # hand-written stand-ins for model output (synthetic): one off-class, one repeat, one near-copy
    candidates = {True: ["Where did you leave the umbrella?", "The umbrella is by the door.",
                         "Where did you leave the umbrella?", "Where did you leave your umbrella?",
                         "How long does the bus take to reach the coast?"],
                  False: ["The bus takes two hours to reach the coast.", "Why is the museum closed?"]}
    kept, record = filter_candidates(candidates, pack.criterion, encoder, 10, seeds)
    assert kept[True] == ["Where did you leave the umbrella?", "How long does the bus take to reach the coast?"]
    assert kept[False] == ["The bus takes two hours to reach the coast."]
    assert record["dropped"] == {"disagree": 2, "duplicate": 1, "near_duplicate": 1}
    with pytest.raises(EvidenceError, match="cannot tell"):
        filter_candidates({True: ["The cat sleeps.", "A dog runs."], False: ["The cat sleeps all day.",
                                                                            "A dog runs fast."]},
                          "the text is about volcanoes", encoder, 5)
    assert clean('Sentence: "Is it raining?"\nmore') == "Is it raining?"
    assert clean("The text is a question, yes.", "the text is a question") is None
