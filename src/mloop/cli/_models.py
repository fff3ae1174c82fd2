"""``mloop models``: list, show, versions, alias, lineage and card of registered models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from mloop.backends import backends
from mloop.cli._console import plain_table, stdout
from mloop.cli._format import human_bytes, local_time
from mloop.cli._json import dumps, iso
from mloop.config import load_settings
from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import ModelVersion, RegisteredModel, Store

app = typer.Typer(
    help="Registered models: versions, aliases, lineage and model cards.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="A registered model's name.")]
Ref = Annotated[
    str,
    typer.Argument(
        metavar="REF", help="A version: NAME@ALIAS, NAME/VERSION or NAME (the newest version)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _reader(*, quiet: bool = False) -> Store | None:
    """The store to read, or None (after saying so, unless ``quiet``) when nothing is
    recorded here yet."""
    try:
        return backends(create=False).store
    except NotFoundError:
        if not quiet:
            uri = load_settings().resolved_tracking_uri()
            stdout().print(f"No models yet in {uri}. Register one with: mloop demo")
        return None


def _existing_store(ref: str) -> Store:
    """The store, for commands that name a model: none yet means that model does not exist."""
    try:
        return backends(create=False).store
    except NotFoundError:
        uri = load_settings().resolved_tracking_uri()
        raise NotFoundError(
            f"no registered model {ref!r}: nothing is recorded in {uri} yet; register one "
            "with mloop demo or run.log_model(..., name=...)"
        ) from None


def _model_json(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "latest_version": model.latest_version,
        "aliases": model.aliases,
        "tags": model.tags,
        "created": iso(model.created),
        "updated": iso(model.updated),
        "created_by": model.created_by,
    }


def _version_json(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "aliases": list(version.aliases),
        "flavor": version.flavor,
        "digest": version.digest,
        "run_id": version.run_id,
        "description": version.description,
        "tags": version.tags,
        "created": iso(version.created),
        "created_by": version.created_by,
        "signature": version.meta.get("signature"),
        "requirements": version.meta.get("requirements"),
    }


def _aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}→{version}" for alias, version in sorted(aliases.items()))


@app.command("list")
def list_models(
    name_like: Annotated[
        str | None,
        typer.Option("--like", metavar="PATTERN", help="Only names matching PATTERN (% = any)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """List registered models with their newest version and aliases."""
    store = _reader(quiet=as_json)
    if store is None:
        if as_json:
            typer.echo("[]")
        return
    models = store.models.list_models(name_like=name_like)
    if as_json:
        typer.echo(dumps([_model_json(model) for model in models]))
        return
    console = stdout()
    if not models:
        console.print("No registered models match." if name_like else "No registered models yet.")
        return
    table = plain_table()
    for column in ("name", "latest", "aliases", "updated", "description"):
        table.add_column(column, overflow="fold")
    for model in models:
        table.add_row(
            model.name,
            str(model.latest_version or "-"),
            _aliases_text(model.aliases),
            local_time(model.updated),
            model.description.splitlines()[0] if model.description else "",
        )
    console.print(table)


@app.command("versions")
def list_versions(name: Name, as_json: Json = False) -> None:
    """List the versions of a model, newest first."""
    store = _existing_store(name)
    versions = store.models.list_versions(name)
    if as_json:
        typer.echo(dumps([_version_json(version) for version in versions]))
        return
    console = stdout()
    if not versions:
        console.print(f"Model {name} has no versions yet.")
        return
    table = plain_table()
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("aliases", style="bold green", no_wrap=True)
    table.add_column("flavor", no_wrap=True)
    table.add_column("registered", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    table.add_column("run", overflow="fold")
    for version in versions:
        table.add_row(
            str(version.version),
            ", ".join(version.aliases),
            version.flavor,
            local_time(version.created).removesuffix(" UTC")[:16],
            version.digest[:12],
            version.run_id or "-",
        )
    console.print(table)


def _resolve(store: Store, ref: str) -> ModelVersion:
    from mloop.registry import get_version

    return get_version(ref, store=store)


@app.command("show")
def show(ref: Ref, as_json: Json = False) -> None:
    """Show a model (NAME) or one version (NAME@ALIAS, NAME/VERSION): signature, run,
    requirements."""
    store = _existing_store(ref)
    if "@" not in ref and "/" not in ref:
        model = store.models.get_model(ref)
        versions = store.models.list_versions(ref)
        if as_json:
            body = _model_json(model) | {"versions": [_version_json(v) for v in versions]}
            typer.echo(dumps(body))
            return
        console = stdout()
        console.print(Text(model.name, style="bold"))
        if model.description:
            console.print(model.description)
        console.print(
            f"versions: {model.latest_version or 0}   aliases: "
            f"{_aliases_text(model.aliases) or 'none'}"
        )
        for key, value in sorted(model.tags.items()):
            console.print(f"tag {key} = {value}")
        if versions:
            console.print(
                f"newest: {versions[0].ref} ({versions[0].flavor}), registered "
                f"{local_time(versions[0].created)} by {versions[0].created_by}"
            )
        return
    version = _resolve(store, ref)
    if as_json:
        typer.echo(dumps(_version_json(version)))
        return
    console = stdout()
    console.print(Text(f"{version.name} version {version.version}", style="bold"))
    table = plain_table()
    table.add_column("field")
    table.add_column("value", overflow="fold")
    table.add_row("aliases", ", ".join(version.aliases) or "none")
    table.add_row("flavor", version.flavor)
    table.add_row("run", version.run_id or "-")
    table.add_row("registered", f"{local_time(version.created)} by {version.created_by}")
    table.add_row("package sha256", version.digest)
    if version.description:
        table.add_row("description", version.description)
    for key, value in sorted(version.tags.items()):
        table.add_row(f"tag {key}", value)
    console.print(table)
    signature = version.meta.get("signature")
    if signature:
        sig = plain_table()
        sig.add_column("input column")
        sig.add_column("dtype")
        sig.add_column("nullable")
        for column in signature.get("inputs", []):
            sig.add_row(
                str(column["name"]), str(column["dtype"]), "yes" if column.get("nullable") else "no"
            )
        console.print(sig)
    requirements = version.meta.get("requirements") or {}
    if requirements:
        console.print("needs: " + ", ".join(f"{k} {v}" for k, v in sorted(requirements.items())))


@app.command("alias")
def alias(
    name: Name,
    alias_name: Annotated[
        str, typer.Argument(metavar="ALIAS", help="The alias, e.g. production or challenger.")
    ],
    version: Annotated[
        int | None,
        typer.Argument(metavar="VERSION", help="The version to point ALIAS at.", min=1),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
) -> None:
    """Point ALIAS of model NAME at VERSION (atomically), or remove it with --delete.

    Every change is in the audit log, with who made it and the version it replaced.
    """
    from mloop.registry import delete_alias, set_alias

    if delete == (version is not None):
        raise InvalidValueError("give a VERSION to point the alias at, or --delete (not both)")
    store = _existing_store(name)
    if version is None:
        change = delete_alias(name, alias_name, store=store)
        stdout().print(f"Removed {name}@{alias_name} (was version {change.previous_version}).")
        return
    change = set_alias(name, alias_name, version, store=store)
    before = (
        f"was version {change.previous_version}"
        if change.previous_version is not None
        else "new alias"
    )
    stdout().print(f"{name}@{alias_name} → version {version} ({before}).")


@app.command("lineage")
def lineage(ref: Ref, as_json: Json = False) -> None:
    """Show where a version came from: its run, the datasets and parent runs, its aliases."""
    from mloop.registry import version_lineage

    store = _existing_store(ref)
    found = version_lineage(ref, store=store)
    v = found.version
    if as_json:
        body = {
            "version": _version_json(v),
            "run": None
            if found.run is None
            else {
                "id": found.run.id,
                "name": found.run.name,
                "experiment": found.experiment,
                "status": found.run.status,
                "git_commit": found.run.git_commit,
            },
            "inputs": [
                {"name": e.name, "kind": e.artifact.kind, "digest": e.artifact.digest}
                for e in found.inputs
            ],
            "parents": [run.id for run in found.parents],
        }
        typer.echo(dumps(body))
        return
    aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
    tree = Tree(
        Text(f"{v.name}/{v.version}{aliases}  {v.flavor}  sha256 {v.digest[:12]}", style="bold")
    )
    if found.run is None:
        tree.add("no training run recorded" if v.run_id is None else f"run {v.run_id} (purged)")
    else:
        run = found.run
        commit = (
            f"commit {run.git_commit[:12]}" + (" (dirty)" if run.git_dirty else "")
            if run.git_commit
            else "no git commit"
        )
        node = tree.add(f"run {run.id}  {run.name}  [{found.experiment}]  {run.status}  {commit}")
        for edge in found.inputs:
            rows = edge.artifact.meta.get("rows")
            extra = f"  {rows} rows" if rows is not None else ""
            node.add(
                f"input {edge.name}  {edge.artifact.kind}  sha256 "
                f"{edge.artifact.digest[:12]}{extra}"
            )
        for edge in found.outputs:
            node.add(f"output {edge.name}  {edge.artifact.kind}  {human_bytes(edge.artifact.size)}")
        parent_node = node
        for parent in found.parents:
            parent_node = parent_node.add(f"child of run {parent.id}  {parent.name}")
    for entry in found.alias_history:
        d = entry.details
        tree.add(
            f"{local_time(entry.time)}  {entry.actor}  {entry.action} {d.get('alias')}: "
            f"{d.get('previous_version')} → {d.get('version')}"
        )
    stdout().print(tree)


@app.command("card")
def card(
    ref: Ref,
    html: Annotated[bool, typer.Option("--html", help="Write HTML instead of Markdown.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
) -> None:
    """Render the model card of a version: metrics, params, datasets with digests, signature,
    code commit, and who promoted it when."""
    from mloop.registry import model_card, render_html

    store = _existing_store(ref)
    text = model_card(ref, store=store)
    if html:
        text = render_html(text, title=f"Model card: {ref}")
    if output is None:
        typer.echo(text)
        return
    output.write_text(text, encoding="utf-8")
    stdout().print(f"Wrote {output} ({human_bytes(len(text.encode()))}).")
