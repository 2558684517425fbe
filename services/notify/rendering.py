"""Turning an :class:`~services.notify.domain.Email` into its text and HTML bodies.

Templates live in ``services/notify/templates/`` as ``<name>.txt`` and
``<name>.html``. HTML is autoescaped (a resolution text cannot inject markup);
an undefined variable is an error, not a blank, unless the template gives a
``default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from services.notify.domain import Email

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str


class RenderingFailed(Exception):
    """The template is missing or cannot be rendered with the e-mail's context."""


class Templates:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self._env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, email: Email) -> Rendered:
        try:
            return Rendered(
                text=self._env.get_template(f"{email.template}.txt").render(email.context),
                html=self._env.get_template(f"{email.template}.html").render(email.context),
            )
        except TemplateError as exc:
            raise RenderingFailed(f"template {email.template!r}: {type(exc).__name__}: {exc}") from exc
