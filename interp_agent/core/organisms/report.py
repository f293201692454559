"""``organism_check.md``: the check in a page, every number tagged with its provenance."""

from __future__ import annotations

from typing import Any

SYN, INT, COR, PRM = "[synthetic-organism]", "[interventional]", "[correlational]", "[interventional: prompting]"


def _mi(m: dict[str, Any] | None, digits: int = 4) -> str:
    """``mean [lo, hi]`` of a mean_interval dict."""
    if not m or m.get("mean") is None:
        return "-"
    ci = m.get("ci95")
    return f"{m['mean']:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def _auc(a: dict[str, Any] | None) -> str:
    if not a or a.get("auroc") is None:
        return "-"
    ci = a.get("ci95")
    return f"{a['auroc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _behaviour_lines(b: dict[str, Any]) -> list[str]:
    t, o = b["trigger_prompts"], b["other_prompts"]
    return [
        f"## Behaviour {SYN} ({b['measured_on']})", "",
        "| prompts | P(target) base | P(target) organism | top-1 base / organism | KL(base‖organism), nats |",
        "|---|---|---|---|---|",
        *[f"| {name} | {_mi(x['base']['p_target'])} | {_mi(x['organism']['p_target'])} | "
          f"{x['base']['top1_rate']:.2f} / {x['organism']['top1_rate']:.2f} | {_mi(x['kl_base_to_organism'])} |"
          for name, x in (("trigger", t), ("other", o))], "",
    ]


def _run_lines(name: str, run: dict[str, Any]) -> list[str]:
    lines = [f"### {name}: `{run['model']}` ({run['seconds']:.0f} s)", ""]
    if run["refused"]:
        lines += [f"The target scorer refused {COR}: {run['refused']['message']}", ""]
    elif run["scorer"]:
        lines += [f"Target scorer: held-out AUROC {run['scorer']['auroc']:.3f}, calibration AUROC "
                  f"{run['scorer']['calibration_auroc']:.3f} {COR}", ""]
    if run["interventions"]:
        lines += ["| feature | verdict | held-out effect on P(target) | controls (mean, max abs) | strength |",
                  "|---|---|---|---|---|"]
        lines += [f"| `{f['feature_id']}` | {f['verdict']} | {_mi(f['effect'])} on {f['effect'].get('measured_on')} "
                  f"{INT} | {f['control_effect']['mean']:+.4f}, {f['control_effect']['max_abs']:.4f} | "
                  f"{f['strength']} |" for f in run["interventions"]]
        lines.append("")
    if run["top_features"]:
        top = run["top_features"][0]
        lines += [f"Top of the ranking: `{top['feature_id']}` (held-out AUROC {top['held_out_auroc'] or 0:.3f} "
                  f"{COR}, causal verdict {top['causal_verdict']})", ""]
    return lines


def _steering_lines(steering: dict[str, Any] | None, prompting: dict[str, Any]) -> list[str]:
    """Our causal feature steered on and off in each model, beside prompting on the same prompts."""
    if not steering:
        return ["", "No causal feature on the organism: nothing to steer beside prompting.", ""]
    lines = ["", f"Steering `{steering['feature_id']}` at {steering['strength_in_feature_units']:.2f} x its scale, "
                 f"each model's own vector ({INT}, single edits, no controls) vs prompting ({PRM}): change of "
                 "P(target) on held-out prompts", "",
             "| model | steer on (others) | prompt on (others) | steer off (trigger) | prompt off (trigger) |",
             "|---|---|---|---|---|"]
    for name, s in steering.items():
        if not isinstance(s, dict) or "on" not in s:
            continue
        p = prompting[name]
        lines.append(f"| {name} | {_mi(s['on']['change'])} | {_mi(p['on']['change'])} | {_mi(s['off']['change'])} "
                     f"| {_mi(p['off']['change'])} |")
    return lines


def _baseline_lines(result: dict[str, Any]) -> list[str]:
    det, prm = result["baselines"]["detection"], result["baselines"]["prompting"]
    lines = [f"## Baselines (AxBench style) {COR} detection, {PRM} steering", "",
             "| model | hookpoint | difference of means | logistic probe | ours (same activations) |",
             "|---|---|---|---|---|"]
    for name, per_hook in det.items():
        for d in per_hook:
            ours = "; ".join(f"`{fid}` {_auc(a)}" for fid, a in d["ours"].items()) or "-"
            lines.append(f"| {name} | {d['hookpoint']} | {_auc(d['difference_of_means'])} | "
                         f"{_auc(d['logistic_probe'])} | {ours} |")
    lines += _steering_lines(result["steering_both_ways"], prm)
    lines += ["", "| model | instruction | on | P(target) plain | prompted | change |", "|---|---|---|---|---|---|"]
    for name, p in prm.items():
        for key in ("on", "off"):
            x = p[key]
            lines.append(f"| {name} | `{x['instruction'].strip()}` | {x['measured_on']} | {_mi(x['p_target_plain'])} "
                         f"| {_mi(x['p_target_prompted'])} | {_mi(x['change'])} |")
    return [*lines, ""]


def check_markdown(result: dict[str, Any]) -> str:
    """The page of an organism check."""
    imp = result["implant"]
    edit = imp["edit"]
    lines = [
        f"# Organism check: {'PASSED' if result['passed'] else 'FAILED'}", "",
        f"SYNTHETIC ORGANISM: prompts about the {imp['trigger']['topic']} were made to prefer "
        f"{imp['target']['text']!r} next, by a planted neuron ({edit['layer']}:{edit['neuron']}, seed {imp['seed']}).",
        f"Criterion: {result['criterion']}. Hookpoints: {', '.join(result['hookpoints'])}. Split: "
        f"{result['split']['calibration']} calibration / {result['split']['held_out']} held-out prompts.", "",
        "| check | holds |", "|---|---|", *[f"| {k} | {v} |" for k, v in result["checks"].items()], "",
        *_behaviour_lines(result["behaviour"]), "## Investigation (inspect -> intervene with controls -> rank)", "",
    ]
    for name, run in result["investigation"].items():
        lines += _run_lines(name, run)
    lines += _baseline_lines(result)
    return "\n".join(lines)
