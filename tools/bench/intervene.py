"""Benchmark: the intervene step with its edits batched against the same step one edit per pass.

Measured in one process on the embedded model, the same prompts, features and fitted scorer:

- sequential: ``InterveneConfig(batch_edits=False)``: every edit (a strength, a control) its own
  forward passes or generates, the behaviour score and the KL log-probabilities separately;
- batched: the default: the edits of a step share passes, each on its own copy of the prompt chunk.

For the classifier scorer (an all-MiniLM-L6-v2 classifier on greedy continuations, on the french
pack) and the target scorer (next-token mass of the measurement_unit pack's targets). Features,
chosen on calibration prompts: the contrast direction (positive minus negative mean) at
blocks.15.hook_resid_post, and the residual dim at layer 10 and the MLP neuron at layer 20 whose
means differ most between the classes. Prints wall and CPU seconds (this process, all threads)
of each path and their ratios, the largest differences of every number the two runs report, and
whether every verdict, chosen strength, grid and stability share is the same. Goal: >= 4x on the
classifier scorer; identical verdicts and strengths. On a shared CPU, wall time also measures the
neighbours (one pair of runs, one after the other); ``--threads 1`` makes CPU seconds the steadier figure.

    python tools/bench/intervene.py                      # 40 prompts, 3 features, both scorers
    python tools/bench/intervene.py --prompts 80          # the full size
    python tools/bench/intervene.py --scorers classifier --threads 1 --max-batch-rows 128
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from interp_agent.core.criteria import TargetTokenScorer, TextClassifierScorer, load_pack
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.interventions import InterveneConfig, InterventionRun, parse_target, run_interventions
from interp_agent.core.interventions.continuation import ContinuationScorer
from interp_agent.core.interventions.targets import Target
from interp_agent.core.live import split_prompts
from interp_agent.core.models import load_model
from interp_agent.core.models.harvest import harvest
from interp_agent.core.models.hookpoints import resolve_hookpoint

PACKS = {"classifier": "french", "target": "measurement_unit"}
"""The pack each scorer is measured on."""


def balanced(prompts: tuple[ScoredPrompt, ...], n: int) -> list[ScoredPrompt]:
    """The first n/2 positives and n/2 negatives of a pack."""
    pos = [p for p in prompts if p.criterion_score > 0.5][: n // 2]
    neg = [p for p in prompts if p.criterion_score <= 0.5][: n - len(pos)]
    return pos + neg


def fit_scorer(kind: str, loaded: Any, cal: list[ScoredPrompt], held: list[ScoredPrompt],
               targets: tuple[str, ...] | None, max_new_tokens: int) -> Any:
    """The behaviour scorer as intervene fits it: on calibration prompts, evaluated held out (on continuations)."""
    model, tok = loaded.model, loaded.tokenizer
    if kind == "target":
        scorer = TargetTokenScorer(targets=targets, min_auroc=0.5).fit(model, tok, cal)
        scorer.evaluate(model, tok, held)
        return scorer
    classifier = TextClassifierScorer(min_auroc=0.5).fit(cal)
    behaviour = ContinuationScorer(classifier, max_new_tokens=max_new_tokens)
    classifier.validate_on_texts(behaviour.continuations(model, tok, [p.text for p in cal]), cal)
    classifier.evaluate(held, texts=behaviour.continuations(model, tok, [p.text for p in held]))
    return behaviour


def choose_features(loaded: Any, calibration: list[ScoredPrompt]) -> tuple[list[Target], dict[str, int]]:
    """The contrast direction at layer 15, the most contrasting layer-10 dim and layer-20 neuron (calibration only)."""
    labels = np.array([p.criterion_score > 0.5 for p in calibration])
    hooks = ["blocks.15.hook_resid_post", "blocks.10.hook_resid_post", "blocks.20.mlp.hook_post"]
    acts = harvest(loaded, [p.text for p in calibration], hooks, pooling="mean")
    diff = {h: acts[h].acts[labels].mean(0) - acts[h].acts[~labels].mean(0) for h in hooks}
    fid = f"direction:contrast@{hooks[0]}"
    targets = [parse_target(fid, {}, {fid: (hooks[0], diff[hooks[0]])})]
    signs = {fid: 1}
    for hook, fmt in ((hooks[1], "L10:D{}"), (hooks[2], "L20:N{}")):
        score = np.abs(diff[hook]) / (acts[hook].acts.std(0) + 1e-6)
        j = int(np.argmax(score))
        targets.append(parse_target(fmt.format(j), {hook: resolve_hookpoint(loaded.model, hook).width}))
        signs[targets[-1].feature_id] = 1 if diff[hook][j] > 0 else -1
    return targets, signs


def timed_run(loaded: Any, targets: list[Target], scorer: Any, cal: list[ScoredPrompt], held: list[ScoredPrompt],
              signs: dict[str, int], config: InterveneConfig) -> tuple[float, float, InterventionRun]:
    """Wall and CPU seconds (this process, all threads) of one run_interventions, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    run = run_interventions(loaded, targets, scorer, calibration=cal, held_out=held, criterion="bench",
                            model_name="smollm2-135m", expected_sign=signs, config=config)
    return time.perf_counter() - wall, time.process_time() - cpu, run


def compare(a: InterventionRun, b: InterventionRun) -> dict[str, Any]:
    """Largest |difference| of effects, control effects and KLs; whether verdicts and strengths agree."""
    def worst(pairs: list[tuple[float, float]]) -> float:
        return max((abs(x - y) for x, y in pairs), default=0.0)

    fa, fb = a.features, b.features
    sweeps = [(ra, rb) for x, y in zip(fa, fb, strict=True)
              for ra, rb in zip(x["calibration"].get("sweep") or [], y["calibration"].get("sweep") or [], strict=True)]
    same_grid = all(x["calibration"].get("grid") == y["calibration"].get("grid") for x, y in zip(fa, fb, strict=True))
    stab = [(sa, sb) for x, y in zip(fa, fb, strict=True)
            for sa, sb in zip(x["stability"]["by_strength"], y["stability"]["by_strength"], strict=True)]
    rows = list(zip(a.records, b.records, strict=True))
    return {
        "effect": worst([(x["effect"]["mean"], y["effect"]["mean"]) for x, y in zip(fa, fb, strict=True)]
                        + [(ra["calibration_signed_effect"], rb["calibration_signed_effect"]) for ra, rb in sweeps]
                        + [(sa["effect"], sb["effect"]) for sa, sb in stab]),
        "control": worst([(x["control_effect"]["max_abs"], y["control_effect"]["max_abs"])
                          for x, y in zip(fa, fb, strict=True)]
                         + [(ra.intervention_score, rb.intervention_score) for ra, rb in rows
                            if ra.control_type is not None]),
        "kl": worst([(x["side_effect"]["kl_on_other_class"], y["side_effect"]["kl_on_other_class"])
                     for x, y in zip(fa, fb, strict=True)]
                    + [(ra["calibration_kl"], rb["calibration_kl"]) for ra, rb in sweeps]),
        "records": worst([(ra.intervention_score, rb.intervention_score) for ra, rb in rows]),
        "same": same_grid and all(
            (x["verdict"], x["strength"], x["stability"]["share"])
            == (y["verdict"], y["strength"], y["stability"]["share"]) for x, y in zip(fa, fb, strict=True)),
        "verdicts": [f"{x['feature_id']}: {x['verdict']} @ {x['strength']}" for x in fa],
    }


def bench(loaded: Any, kind: str, args: argparse.Namespace) -> None:
    """Fit the scorer of ``kind`` on its pack, then time and compare both paths."""
    pack = load_pack(PACKS[kind])
    prompts = balanced(pack.prompts, args.prompts)
    cal, held = split_prompts(pack.criterion, prompts, held_out_fraction=0.3, salt="interp-agent")
    start = time.perf_counter()
    scorer = fit_scorer(kind, loaded, cal, held, pack.targets, args.max_new_tokens)
    fit_s = time.perf_counter() - start
    targets, signs = choose_features(loaded, cal)
    targets = targets[: args.features]
    base = InterveneConfig(max_batch_rows=args.max_batch_rows)
    configs = {"sequential": replace(base, batch_edits=False), "batched": base}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    runs: dict[str, InterventionRun] = {}
    for r in range(args.repeats):  # alternating order, so a busy spell of the neighbours hits both
        for name in (("sequential", "batched") if r % 2 == 0 else ("batched", "sequential")):
            wall, cpu, runs[name] = timed_run(loaded, targets, scorer, cal, held, signs, configs[name])
            times[name].append((wall, cpu))
    seq_s, seq_cpu = (statistics.median(t[i] for t in times["sequential"]) for i in (0, 1))
    bat_s, bat_cpu = (statistics.median(t[i] for t in times["batched"]) for i in (0, 1))
    seq, bat = runs["sequential"], runs["batched"]
    c = compare(seq, bat)
    print(f"\n{kind} scorer, pack {pack.name}: {len(cal)} calibration + {len(held)} held-out prompts, "
          f"{len(targets)} features (scorer fitted in {fit_s:.1f} s, not timed); median of {args.repeats}, "
          f"load average after {os.getloadavg()[0]:.1f}")
    print(f"  {'path':<12}{'wall s':>10}{'ratio':>9}{'CPU s':>10}{'ratio':>9}")
    print(f"  {'sequential':<12}{seq_s:>10.1f}{1.0:>9.2f}{seq_cpu:>10.1f}{1.0:>9.2f}")
    print(f"  {'batched':<12}{bat_s:>10.1f}{seq_s / bat_s:>9.2f}{bat_cpu:>10.1f}{seq_cpu / bat_cpu:>9.2f}"
          "   (goal: wall ratio >= 4 on the classifier scorer)")
    print(f"  max |diff|: effects {c['effect']:.2e}, control effects {c['control']:.2e}, KLs {c['kl']:.2e}, "
          f"record scores {c['records']:.2e}")
    print(f"  verdicts, chosen strengths, grids and stability identical: {c['same']}")
    for line in c["verdicts"]:
        print(f"    {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--scorers", default="classifier,target", help="comma-separated: classifier, target")
    ap.add_argument("--prompts", type=int, default=40, help="prompts per pack, balanced (80: the full size)")
    ap.add_argument("--features", type=int, default=3, choices=[1, 2, 3])
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--max-batch-rows", type=int, default=InterveneConfig().max_batch_rows)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each path, alternating; medians reported")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    print(f"model {args.model}, torch threads {torch.get_num_threads()} of {os.cpu_count()} CPUs, "
          f"max batch rows {args.max_batch_rows}, load average {os.getloadavg()[0]:.1f}")
    for kind in args.scorers.split(","):
        bench(loaded, kind.strip(), args)


if __name__ == "__main__":
    main()
