"""Process templates: one TOML file per smart process, validated into pydantic models."""

from connector.templates.errors import Problem, TemplateError
from connector.templates.loader import load_template, load_templates, loads_template, parse_template
from connector.templates.model import (
    FIELD_TYPES,
    AccessRule,
    CardSection,
    Field,
    Funnel,
    Integrations,
    Option,
    RelationRef,
    Relations,
    Stage,
    Template,
)
from connector.templates.presets import FLAG_NAMES, PRESET_NAMES, preset_flags
from connector.templates.writer import to_toml

__all__ = [
    "FIELD_TYPES",
    "FLAG_NAMES",
    "PRESET_NAMES",
    "AccessRule",
    "CardSection",
    "Field",
    "Funnel",
    "Integrations",
    "Option",
    "Problem",
    "RelationRef",
    "Relations",
    "Stage",
    "Template",
    "TemplateError",
    "load_template",
    "load_templates",
    "loads_template",
    "parse_template",
    "preset_flags",
    "to_toml",
]
