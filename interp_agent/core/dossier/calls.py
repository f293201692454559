"""The next calls of an evidence plan: each MCP tool call, its command line, and what it will cost.

A :class:`Call` is a tool name with its arguments, exactly as the MCP tool takes them
(``interp_agent.server.models`` and ``server.explain_models``; paths are workspace paths, runs
are named by run id), plus the equivalent ``interp-agent`` command line where there is one, and
a :class:`Cost` whose ``basis`` says where the seconds come from. :class:`Rates` holds the
seconds per forward pass, measured from the dossier's own runs when it has any
(``costs`` documents the defaults).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from interp_agent.core.dossier import costs
from interp_agent.core.dossier.model import Dossier, RunRecord, RunRef

MAX_INTERVENE_FEATURES = 32
"""``InterveneInput.features`` takes at most 32 ids: more features are split over several calls."""
HELD_OUT_FRACTION = 0.3
"""intervene's and inspect's default held-out share of the prompts."""


@dataclass(frozen=True, slots=True)
class Cost:
    """What a call is expected to cost on this machine."""

    seconds: float
    forward_passes: int
    """Model forward passes (sequences); 0 when no language model runs."""
    basis: str
    """How the estimate was made: the formula's inputs and where the seconds per pass come from."""

    def to_dict(self) -> dict[str, Any]:
        """``{seconds, forward_passes, basis}``."""
        return {"seconds": round(self.seconds, 1), "forward_passes": self.forward_passes, "basis": self.basis}


@dataclass(frozen=True, slots=True)
class Rates:
    """Seconds per forward pass, and what they were learnt from."""

    seconds_per_pass: float
    basis: str
    explain_seconds_per_feature: float
    """Explaining and scoring one feature (the local explainer and the embedding score)."""

    @classmethod
    def of(cls, dossier: Dossier) -> Rates:
        """Rates measured from the dossier's runs that have seconds and passes, else the documented defaults."""
        samples: list[tuple[float, int, RunRecord]] = []
        for r in dossier.runs:
            harvest, n = r.numbers.get("harvest_s"), r.numbers.get("n_contexts")
            if r.kind == "explain" and isinstance(harvest, (int, float)) and isinstance(n, int) and n > 0:
                samples.append((float(harvest), n, r))
            elif r.kind != "explain" and r.seconds is not None and r.forward_passes:
                samples.append((r.seconds, r.forward_passes, r))
        per_feature = [r.numbers["explain_and_score_s_per_feature"] for r in dossier.runs
                       if isinstance(r.numbers.get("explain_and_score_s_per_feature"), (int, float))]
        explain_pf = sum(per_feature) / len(per_feature) if per_feature else costs.EXPLAIN_SECONDS_PER_FEATURE
        if not samples:
            return cls(costs.DEFAULT_SECONDS_PER_PASS, costs.DEFAULT_BASIS, explain_pf)
        seconds, passes = sum(s for s, _, _ in samples), sum(p for _, p, _ in samples)
        names = ", ".join(r.run.run_id or r.run.folder for _, _, r in samples[:5])
        basis = (f"measured: {seconds:.1f} s over {passes} forward passes in {len(samples)} earlier run(s) of this "
                 f"dossier ({names})")
        return cls(seconds / passes, basis, explain_pf)

    def model_cost(self, passes: int, formula: str, extra_seconds: float = 0.0) -> Cost:
        """The cost of a call that runs the model ``passes`` times."""
        seconds = costs.MODEL_LOAD_SECONDS + passes * self.seconds_per_pass + extra_seconds
        extra = f" + {extra_seconds:.0f} s explaining and scoring" if extra_seconds else ""
        return Cost(seconds, passes, f"{formula} = {passes} passes x {self.seconds_per_pass:.3g} s + "
                                     f"{costs.MODEL_LOAD_SECONDS:.0f} s loading{extra}; {self.basis}")


def fixed_cost(tool: str) -> Cost:
    """The cost of a call that runs no language model (``costs.NO_MODEL_SECONDS``)."""
    return Cost(costs.NO_MODEL_SECONDS[tool], 0, f"no model forward passes; {tool} takes about "
                                                 f"{costs.NO_MODEL_SECONDS[tool]:.0f} s (documented default)")


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call of the plan."""

    tool: str
    """The MCP tool: inspect, intervene, explain, match, feature_evidence, score_explanation."""
    arguments: dict[str, Any]
    """Its arguments, ready to send."""
    cli: str | None
    """The same as an ``interp-agent`` command line (run in the workspace), or None where the tool has none."""
    cost: Cost
    why: str
    """What it supplies, in a sentence."""


def plain_run_id(ref: RunRef) -> str | None:
    """The run id a tool takes (its folder is ``runs/<run_id>``), or None: a CLI run, or a step folder inside
    a job's run (``<run_id>/1-inspect``, as investigate files them), which the tools name by path instead."""
    return ref.run_id if ref.run_id and "/" not in ref.run_id else None


def report_arg(ref: RunRef) -> str:
    """How a tool names an inspect report: its run id, else its ``report.json`` path."""
    return plain_run_id(ref) or ref.path


def command(tool: str, args: list[tuple[str, Any]], dossier: str | None) -> str:
    """``interp-agent TOOL --flag value ...``: a list value repeats the flag, True is a bare flag."""
    parts = ["interp-agent", tool]
    for flag, value in args + ([("dossier", dossier)] if dossier else []):
        name = "--" + flag.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            parts += [name] if item is True else [name, str(item)]
    return shlex.join(parts)


def _with_dossier(arguments: dict[str, Any], dossier: str | None) -> dict[str, Any]:
    return arguments | ({"dossier": dossier} if dossier else {})


def inspect_call(model: str, pack: str, n_prompts: int, hookpoints: list[str], rates: Rates,
                 dossier: str | None, out: str, why: str) -> Call:
    """inspect on the live model with the criterion's pack, at the features' hookpoints."""
    args: dict[str, Any] = {"model": model, "backend": "hf", "pack": pack, "top_k": 20}
    if hookpoints:
        args["hookpoints"] = hookpoints
    cli = command("inspect", [("model", model), ("backend", "hf"), ("pack", pack), ("hookpoint", hookpoints),
                              ("top_k", 20), ("out", out)], dossier)
    cost = rates.model_cost(costs.inspect_passes("hf", n_prompts), f"{n_prompts} prompts x 1 pass")
    return Call("inspect", _with_dossier(args, dossier), cli, cost, why)


def intervene_call(model: str, pack: str, n_prompts: int, report: RunRef | None, features: list[str],
                   rates: Rates, dossier: str | None, out: str) -> Call:
    """intervene on ``features`` (at most 32) with the default steer mode, strengths and controls."""
    args: dict[str, Any] = {"model": model, "pack": pack, "features": features}
    flags: list[tuple[str, Any]] = [("model", model), ("pack", pack)]
    if report is not None:
        args["report"] = report_arg(report)
        flags.append(("report", report.path))
    cli = command("intervene", flags + [("feature", features), ("out", out)], dossier)
    n_cal = round(n_prompts * (1 - HELD_OUT_FRACTION))
    passes = costs.intervene_passes(len(features), n_cal, n_prompts - n_cal, 4)
    formula = (f"{len(features)} feature(s) x ({n_cal} calibration prompts x 4 strengths + {n_prompts - n_cal} "
               f"held-out x (1 + {costs.N_CONTROLS} controls + 1 other strength)) + {n_prompts} baselines")
    why = f"intervene with controls on {len(features)} feature(s): the causal rung (a 'causes' claim each)"
    return Call("intervene", _with_dossier(args, dossier), cli, rates.model_cost(passes, formula), why)


def explain_call(model: str, source: tuple[str, Any], n_features: int, rates: Rates, dossier: str | None,
                 out: str, why: str) -> Call:
    """explain from a report's top features (``("report", (ref, top_k))``) or a hookpoint's
    (``("hookpoint", (name, feature_ids))``), with the local explainer and the embedding score."""
    kind, value = source
    if kind == "report":
        ref, top_k = value
        args: dict[str, Any] = {"model": model, "report": report_arg(ref), "top_k": top_k}
        flags: list[tuple[str, Any]] = [("model", model), ("report", ref.path), ("top_k", top_k)]
    else:
        hookpoint, ids = value
        args = {"model": model, "hookpoint": hookpoint, "feature_ids": ids}
        flags = [("model", model), ("hookpoint", hookpoint), ("feature", ids)]
    cli = command("explain", flags + [("out", out)], dossier)
    passes = costs.explain_passes(costs.DEFAULT_MAX_CONTEXTS)
    cost = rates.model_cost(passes, f"{costs.DEFAULT_MAX_CONTEXTS} contexts (max_contexts) x 1 pass",
                            extra_seconds=n_features * rates.explain_seconds_per_feature)
    return Call("explain", _with_dossier(args, dossier), cli, cost, why)


def match_call(left: RunRef, right: RunRef, dossier: str | None, out: str, n_claims: int) -> Call:
    """match the two models' inspect reports."""
    args = {"left": report_arg(left), "right": report_arg(right)}
    cli = command("match", [("left", left.path), ("right", right.path), ("out", f"{out}/matches.json")], dossier)
    why = f"match the two models' reports: the transferred rung ('corresponds' claims) for {n_claims} claim(s)"
    return Call("match", _with_dossier(args, dossier), cli, fixed_cost("match"), why)


def feature_evidence_call(run_id: str, feature_id: str, text: str, dossier: str | None) -> Call:
    """feature_evidence of an explain run: the first step of writing a better explanation."""
    why = (f"the explanation {text!r} does not beat a random one: read the feature's evidence, write a sharper "
           f"explanation, then score_explanation(run_id={run_id!r}, feature_id={feature_id!r}, explanation=<yours>)")
    # read-only: nothing to file, so no dossier argument (score_explanation, next, files its score)
    return Call("feature_evidence", {"run_id": run_id, "feature_id": feature_id}, None,
                fixed_cost("feature_evidence"), why)


def score_call(run_id: str, feature_id: str, text: str, dossier: str | None) -> Call:
    """score_explanation of an unscored (imported) explanation on an explain run's held-out contexts."""
    args = {"run_id": run_id, "feature_id": feature_id, "explanation": text, "judge": "none"}
    why = f"score the imported explanation {text!r} on held-out contexts against its nulls: the explained rung"
    return Call("score_explanation", _with_dossier(args, dossier), None, fixed_cost("score_explanation"), why)
