"""The README.md card of a published run folder: what it is, which model, criterion, metrics, provenance, how to load.

The card is built only from the run's own artifacts (report.json, metrics.json,
summary.json, cfg.json, matches.json); every number in it says where it comes from, and a
run built from synthetic data says so in the title.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from interp_agent._version import __version__
from interp_agent.core.bridges.hf_plan import PublishPlan, RepoType, plan_publish
from interp_agent.core.errors import InputFileError

_TOP_FEATURES = 10
_VERDICTS = 20
_FILES_LISTED = 200


def _shallowest(plan: PublishPlan, name: str) -> str | None:
    """Path in the repo of the planned file called ``name`` nearest the top, if any."""
    hits = [f.path_in_repo for f in plan.files if f.path_in_repo.rsplit("/", 1)[-1] == name]
    return min(hits, key=lambda p: (p.count("/"), p)) if hits else None


def _read(folder: Path, rel: str | None) -> dict[str, Any] | None:
    if rel is None:
        return None
    path = folder / rel
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(
            path, f"not valid JSON: {exc.msg}", line=exc.lineno, hint="fix or remove the file before publishing"
        ) from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not isinstance(doc, dict):
        raise InputFileError(path, f"expected a JSON object, found {type(doc).__name__}")
    return doc


def _sae_folders(plan: PublishPlan) -> list[str]:
    """Folders (relative, '' for the top) holding an SAE: cfg.json beside SAE Lens or sparsify weights."""
    names: dict[str, set[str]] = {}
    for f in plan.files:
        parent, _, name = f.path_in_repo.rpartition("/")
        names.setdefault(parent, set()).add(name)
    return sorted(
        (d for d, n in names.items() if "cfg.json" in n and n & {"sae_weights.safetensors", "sae.safetensors"}),
        key=lambda d: (d.count("/") + bool(d), d),
    )


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _synthetic(*docs: dict[str, Any] | None) -> bool:
    for doc in docs:
        if not doc:
            continue
        prov = doc.get("provenance")
        if doc.get("synthetic") is True or (isinstance(prov, dict) and prov.get("synthetic") is True):
            return True
    return False


def _association(feature: dict[str, Any]) -> str:
    assoc = feature.get("association") or {}
    for split in ("held_out", "train"):
        stats = assoc.get(split) or {}
        if stats.get("pearson_r") is not None:
            auroc = f", AUROC {stats['auroc']:.3f}" if stats.get("auroc") is not None else ""
            return f"r {stats['pearson_r']:+.3f}{auroc} ({split.replace('_', '-')}, n {stats.get('n')})"
    return "—"


def _causal(feature: dict[str, Any]) -> str:
    causal = feature.get("causal")
    if not causal or causal.get("mean_effect") is None:
        return "—"
    ci = causal.get("ci95")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and None not in ci else ""
    return f"{causal['mean_effect']:+.3f}{interval} (n {causal.get('n')})"


def _front_matter(sae: bool, synthetic: bool, repo_type: str) -> str:
    meta: dict[str, Any] = {}
    if sae and repo_type == "model":
        meta["library_name"] = "saelens"
    tags = ["interp-agent", "mechanistic-interpretability"]
    if sae:
        tags += ["sparse-autoencoder", "saelens"]
    if synthetic:
        tags.append("synthetic")
    meta["tags"] = tags
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _title(
    model: str | None, hookpoint: str | None, criterion: str | None, sae: bool, report: bool, synthetic: bool
) -> str:
    if sae:
        what = f"Sparse autoencoder for {model or 'stored activations'}" + (f" at {hookpoint}" if hookpoint else "")
    elif report:
        what = f"Features of {model or 'a model'} ranked against a criterion"
    elif criterion:
        what = f"Interventions on {model or 'a model'} for a criterion"
    else:
        what = "interp-agent run"
    return f"# {'[SYNTHETIC] ' if synthetic else ''}{what}"


@dataclass(frozen=True)
class _CardInputs:
    """What the card is built from: the plan, the run's artifacts as read, and what they say about the run."""

    plan: PublishPlan
    rel: dict[str, str | None]
    """Path in the repo of the shallowest report/metrics/summary/matches .json (None when absent)."""
    report: dict[str, Any] | None
    metrics: dict[str, Any] | None
    summary: dict[str, Any] | None
    matches: dict[str, Any] | None
    saes: list[str]
    cfg: dict[str, Any] | None
    """cfg.json of the first SAE folder."""
    synthetic: bool
    sae_info: dict[str, Any]
    sae_model: str | None
    run_model: str | None
    live: dict[str, Any]
    hookpoint: str | None
    criterion: str | None

    @property
    def model(self) -> str | None:
        """The model the card is about: the SAE's when there is an SAE, else the report's or summary's."""
        return self.sae_model if self.saes else self.run_model


def _card_inputs(plan: PublishPlan) -> _CardInputs:
    """Read the run's artifacts named in ``plan`` and work out its model, hookpoint, criterion and synthetic flag."""
    folder = plan.folder
    rel = {name: _shallowest(plan, f"{name}.json") for name in ("report", "metrics", "summary", "matches")}
    report, metrics, summary, matches = (_read(folder, rel[k]) for k in ("report", "metrics", "summary", "matches"))
    saes = _sae_folders(plan)
    cfg = _read(folder, f"{saes[0]}/cfg.json" if saes and saes[0] else "cfg.json") if saes else None
    sae_info = (metrics or {}).get("sae") or {}
    cfg_meta = (cfg or {}).get("metadata") or {}
    live = (report or {}).get("live") or {}
    return _CardInputs(
        plan=plan, rel=rel, report=report, metrics=metrics, summary=summary, matches=matches, saes=saes, cfg=cfg,
        synthetic=_synthetic(report, metrics, summary, matches),
        sae_info=sae_info,
        sae_model=(sae_info.get("model") or cfg_meta.get("model_name")) if saes else None,
        run_model=(report or {}).get("model") or (summary or {}).get("model"),
        live=live,
        hookpoint=(
            sae_info.get("hookpoint") or cfg_meta.get("hook_name") or ", ".join(live.get("hookpoints") or []) or None
        ),
        criterion=(report or {}).get("criterion") or (summary or {}).get("criterion"),
    )


def _held_out_lines(held: dict[str, Any], rel: dict[str, str | None]) -> list[str]:
    """The table of SAE reconstruction metrics on held-out rows (empty without them)."""
    if not held:
        return []
    lines = [
        f"SAE reconstruction on {held.get('n_rows', '?')} held-out rows the SAE was not trained on "
        f"(`{rel['metrics']}`):",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, label in (
        ("fvu", "fraction of variance unexplained (FVU)"),
        ("mse", "MSE per element"),
        ("l0", "L0 (active latents per row)"),
        ("dead_fraction", "dead latents"),
        ("dense_fraction", "dense latents (active on > 10% of rows)"),
    ):
        lines.append(f"| {label} | {_cell(held.get(key))} |")
    lines.append("")
    return lines


def _splice_lines(splice: dict[str, Any]) -> list[str]:
    """The one-row table of the SAE spliced into the model (empty without a clean CE loss)."""
    if splice.get("ce_loss_clean") is None:
        return []
    return [
        f"Spliced into the model on {splice.get('n_prompts', '?')} held-out prompts:",
        "",
        "| next-token CE clean | spliced | mean-ablated | loss recovered | KL(clean ‖ spliced) |",
        "|---|---|---|---|---|",
        f"| {_cell(splice.get('ce_loss_clean'))} | {_cell(splice.get('ce_loss_spliced'))} | "
        f"{_cell(splice.get('ce_loss_mean_ablated'))} | {_cell(splice.get('loss_recovered'))} | "
        f"{_cell(splice.get('kl_clean_to_spliced'))} |",
        "",
    ]


def _ranked_lines(features: list[dict[str, Any]], rel: dict[str, str | None], synthetic: bool) -> list[str]:
    """The table of the report's top ranked features with their evidence (empty without features)."""
    if not features:
        return []
    kinds = (
        "all synthetic: generated data, not measurements"
        if synthetic
        else "association is correlational (held-out split when it has one), the causal effect interventional"
    )
    lines = [
        f"Top {min(len(features), _TOP_FEATURES)} of {len(features)} ranked features (`{rel['report']}`); {kinds}:",
        "",
        "| rank | feature | label | importance | association | causal effect [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for f in features[:_TOP_FEATURES]:
        lines.append(
            f"| {f.get('rank')} | `{_cell(f.get('feature_id'))}` | {_cell(f.get('label'))} | "
            f"{_cell(f.get('importance'))} | {_association(f)} | {_causal(f)} |"
        )
    lines.append("")
    return lines


def _verdict_lines(rows: list[dict[str, Any]], rel: dict[str, str | None]) -> list[str]:
    """The table of intervention verdicts from the summary (empty without rows)."""
    if not rows:
        return []
    lines = [
        f"Intervention verdicts (`{rel['summary']}`; effects on held-out prompts with 95% intervals, against "
        "generated controls):",
        "",
        "| feature | verdict | effect [95% CI] | control effect | KL on the other class |",
        "|---|---|---|---|---|",
    ]
    for f in rows[:_VERDICTS]:
        eff = f.get("effect") or {}
        ci = eff.get("ci95")
        interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and None not in ci else ""
        mean = eff.get("mean")
        lines.append(
            f"| `{_cell(f.get('feature_id'))}` | {_cell(f.get('verdict'))} | "
            f"{'—' if mean is None else f'{mean:+.4f}'}{interval} | "
            f"{_cell((f.get('control_effect') or {}).get('mean'))} | "
            f"{_cell((f.get('side_effect') or {}).get('kl_on_other_class'))} |"
        )
    lines.append("")
    return lines


def _metrics_lines(run: _CardInputs) -> list[str]:
    """The Metrics section: SAE reconstruction, splice, ranked features and verdicts, whichever the run has."""
    body = [
        *_held_out_lines((run.metrics or {}).get("held_out") or {}, run.rel),
        *_splice_lines((run.metrics or {}).get("splice") or {}),
        *_ranked_lines((run.report or {}).get("features") or [], run.rel, run.synthetic),
        *_verdict_lines((run.summary or {}).get("features") or [], run.rel),
    ]
    if not body:
        body = ["No metrics file (metrics.json, report.json, summary.json) in this run.", ""]
    return ["## Metrics", "", *body]


def _inputs(docs: dict[str, dict[str, Any] | None]) -> list[str]:
    lines = []
    for rel, doc in docs.items():
        if not doc:
            continue
        raw = doc.get("provenance")
        prov: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for item in prov.get("inputs") or []:
            name = Path(str(item.get("path", ""))).name
            lines.append(f"- `{rel}`: {item.get('role')} `{name}` sha256 `{item.get('sha256')}`")
        source = ((doc.get("data") or {}).get("source") or {}) if isinstance(doc.get("data"), dict) else {}
        for p, digest in zip(source.get("paths") or [], source.get("sha256") or [], strict=False):
            lines.append(f"- `{rel}`: {source.get('kind', 'input')} `{Path(str(p)).name}` sha256 `{digest}`")
    return lines


def _has_lens_weights(plan: PublishPlan, folder: str) -> bool:
    """Whether the SAE in ``folder`` ('' for the top) is in SAE Lens layout (``sae_weights.safetensors``)."""
    return any(f.path_in_repo == (f"{folder}/" if folder else "") + "sae_weights.safetensors" for f in plan.files)


def _header_lines(run: _CardInputs, repo_type: str) -> list[str]:
    """YAML front matter, the title, the synthetic banner when it applies, and where the card comes from."""
    lines = [
        _front_matter(bool(run.saes), run.synthetic, repo_type),
        _title(run.model, run.hookpoint, run.criterion, bool(run.saes), run.report is not None, run.synthetic),
        "",
    ]
    if run.synthetic:
        lines += [
            "> **Synthetic.** These artifacts were built from generated data (interp-agent's toy backend or "
            "records marked synthetic): no model was measured, and every number below is synthetic.",
            "",
        ]
    return [*lines, f"Published with interp-agent {__version__} from the run folder `{run.plan.folder.name}`.", ""]


def _sae_line(run: _CardInputs, folder: str) -> str:
    """One bullet for the SAE in ``folder``: where, which layout, and the first SAE's sizes from its cfg.json."""
    where = f"`{folder}/`" if folder else "the top folder"
    layout = (
        "SAE Lens layout (`cfg.json`, `sae_weights.safetensors`)"
        if _has_lens_weights(run.plan, folder)
        else "sparsify layout"
    )
    cfg = run.cfg
    return f"- a sparse autoencoder in {where}, {layout}" + (
        f": {run.sae_info.get('architecture') or (cfg or {}).get('architecture')}, d_in {(cfg or {}).get('d_in')}, "
        f"d_sae {(cfg or {}).get('d_sae')}" + (f", k {(cfg or {}).get('k')}" if (cfg or {}).get("k") else "")
        if cfg and folder == run.saes[0]
        else ""
    )


def _what_lines(run: _CardInputs) -> list[str]:
    """The "What this is" section: the SAEs, report, summary, matches and record files the run holds."""
    lines = ["## What this is", "", *(_sae_line(run, d) for d in run.saes)]
    rel, report, summary = run.rel, run.report, run.summary
    if report:
        lines.append(
            f"- `{rel['report']}`: {len(report.get('features') or [])} features ranked against the criterion "
            f"({report.get('backend')} backend), with held-out and, where given, causal evidence"
        )
    if summary:
        lines.append(
            f"- `{rel['summary']}`: interventions on {len(summary.get('features') or [])} features with controls"
        )
    if run.matches:
        lines.append(f"- `{rel['matches']}`: features matched one to one across two reports")
    records = [
        f.path_in_repo for f in run.plan.files if f.path_in_repo.endswith(("records.jsonl", "interventions.jsonl"))
    ]
    if records:
        lines.append("- records: " + ", ".join(f"`{r}`" for r in records[:8]) + (" …" if len(records) > 8 else ""))
    return [*lines, ""]


def _model_lines(run: _CardInputs) -> list[str]:
    """The Model section: what the SAE was trained on, the report's model, the hookpoint and the model's sizes."""
    lines = ["## Model", ""]
    if run.saes:
        lines.append(
            f"- SAE trained on: `{run.sae_model}`"
            if run.sae_model
            else "- SAE trained on: stored activations (no model recorded)"
        )
    if run.run_model and (not run.saes or run.run_model != run.sae_model):
        lines.append(f"- model of the report and interventions: `{run.run_model}`")
    lines.append(f"- hookpoint: `{run.hookpoint or 'not recorded'}`")
    if run.live.get("model_info"):
        info = run.live["model_info"]
        lines.append(f"- {info.get('n_layers')} layers, d_model {info.get('d_model')}, source {info.get('source')}")
    return lines


def _criterion_lines(criterion: str | None) -> list[str]:
    """The Criterion section: the criterion on one line, or a note that the run has none."""
    return [
        "",
        "## Criterion",
        "",
        f"> {' '.join(str(criterion).split())}" if criterion else "No criterion (an unsupervised SAE).",
        "",
    ]


def _evidence_lines(run: _CardInputs) -> list[str]:
    """Provenance bullets of a measured run: which numbers are correlational, interventional or SAE metrics."""
    rel, report, summary = run.rel, run.report, run.summary
    lines = []
    if report:
        lines.append(
            f"- correlational: association, specificity and stability in {rel['report']} (ranked on a "
            "training split, reported on a held-out split)"
        )
    causal_in = (
        [f"causal effects in {rel['report']}"]
        if report and any(f.get("causal") for f in report.get("features") or [])
        else []
    )
    causal_in += [f"the verdicts in {rel['summary']}"] if summary else []
    if causal_in:
        lines.append(
            f"- interventional: {' and '.join(causal_in)} (effects of interventions on a behaviour score, "
            "with controls where the records have them)"
        )
    if run.metrics:
        lines.append("- SAE metrics: measured on held-out rows; splice metrics on held-out prompts")
    return lines


def _provenance_lines(run: _CardInputs) -> list[str]:
    """The Provenance section: tool versions, the kind of evidence behind the numbers, and the hashed inputs."""
    docs = (run.report, run.metrics, run.summary, run.matches)
    versions = sorted(
        {
            str(d["provenance"].get("tool_version"))
            for d in docs
            if d and isinstance(d.get("provenance"), dict) and d["provenance"].get("tool_version")
        }
    )
    lines = [
        "## Provenance",
        "",
        f"- made with interp-agent {', '.join(versions) or 'unknown version'}; published with {__version__}",
    ]
    if run.synthetic:
        lines.append("- **synthetic**: every number comes from generated data, not from a model")
    else:
        lines += _evidence_lines(run)
    named = zip((run.rel[k] for k in ("report", "metrics", "summary", "matches")), docs, strict=True)
    inputs = _inputs({r: d for r, d in named if r})
    lines += (
        ["- inputs (file name and SHA-256):", *["  " + line for line in inputs]]
        if inputs
        else ["- inputs: none recorded"]
    )
    return lines


def _files_lines(plan: PublishPlan) -> list[str]:
    """The Files section: a table of the planned files and their sizes, cut at ``_FILES_LISTED``."""
    lines = ["", "## Files", "", "| file | bytes |", "|---|---|"]
    lines += [f"| `{_cell(f.path_in_repo)}` | {f.size:,} |" for f in plan.files[:_FILES_LISTED]]
    if len(plan.files) > _FILES_LISTED:
        lines.append(f"| … {len(plan.files) - _FILES_LISTED} more | |")
    return lines


def _load_lines(run: _CardInputs, repo_id: str, repo_type: str) -> list[str]:
    """The "How to load" section: a Python snippet downloading the repo, loading the SAE and reading the report."""
    lines = [
        "",
        "## How to load",
        "",
        "```python",
        "import json, os",
        "from huggingface_hub import snapshot_download",
        "",
        f'path = snapshot_download("{repo_id}"' + (', repo_type="dataset"' if repo_type == "dataset" else "") + ")",
    ]
    lens = [d for d in run.saes if _has_lens_weights(run.plan, d)]
    if lens:
        lines += [
            "",
            "from sae_lens import SAE",
            "",
            "sae = SAE.load_from_disk(" + (f'os.path.join(path, "{lens[0]}")' if lens[0] else "path") + ")",
        ]
    if run.report:
        lines += [
            "",
            f'report = json.load(open(os.path.join(path, "{run.rel["report"]}")))',
            'print([f["feature_id"] for f in report["features"][:5]])',
        ]
    return [*lines, "```", ""]


def render_card(
    path: str | Path, repo_id: str, *, repo_type: RepoType = "model", plan: PublishPlan | None = None
) -> str:
    """The README.md (model or dataset card) for publishing the run folder ``path`` as ``repo_id``.

    Raises:
        ValidationError: see ``plan_publish`` (when no plan is given).
        InputFileError: an artifact the card reads is not valid JSON (names the file).
    """
    plan = plan if plan is not None else plan_publish(path, repo_id, repo_type)
    run = _card_inputs(plan)
    lines = [
        *_header_lines(run, repo_type),
        *_what_lines(run),
        *_model_lines(run),
        *_criterion_lines(run.criterion),
        *_metrics_lines(run),
        *_provenance_lines(run),
        *_files_lines(plan),
        *_load_lines(run, repo_id, repo_type),
    ]
    return "\n".join(lines)


__all__ = ["render_card"]
