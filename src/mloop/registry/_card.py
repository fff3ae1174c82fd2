"""Model lineage and the model card: where a version came from, as data, Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mloop.backends import backends
from mloop.config import Settings
from mloop.errors import NotFoundError
from mloop.registry._load import resolve_version
from mloop.registry._refs import parse_ref
from mloop.store import AuditEntry, LineageEdge, ModelVersion, RunRecord, Store

__all__ = ["VersionLineage", "model_card", "render_html", "version_lineage"]


@dataclass(frozen=True)
class VersionLineage:
    """A version, the run that produced it, what that run read, and its alias history."""

    version: ModelVersion
    run: RunRecord | None
    experiment: str | None
    inputs: list[LineageEdge] = field(default_factory=list)
    outputs: list[LineageEdge] = field(default_factory=list)
    parents: list[RunRecord] = field(default_factory=list)  # nearest first
    alias_history: list[AuditEntry] = field(default_factory=list)  # oldest first


def version_lineage(
    ref: str, *, store: Store | None = None, settings: Settings | None = None
) -> VersionLineage:
    """The lineage of the version ``ref`` names (``churn@production``, ``churn/3``)."""
    parsed = parse_ref(ref)
    if parsed.name is None:
        raise NotFoundError(f"{ref!r} names no registered version; use 'name/3' or 'name@alias'")
    db = backends(store, None, settings, create=False).store
    version = resolve_version(db, parsed)
    run = experiment = None
    inputs: list[LineageEdge] = []
    outputs: list[LineageEdge] = []
    parents: list[RunRecord] = []
    if version.run_id is not None:
        try:
            run = db.get_run(version.run_id)
        except NotFoundError:
            run = None  # purged since; the version keeps its run id
        if run is not None:
            experiment = db.get_experiment(run.experiment_id).name
            edges = db.list_lineage(run.id)
            inputs = [edge for edge in edges if edge.direction == "input"]
            outputs = [edge for edge in edges if edge.direction == "output"]
            parent_id = run.parent_run_id
            while parent_id is not None and len(parents) < 20:
                parent = db.get_run(parent_id)
                parents.append(parent)
                parent_id = parent.parent_run_id
    history = [
        entry
        for entry in reversed(db.list_audit(object_id=version.name, limit=1000))
        if entry.action in ("set_alias", "delete_alias")
        and version.version in (entry.details.get("version"), entry.details.get("previous_version"))
    ]
    return VersionLineage(version, run, experiment, inputs, outputs, parents, history)


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (the HTML renderer escapes HTML itself)."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split()) or " "


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def model_card(ref: str, *, store: Store | None = None, settings: Settings | None = None) -> str:
    """A Markdown model card for the version ``ref`` names: what it is, how it was trained
    (metrics, params, datasets with digests, code commit), its signature, and who promoted
    it when."""
    lineage = version_lineage(ref, store=store, settings=settings)
    v, run = lineage.version, lineage.run
    lines = [f"# Model card: {_cell(v.name)} version {v.version}", ""]
    if v.description:
        lines += [_cell(v.description), ""]
    aliases = ", ".join(f"`{alias}`" for alias in v.aliases) or "none"
    lines += [
        "| field | value |",
        "|---|---|",
        f"| flavor | {_cell(v.flavor)} |",
        f"| aliases | {aliases} |",
        f"| registered | {_when(v.created)} by {_cell(v.created_by)} |",
        f"| package sha256 | `{v.digest}` |",
    ]
    for key, value in sorted(v.tags.items()):
        lines.append(f"| tag {_cell(key)} | {_cell(value)} |")
    lines.append("")

    lines += ["## Promotions", ""]
    if lineage.alias_history:
        lines += ["| when | who | change |", "|---|---|---|"]
        for entry in lineage.alias_history:
            d = entry.details
            if entry.action == "delete_alias":
                change = f"removed `{d.get('alias')}` (was version {d.get('previous_version')})"
            elif d.get("version") == v.version:
                before = d.get("previous_version")
                origin = f"from version {before}" if before is not None else "new alias"
                change = f"`{d.get('alias')}` → this version ({origin})"
            else:
                change = f"`{d.get('alias')}` moved on to version {d.get('version')}"
            lines.append(f"| {_when(entry.time)} | {_cell(entry.actor)} | {_cell(change)} |")
    else:
        lines.append("This version has never been given an alias.")
    lines.append("")

    lines += ["## Training run", ""]
    if run is None:
        lines.append(
            "No run recorded." if v.run_id is None else f"Run `{v.run_id}` (no longer stored)."
        )
        lines.append("")
    else:
        commit = run.git_commit or "unknown"
        if run.git_dirty:
            commit += " (with uncommitted changes)"
        lines += [
            "| field | value |",
            "|---|---|",
            f"| run | `{run.id}` ({_cell(run.name)}) |",
            f"| experiment | {_cell(lineage.experiment)} |",
            f"| status | {run.status} |",
            f"| started | {_when(run.start_time)} by {_cell(run.user)} |",
            f"| code commit | {_cell(commit)} |",
            f"| branch | {_cell(run.git_branch or 'unknown')} |",
            "",
        ]
        if run.metrics:
            lines += ["### Metrics", "", "| metric | value |", "|---|---|"]
            lines += [f"| {_cell(k)} | {val:.6g} |" for k, val in sorted(run.metrics.items())]
            lines.append("")
        if run.params:
            lines += ["### Parameters", "", "| parameter | value |", "|---|---|"]
            lines += [f"| {_cell(k)} | {_cell(val)} |" for k, val in sorted(run.params.items())]
            lines.append("")
    datasets = [edge for edge in lineage.inputs if edge.artifact.kind == "dataset"]
    lines += ["## Datasets", ""]
    if datasets:
        lines += ["| name | rows | sha256 |", "|---|---|---|"]
        for edge in datasets:
            rows = edge.artifact.meta.get("rows", "?")
            lines.append(f"| {_cell(edge.name)} | {_cell(rows)} | `{edge.artifact.digest}` |")
    else:
        lines.append("No datasets were logged as inputs of the training run.")
    lines.append("")

    definitions = [e for e in lineage.inputs if e.artifact.kind.endswith("feature_view")]
    if definitions:
        lines += ["## Feature views", "", "| view | version | spec sha256 |", "|---|---|---|"]
        for edge in definitions:
            name, _, version = edge.name.rpartition("/v")
            lines.append(
                f"| {_cell(name.split('/', 1)[-1])} | {_cell(version)} | `{edge.artifact.digest}` |"
            )
        lines.append("")

    signature = v.meta.get("signature")
    lines += ["## Signature", ""]
    if signature:
        lines += ["| input column | dtype | nullable |", "|---|---|---|"]
        for column in signature.get("inputs", []):
            lines.append(
                f"| {_cell(column.get('name'))} | {_cell(column.get('dtype'))} | "
                f"{'yes' if column.get('nullable') else 'no'} |"
            )
        outputs = signature.get("outputs") or []
        if outputs:
            lines += ["", "| output | dtype |", "|---|---|"]
            lines += [f"| {_cell(c.get('name'))} | {_cell(c.get('dtype'))} |" for c in outputs]
    else:
        lines.append("Saved without a signature: inputs are not validated.")
    lines.append("")

    requirements = v.meta.get("requirements") or {}
    if requirements:
        lines += ["## Requirements", "", "| package | version |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(val)} |" for k, val in sorted(requirements.items())]
        lines.append("")
    return "\n".join(lines)


_HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d2330; }}
h1 {{ font-size: 1.6rem; border-bottom: 2px solid #3b6fd8; padding-bottom: .3rem; }}
h2 {{ font-size: 1.2rem; margin-top: 2rem; color: #23407a; }}
table {{ border-collapse: collapse; margin: .5rem 0; }}
th, td {{ border: 1px solid #d5dae3; padding: .3rem .6rem; text-align: left;
          vertical-align: top; }}
th {{ background: #f1f4f9; }}
code {{ font-size: .85em; background: #f1f4f9; padding: 0 .2em; word-break: break-all; }}
</style></head>
<body>
{body}
</body></html>
"""


def render_html(markdown: str, title: str) -> str:
    """A standalone HTML page of a Markdown card; raw HTML in the card is shown, not run."""
    from html import escape

    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return _HTML_PAGE.format(title=escape(title), body=renderer.render(markdown))
