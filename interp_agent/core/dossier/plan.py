"""The evidence plan: for each claim, the rungs it lacks and the next calls that would supply them.

A rung a claim lacks is one of its targets not yet reached: its own kind's rungs
(``KIND_RUNGS``, imported aside: a floor, never a goal) and, for the feature's primary claim
(its "tracks" claim, else its first "causes" or "means" claim), the whole ladder up to
transferred, so the plan says what the feature as a whole still needs. Rungs a claim shares
with its feature count as reached when any claim about the feature reached them (an intervene
verdict on "F causes C" gives "F tracks C" its causal rung); an explanation's score counts only
for that explanation.

Each lacking rung maps to a call (inspect, intervene, explain, score_explanation,
feature_evidence, match), grouped so one call covers every claim it can (one intervene with
``features=[...]``), with the dossier's name among its arguments so the result is filed back.
A need the workspace cannot meet says so (:class:`Unmet`) instead of inventing a call: a
second model for transferred, prompts the dossier does not name, a live model for a synthetic
one. A rung already contradicted is not retested by repeating the same call (repeating a test
until it passes is not evidence): the plan says what a new test would need. Calls come cheapest
first, each with its estimated seconds and how they were estimated (``calls.Cost``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.dossier import calls as C
from interp_agent.core.dossier.grading import grade_claim
from interp_agent.core.dossier.model import KIND_RUNGS, RUNGS, Claim, Dossier, Evidence, Rung, RunRecord, RunRef

FEATURE_LADDER: tuple[Rung, ...] = ("correlational", "held_out", "causal", "explained", "transferred")
"""What the primary claim of a feature aims at: every rung above imported."""
LIVE_BACKENDS = ("hf", "saelens")
KIND_ORDER = ("tracks", "causes", "means", "corresponds")


@dataclass(frozen=True, slots=True)
class Unmet:
    """A need no call in this workspace can meet yet, and what would meet it."""

    rung: Rung
    claim_ids: tuple[str, ...]
    features: tuple[str, ...]
    needs: str
    """What is missing, and what would supply it."""

    def to_dict(self) -> dict[str, Any]:
        """``{rung, claims, features, needs}``."""
        return {"rung": self.rung, "claims": list(self.claim_ids), "features": list(self.features),
                "needs": self.needs}


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One call of the plan, and the claims and rungs it serves."""

    call: C.Call
    rungs: tuple[Rung, ...]
    """The rungs it supplies."""
    claim_ids: tuple[str, ...]
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{tool, arguments, cli, why, supplies, claims, features, estimated_seconds, forward_passes,
        estimate_basis}``."""
        c = self.call
        return {"tool": c.tool, "arguments": c.arguments, "cli": c.cli, "why": c.why, "supplies": list(self.rungs),
                "claims": list(self.claim_ids), "features": list(self.features),
                "estimated_seconds": round(c.cost.seconds, 1), "forward_passes": c.cost.forward_passes,
                "estimate_basis": c.cost.basis}


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """Where one claim stands and what would move it up."""

    claim_id: str
    kind: str
    model: str
    feature_id: str
    text: str
    grade: Rung | None
    reason: str
    lacks: tuple[Rung, ...]
    steps: tuple[int, ...]
    """Indexes into the plan's ``steps`` that serve this claim."""
    unmet: tuple[str, ...]
    """What the rungs no step serves need, one line each (``rung: needs``)."""

    def to_dict(self) -> dict[str, Any]:
        """The claim's plan as JSON."""
        return {"claim_id": self.claim_id, "kind": self.kind, "model": self.model, "feature_id": self.feature_id,
                "text": self.text, "grade": self.grade, "reason": self.reason, "lacks": list(self.lacks),
                "steps": list(self.steps), "unmet": list(self.unmet)}


@dataclass(frozen=True, slots=True)
class EvidencePlan:
    """The plan of a dossier: the steps (cheapest first), per claim what it lacks, and what no step can supply."""

    dossier: str | None
    steps: tuple[PlanStep, ...]
    claims: tuple[ClaimPlan, ...]
    unmet: tuple[Unmet, ...]
    seconds_per_pass: float
    cost_basis: str
    """Where ``seconds_per_pass`` comes from: measured from the dossier's runs, or the documented default."""

    @property
    def total_seconds(self) -> float:
        """Estimated seconds of every step, one after the other."""
        return sum(p.call.cost.seconds for p in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON (what plan_evidence returns): ``steps``, ``missing`` (per claim: grade, reason, the
        rungs it lacks, the steps serving it and what is unmet) and ``unmet`` (grouped), with the cost basis."""
        return {"dossier": self.dossier, "steps": [p.to_dict() for p in self.steps],
                "missing": [c.to_dict() for c in self.claims if c.lacks],
                "unmet": [u.to_dict() for u in self.unmet], "total_seconds": round(self.total_seconds, 1),
                "seconds_per_pass": self.seconds_per_pass, "cost_basis": self.cost_basis}


@dataclass(frozen=True, slots=True)
class _Need:
    """One (claim, rung) the plan must serve."""

    claim: Claim
    rung: Rung
    model: str
    feature_id: str


class _Facts:
    """What the dossier says about the workspace: live models, reports, explain runs, the criterion's pack."""

    def __init__(self, dossier: Dossier) -> None:
        self.dossier = dossier
        self.inspects: dict[str, RunRecord] = {}
        for r in dossier.runs:
            if r.kind == "inspect":
                self.inspects[r.models[0]] = r  # the latest inspect run of each model
        self.live = {r.models[0] for r in dossier.runs if (r.kind == "inspect" and r.backend in LIVE_BACKENDS)
                     or r.kind in ("intervene", "explain")}
        self.pack, self.pack_prompts = _pack_of(dossier.criterion)

    def backend(self, model: str) -> str | None:
        """The backend of the model's latest inspect run."""
        record = self.inspects.get(model)
        return None if record is None else record.backend

    def evidence(self, model: str, feature_id: str, rung: Rung, kinds: Iterable[str] = KIND_ORDER) -> list[Evidence]:
        """Evidence at ``rung`` on the claims of ``kinds`` about the feature."""
        kinds = tuple(kinds)
        return [ev for c in self.dossier.claims_about(model, feature_id) if c.kind in kinds
                for ev in c.evidence if ev.rung == rung]

    def source_report(self, model: str, feature_id: str) -> tuple[RunRef, int | None] | None:
        """The latest inspect report the feature was filed from, and its rank there."""
        filed = self.evidence(model, feature_id, "correlational", ("tracks",)) + \
            self.evidence(model, feature_id, "imported", ("tracks",))
        evs = [ev for ev in filed if ev.tool == "inspect" and "rank" in ev.numbers]
        if not evs:
            return None
        ev = max(evs, key=lambda e: e.filed_at)
        rank = ev.numbers.get("rank")
        return ev.run, rank if isinstance(rank, int) else None

    def explain_runs(self, model: str, feature_id: str) -> list[RunRef]:
        """Explain runs that harvested the feature (cited by its "means" evidence), latest first."""
        evs = sorted(self.evidence(model, feature_id, "explained", ("means",)), key=lambda e: e.filed_at, reverse=True)
        return list(dict.fromkeys(ev.run for ev in evs))


def _pack_of(criterion: str | None) -> tuple[str | None, int]:
    """The built-in pack whose criterion is the dossier's, and its prompt count; (None, 0) when none is."""
    if criterion is None:
        return None, 0
    from interp_agent.core.criteria.packs import list_packs, load_pack

    wanted = " ".join(criterion.casefold().split())
    for name in list_packs():
        pack = load_pack(name)
        if " ".join(pack.criterion.casefold().split()) == wanted:
            return name, len(pack.prompts)
    return None, 0


def _reached(dossier: Dossier, claim: Claim, model: str, feature_id: str, rung: Rung) -> bool:
    if grade_claim(claim).rungs[rung] == "reached":
        return True
    if claim.kind == "means" and rung == "explained":
        return False  # a score of another explanation says nothing about this one
    return any(grade_claim(c).rungs[rung] == "reached" for c in dossier.claims_about(model, feature_id))


def _primary(dossier: Dossier) -> dict[tuple[str, str], str]:
    """The primary claim of each feature: its tracks claim, else its first causes or means claim.

    A feature that only a correspondence names (a match pairs whole reports) has none: the plan
    does not grow the dossier beyond the features filed for the criterion.
    """
    out: dict[tuple[str, str], str] = {}
    for kind in KIND_ORDER[:3]:
        for c in dossier.claims:
            if c.kind == kind:
                out.setdefault((c.model, c.feature_id), c.id)
    return out


def _needs(dossier: Dossier) -> list[_Need]:
    primary = _primary(dossier)
    needs: list[_Need] = []
    for claim in dossier.claims:
        targets: list[Rung] = [r for r in KIND_RUNGS[claim.kind] if r != "imported"]
        if primary.get((claim.model, claim.feature_id)) == claim.id:
            targets = list(dict.fromkeys(targets + list(FEATURE_LADDER)))
        for rung in sorted(targets, key=RUNGS.index):
            if not _reached(dossier, claim, claim.model, claim.feature_id, rung):
                needs.append(_Need(claim, rung, claim.model, claim.feature_id))
    return needs


def _hookpoint(feature_id: str) -> str | None:
    from interp_agent.core.ids import match_feature_id

    parsed = match_feature_id(feature_id)
    point = None if parsed is None else parsed.hookpoint
    return None if point is None else point.name


def _not_live(facts: _Facts, model: str, what: str) -> str:
    backend = facts.backend(model)
    if backend == "toy":
        return (f"{model!r} is a synthetic toy model (backend toy): there is no live model to {what}; its planted "
                "evidence is all the toy backend gives")
    return (f"no live-model run of {model!r} is filed in this dossier (its evidence was read from "
            f"{backend or 'files'}): {what} needs the model itself; inspect it with backend 'hf' (or 'saelens') "
            "into this dossier first")


def _no_prompts(facts: _Facts, tool: str) -> str:
    return (f"{tool} needs the criterion's scored prompts: no built-in pack has the criterion "
            f"{facts.dossier.criterion!r}; call {tool} with dataset=<the scored prompts JSONL> (or positives and "
            "negatives)")


def _retest(evs: list[Evidence], rung: Rung) -> str:
    ev = max(evs, key=lambda e: e.filed_at)
    where = ev.run.run_id or ev.run.folder
    if rung in ("correlational", "held_out"):
        need = ev.numbers.get("prompts_needed")
        more = f" (a test at the training effect size needs about {need} held-out prompts)" if need else ""
        return (f"{rung} was tested and {'contradicted' if ev.stance == 'contradicts' else 'came out weak'} "
                f"({ev.summary}; run {where}){more}: a new test needs new prompts, e.g. a larger dataset of "
                "matched positives and negatives; rerunning the same prompts gives the same answer")
    return (f"{rung} was tested and {'contradicted' if ev.stance == 'contradicts' else 'came out weak'} "
            f"({ev.summary}; run {where}): a new test needs a new design chosen on purpose (another mode, scorer "
            "or more held-out prompts); repeating the same test until it passes is not evidence")


# -- routing each need to a call, or to what it lacks ----------------------------------------------

Route = tuple[tuple[Any, ...], str] | str
"""A need's call key and the call's kind (needs of one key share one call), or why no call can serve it."""


def _route(need: _Need, facts: _Facts) -> Route:
    if need.rung in ("correlational", "held_out"):
        return _route_association(need, facts)
    if need.rung == "causal":
        return _route_causal(need, facts)
    if need.rung == "explained":
        return _route_explained(need, facts)
    return _route_transfer(need, facts)


def _route_association(need: _Need, facts: _Facts) -> Route:
    tested = facts.evidence(need.model, need.feature_id, need.rung, ("tracks",))
    if tested:
        return _retest(tested, need.rung)
    if need.rung == "held_out" and facts.evidence(need.model, need.feature_id, "correlational", ("tracks",)):
        return ("held-out statistics: the inspect run that measured its training association had too few held-out "
                "prompts for any (3 or fewer rows); inspect again with more prompts (a larger dataset, or a larger "
                "held_out_fraction)")
    if need.model not in facts.live:
        return _not_live(facts, need.model, "measure its association with the criterion")
    if facts.pack is None:
        return _no_prompts(facts, "inspect")
    return ("inspect", need.model), "inspect"


def _route_causal(need: _Need, facts: _Facts) -> Route:
    from interp_agent.core.ids import match_feature_id

    tested = facts.evidence(need.model, need.feature_id, "causal")
    if tested:
        return _retest(tested, "causal")
    if need.model not in facts.live:
        return _not_live(facts, need.model, "intervene on")
    parsed = match_feature_id(need.feature_id)
    source = facts.source_report(need.model, need.feature_id)
    if parsed is not None and parsed.kind == "sae":
        return (f"{need.feature_id} is an SAE latent: call intervene with features=[{need.feature_id!r}] and "
                "sae=<the SAE folder it came from> (the dossier does not record the folder)")
    if parsed is None or parsed.kind == "dictionary" or (parsed.kind == "direction" and source is None):
        return (f"{need.feature_id} cannot be intervened on from what the dossier records: intervene takes "
                "residual dims (L{layer}:D{i}), MLP neurons (L{layer}:N{i}), SAE latents (with sae) and the "
                "directions an hf inspect run saved (with its report)")
    if facts.pack is None:
        return _no_prompts(facts, "intervene")
    return ("intervene", need.model, None if source is None else source[0]), "intervene"


def _route_explained(need: _Need, facts: _Facts) -> Route:
    means = [c for c in facts.dossier.claims_about(need.model, need.feature_id) if c.kind == "means"
             and c.model == need.model]
    claim = need.claim if need.claim.kind == "means" else (means[0] if means else None)
    if claim is None:
        return _route_explain_run(need, facts)
    scored = [ev for ev in claim.evidence if ev.rung == "explained"]
    against = [ev for ev in scored if ev.stance == "contradicts"]
    if against:
        run = max(against, key=lambda e: e.filed_at).run
        run_id = C.plain_run_id(run)
        if run_id is None:
            return (f"the explanation {claim.explanation!r} does not beat a random one (run {run.folder}): write a "
                    "sharper one and score it (interp-agent explain --explanations FILE, or score_explanation on "
                    "an explain job's run)")
        return ("feature_evidence", run_id, need.feature_id, claim.explanation), "feature_evidence"
    if scored:
        return (f"the explanation {claim.explanation!r} was scored without a random-explanation null (no other "
                "explanation in its run): explain the feature together with others (top_k or feature_ids of "
                "several features) so the null can be drawn")
    runs = [run_id for r in facts.explain_runs(need.model, need.feature_id) if (run_id := C.plain_run_id(r))]
    if runs:
        return ("score_explanation", runs[0], need.feature_id, claim.explanation), "score_explanation"
    return _route_explain_run(need, facts)


def _route_explain_run(need: _Need, facts: _Facts) -> Route:
    from interp_agent.core.ids import match_feature_id

    if need.model not in facts.live:
        return _not_live(facts, need.model, "explain")
    parsed = match_feature_id(need.feature_id)
    if parsed is not None and parsed.kind == "sae":
        return (f"{need.feature_id} is an SAE latent: call explain with sae=<the SAE folder it came from> and "
                f"feature_ids=[{need.feature_id!r}] (the dossier does not record the folder)")
    source = facts.source_report(need.model, need.feature_id)
    if source is not None and source[1] is not None:
        return ("explain", need.model, "report", source[0]), "explain"
    hookpoint = _hookpoint(need.feature_id)
    if hookpoint is not None and parsed is not None and parsed.kind in ("dim", "neuron"):
        return ("explain", need.model, "hookpoint", hookpoint), "explain"
    return (f"{need.feature_id} has no inspect report or hookpoint in the dossier to explain it from: call "
            "explain with report=<its inspect run> or hookpoint and feature_ids")


def _route_transfer(need: _Need, facts: _Facts) -> Route:
    if need.model not in facts.inspects:
        return (f"no inspect run of {need.model!r} is filed in this dossier: match compares two inspect reports; "
                "inspect it into this dossier first")
    others = [m for m in facts.inspects if m != need.model]
    if not others:
        return (f"a second model: this dossier has inspect runs of {need.model!r} only; inspect another model on the "
                "same criterion into this dossier (dossier=<this name>), then match the two reports")
    other = others[0]
    pair = sorted([need.model, other])
    left, right = facts.inspects[pair[0]].run, facts.inspects[pair[1]].run
    done = [r for r in facts.dossier.runs if r.kind == "match" and sorted(r.models) == pair]
    if done:
        where = done[-1].run.run_id or done[-1].run.folder
        return (f"match run {where} of {pair[0]} and {pair[1]} found no counterpart for {need.feature_id} above "
                f"its min_similarity {done[-1].numbers.get('min_similarity')}: no transfer to claim")
    return ("match", left, right), "match"


# -- building the calls ----------------------------------------------------------------------------


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _build(kind: str, key: tuple[Any, ...], needs: list[_Need], facts: _Facts, rates: C.Rates,
           name: str | None, out: str) -> list[tuple[C.Call, list[_Need]]]:
    features = _unique(n.feature_id for n in needs)
    model = needs[0].model
    if kind == "inspect":
        assert facts.pack is not None  # routed here only with a pack
        hookpoints = sorted({h for h in map(_hookpoint, features) if h is not None})
        why = (f"inspect {model} on the {facts.pack!r} pack: correlational and held-out evidence for "
               f"{len(features)} feature(s), filed for those that rank in its top 20")
        return [(C.inspect_call(model, facts.pack, facts.pack_prompts, hookpoints, rates, name, out, why), needs)]
    if kind == "intervene":
        assert facts.pack is not None
        out_calls = []
        for i in range(0, len(features), C.MAX_INTERVENE_FEATURES):
            chunk = features[i:i + C.MAX_INTERVENE_FEATURES]
            call = C.intervene_call(model, facts.pack, facts.pack_prompts, key[2], chunk, rates, name,
                                    f"{out}-{i // C.MAX_INTERVENE_FEATURES + 1}" if i else out)
            out_calls.append((call, [n for n in needs if n.feature_id in chunk]))
        return out_calls
    if kind == "explain":
        return [(_explain(key, needs, features, facts, rates, name, out), needs)]
    if kind == "score_explanation":
        return [(C.score_call(key[1], key[2], key[3], name), needs)]
    if kind == "feature_evidence":
        return [(C.feature_evidence_call(key[1], key[2], key[3], name), needs)]
    left, right = key[1], key[2]
    return [(C.match_call(left, right, name, out, len(_unique(n.claim.id for n in needs))), needs)]


def _explain(key: tuple[Any, ...], needs: list[_Need], features: list[str], facts: _Facts, rates: C.Rates,
             name: str | None, out: str) -> C.Call:
    model = needs[0].model
    if key[2] == "report":
        ranks = [r for f in features if (src := facts.source_report(model, f)) is not None
                 for r in [src[1]] if r is not None]
        top_k = max(1, min(200, max(ranks, default=10)))
        why = (f"explain the top {top_k} features of the report (harvest, local explainer, embedding score "
               f"against its nulls): the explained rung for {', '.join(features[:5])}"
               + (" and more" if len(features) > 5 else "") + "; explain takes the top features that share the "
               "best one's hookpoint and kind")
        return C.explain_call(model, ("report", (key[3], top_k)), top_k, rates, name, out, why)
    why = f"explain {len(features)} feature(s) at {key[3]}: the explained rung"
    return C.explain_call(model, ("hookpoint", (key[3], features)), len(features), rates, name, out, why)


def _plan(dossier: Dossier, name: str | None) -> EvidencePlan:
    facts, rates = _Facts(dossier), C.Rates.of(dossier)
    groups: dict[tuple[Any, ...], tuple[str, list[_Need]]] = {}
    unmet: dict[tuple[Rung, str], list[_Need]] = {}
    needs_all = _needs(dossier)
    lacks: dict[str, list[Rung]] = {}
    for need in needs_all:
        lacks.setdefault(need.claim.id, []).append(need.rung)
    for need in needs_all:
        route = _route(need, facts)
        if isinstance(route, str):
            unmet.setdefault((need.rung, route), []).append(need)
        else:
            key, kind = route
            groups.setdefault(key, (kind, []))[1].append(need)
    built: list[tuple[C.Call, list[_Need]]] = []
    counts: dict[str, int] = {}
    for key, (kind, needs) in groups.items():
        counts[kind] = counts.get(kind, 0) + 1
        built += _build(kind, key, needs, facts, rates, name, f"{name or 'plan'}-{kind}-{counts[kind]}")
    built.sort(key=lambda item: item[0].cost.seconds)  # cheapest first; stable, so ties keep ladder order
    planned = tuple(PlanStep(call, tuple(sorted({n.rung for n in needs}, key=RUNGS.index)),
                             tuple(_unique(n.claim.id for n in needs)), tuple(_unique(n.feature_id for n in needs)))
                    for call, needs in built)
    blocks = tuple(Unmet(rung, tuple(_unique(n.claim.id for n in needs)),
                         tuple(_unique(n.feature_id for n in needs)), text) for (rung, text), needs in unmet.items())
    return EvidencePlan(name, planned, _claim_plans(dossier, lacks, planned, blocks), blocks,
                        rates.seconds_per_pass, rates.basis)


def _claim_plans(dossier: Dossier, lacks: dict[str, list[Rung]], planned: tuple[PlanStep, ...],
                 blocks: tuple[Unmet, ...]) -> tuple[ClaimPlan, ...]:
    out = []
    for claim in dossier.claims:
        grade = grade_claim(claim)
        calls = tuple(i for i, p in enumerate(planned) if claim.id in p.claim_ids)
        out.append(ClaimPlan(claim.id, claim.kind, claim.model, claim.feature_id, claim.text, grade.rung,
                             grade.reason, tuple(lacks.get(claim.id, ())), calls,
                             tuple(f"{b.rung}: {b.needs}" for b in blocks if claim.id in b.claim_ids)))
    return tuple(out)


def plan_evidence(dossier: Dossier) -> EvidencePlan:
    """What each claim of ``dossier`` lacks, and the calls that would supply it, cheapest first.

    Every call carries ``dossier: <its name>`` so that what it measures is filed back.
    """
    return _plan(dossier, dossier.name)


def plan_from_report(report_path: str | Path, *, workspace: str | Path | None = None, run_id: str | None = None,
                     top: int = 10, dossier: str | None = None) -> EvidencePlan:
    """The plan for an inspect report that is in no dossier yet: its top ``top`` features as claims.

    Args:
        report_path: ``report.json``, or the folder of an inspect run.
        workspace: paths in the calls are relative to it (default: absolute paths).
        run_id: the report's run id; default: the folder's name when it sits in a ``runs/`` folder.
        dossier: a dossier name to put in every call's arguments (the one the results should be filed into).

    Raises:
        InputFileError: the report is missing or malformed.
    """
    from interp_agent.core.dossier.filing import apply_findings
    from interp_agent.core.dossier.findings import read_run, run_file
    from interp_agent.core.dossier.model import now_utc

    path = run_file("inspect", report_path).absolute()
    if run_id is None and path.parent.parent.name == "runs":
        run_id = path.parent.name
    root = None if workspace is None else Path(workspace).absolute()

    def folder_as(folder: Path) -> str:
        if root is not None and folder.is_relative_to(root):
            return folder.relative_to(root).as_posix()
        return folder.as_posix()

    found = read_run("inspect", path, folder_as=folder_as, run_id=run_id, top=top, filed_at=now_utc())
    scratch, _ = apply_findings(Dossier.empty(dossier or "report"), found)
    return _plan(scratch, dossier)
