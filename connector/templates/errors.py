"""Template problems: every mistake with its file, TOML path and what is allowed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from connector.errors import InputError


@dataclass(frozen=True)
class Problem:
    """One mistake in a template file; `path` is a TOML path such as `funnels[1].stages[3].code`."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class TemplateError(InputError, ValueError):
    """Raised by the loader with every problem found (never only the first)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in template(s)"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))
