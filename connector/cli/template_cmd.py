"""`b24sync template validate|show`: check template files and summarise them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # templates (pydantic) and rich: imported by the command that runs, not by --help
    from rich.console import Console

    from connector.templates import Template

EXIT_INVALID = 2

template_app = typer.Typer(help="Process templates (TOML files in mappings/).", no_args_is_help=True)


@cache
def console() -> Console:
    """The console the template commands print to, made on first use."""
    from rich.console import Console

    return Console(soft_wrap=True)


FilesArg = Annotated[list[Path], typer.Argument(help="Template files or folders of *.toml files.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def register(app: typer.Typer) -> None:
    """Add the `template` sub-app to the main CLI."""
    app.add_typer(template_app, name="template")


def _json_wanted(ctx: typer.Context, local: bool) -> bool:
    obj = ctx.find_root().obj if ctx.find_root().obj is not None else ctx.obj
    return local or bool(isinstance(obj, dict) and obj.get("json"))


def _print_json(data: Any) -> None:
    console().out(json.dumps(data, ensure_ascii=False, indent=2), highlight=False)


@template_app.command("validate")
def validate(ctx: typer.Context, files: FilesArg, as_json: JsonOpt = False) -> None:
    """Validate templates together; exit 0 when valid, 2 listing every problem otherwise."""
    from connector.templates import TemplateError, load_templates

    try:
        templates = load_templates(files)
    except TemplateError as exc:
        if _json_wanted(ctx, as_json):
            _print_json({"ok": False, "problems": [p.to_dict() for p in exc.problems]})
        else:
            console().print(f"[red]{len(exc.problems)} problem(s)[/red]", highlight=False)
            for problem in exc.problems:
                console().out(f"  {problem}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    if _json_wanted(ctx, as_json):
        _print_json({"ok": True, "templates": [t.code for t in templates], "problems": []})
    else:
        codes = ", ".join(t.code for t in templates)
        console().out(f"OK: {len(templates)} template(s) valid ({codes})", highlight=False)


@template_app.command("show")
def show(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A template file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print a summary of one template: flags, relations, fields, funnels, card, access."""
    from connector.templates import TemplateError, load_template

    try:
        template = load_template(file)
    except TemplateError as exc:
        for problem in exc.problems:
            console().out(f"  {problem}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    if _json_wanted(ctx, as_json):
        _print_json(summary(template))
        return
    _print_summary(template)


def summary(t: Template) -> dict[str, Any]:
    """A JSON-friendly summary of a template."""
    return {
        "code": t.code,
        "title": t.title,
        "preset": t.preset,
        "flags_on": [name for name, on in t.flags.items() if on],
        "integrations": t.integrations.model_dump(),
        "parents": [r.target for r in t.relations.parents],
        "children": [r.target for r in t.relations.children],
        "fields": [
            {
                "code": f.code,
                "type": f.type,
                "label": t.text(f.label),
                "multiple": f.multiple,
                "required": f.required,
                "options": [o.code for o in f.options],
                "targets": f.targets,
            }
            for f in t.fields
        ],
        "funnels": [
            {
                "code": fn.code,
                "name": t.text(fn.name),
                "default": fn.default,
                "stages": [
                    {"code": s.code, "name": t.text(s.name), "semantics": s.semantics} for s in fn.stages
                ],
            }
            for fn in t.funnels
        ],
        "card_sections": [{"code": s.code, "fields": s.fields} for s in t.card_sections],
        "manual_steps": t.access_checklist(),
    }


def _print_summary(t: Template) -> None:
    from rich.table import Table

    console().print(f"[bold]{t.title_text}[/bold] ({t.code}), preset {t.preset}", highlight=False)
    on = [name for name, value in t.flags.items() if value]
    console().out(f"flags on: {', '.join(on) or 'none'}", highlight=False)
    parents = ", ".join(r.target for r in t.relations.parents) or "none"
    children = ", ".join(r.target for r in t.relations.children) or "none"
    console().out(f"parents: {parents}; children: {children}", highlight=False)

    fields = Table(title="Fields")
    fields.add_column("code", no_wrap=True)
    for col in ("type", "label", "mult.", "req.", "options / targets"):
        fields.add_column(col)
    for f in t.fields:
        extra = ", ".join([o.code for o in f.options] or f.targets)
        fields.add_row(
            f.code, f.type, t.text(f.label), "Y" if f.multiple else "", "Y" if f.required else "", extra
        )
    console().print(fields)

    for fn in t.funnels:
        stages = Table(title=f"Funnel {fn.code} «{t.text(fn.name)}»{' (default)' if fn.default else ''}")
        for col in ("code", "name", "semantics", "color"):
            stages.add_column(col)
        for s in fn.stages:
            stages.add_row(s.code, t.text(s.name), s.semantics, s.color)
        console().print(stages)

    for section in t.card_sections:
        console().out(f"card «{t.text(section.title)}»: {', '.join(section.fields)}", highlight=False)
    steps = t.access_checklist()
    if steps:
        console().out("manual steps (REST cannot set CRM role permissions):", highlight=False)
        for line in steps:
            console().out(f"  - {line}", highlight=False)
