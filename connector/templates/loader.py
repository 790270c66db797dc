"""Load TOML templates into `Template`s, collecting every problem (file, TOML path, what is allowed)."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.templates.checks import check_template, check_together
from connector.templates.errors import Problem, TemplateError
from connector.templates.limits import MAX_DEPTH, MAX_TEMPLATE_BYTES, check_limits, depth_of
from connector.templates.model import Template, normalize


def load_template(path: str | Path) -> Template:
    """Load and validate one template file; relations to processes are checked by `load_templates`."""
    file = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise TemplateError([Problem(file, "", f"the file is {size} bytes; templates are at most "
                                                   f"{MAX_TEMPLATE_BYTES} bytes")])
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError([Problem(file, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise TemplateError([Problem(file, "", "the file is not UTF-8 text")]) from None
    return loads_template(text, file)


def loads_template(text: str, file: str = "<string>") -> Template:
    """Parse and validate template TOML text."""
    if len(text) > MAX_TEMPLATE_BYTES:
        raise TemplateError([Problem(file, "", f"the text is {len(text)} characters; templates are at most "
                                               f"{MAX_TEMPLATE_BYTES} bytes")])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError([Problem(file, "", f"TOML syntax error: {exc}")]) from None
    except RecursionError:
        raise TemplateError([Problem(file, "", f"arrays or tables nested too deeply; templates nest at most "
                                               f"{MAX_DEPTH} levels")]) from None
    return parse_template(data, file)


def parse_template(data: dict[str, Any], file: str = "<data>") -> Template:
    """Validate already-parsed template data (a dict as read from TOML)."""
    if not isinstance(data, dict):
        found = type(data).__name__
        raise TemplateError([Problem(file, "", f"expected a TOML document (a table), got {found}")])
    limits = check_limits(file, data)
    if depth_of(data) > MAX_DEPTH:  # nothing below reads data that deep safely
        raise TemplateError(_dedupe(limits))
    normalized = normalize(data)
    problems: list[Problem] = list(limits)
    template: Template | None = None
    try:
        template = Template.model_validate(normalized)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, file))
    if isinstance(normalized, dict):
        problems.extend(check_template(file, normalized, data.get("flags")))
    if problems or template is None:
        raise TemplateError(_dedupe(problems))
    return template


def load_templates(paths: Iterable[str | Path] | str | Path) -> list[Template]:
    """Load several templates (directories expand to their *.toml files) and check them together.

    A folder without *.toml files, a missing file, or no paths at all is a problem, never "0 valid".
    """
    problems: list[Problem] = []
    loaded: list[tuple[str, Template]] = []
    given = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not given:
        raise TemplateError([Problem("", "", "no template files given")])
    for path in _expand(given, problems):
        try:
            loaded.append((str(path), load_template(path)))
        except TemplateError as exc:
            problems.extend(exc.problems)
    problems.extend(check_together(loaded))
    if problems:
        raise TemplateError(problems)
    return [t for _, t in loaded]


def _expand(paths: list[Path], problems: list[Problem]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                problems.append(Problem(str(path), "", f"no *.toml files in {path}"))
            out.extend(found)
        elif not path.exists():
            problems.append(Problem(str(path), "", "no such file or folder"))
        else:
            out.append(path)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


# --- pydantic errors -> problems --------------------------------------------------------------------


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last key of `loc` (walking Template's annotations)."""
    model: type[BaseModel] | None = Template
    annotation: Any = None
    for part in loc[:-1]:
        if isinstance(part, int):
            annotation = _inner(annotation)
        else:
            if model is None or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
        model = _as_model(annotation)
    return model


def _inner(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    return args[0] if args else None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _as_model(arg)
            if found:
                return found
    return None


_TYPE_NAMES = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "string_type": "a string",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _problems_from(exc: ValidationError, file: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        key = loc[-1] if loc else ""
        if kind == "extra_forbidden":
            model = _model_at(loc)
            allowed = ", ".join(model.model_fields) if model else "see docs/templates.md"
            message = f"unknown key {key!r}; allowed keys: {allowed}"
        elif kind == "missing":
            message = f"required key {key!r} is missing"
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            allowed = ", ".join(re.findall(r"'([^']*)'", expected)) or expected
            what = "field type" if key == "type" else str(key)
            message = f"unknown {what} {err['input']!r}; allowed: {allowed}"
        elif kind in _TYPE_NAMES:
            message = f"expected {_TYPE_NAMES[kind]}, got {err['input']!r}"
        elif kind == "value_error":
            message = re.sub(r"^Value error, ", "", err["msg"])
        else:
            message = err["msg"]
        problems.append(Problem(file, _path(loc), message))
    return problems
