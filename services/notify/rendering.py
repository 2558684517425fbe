"""Turning a :class:`~services.notify.domain.Notification` into its text, HTML and short bodies.

Templates live in ``services/notify/templates/<language>/`` as ``<name>.txt``
and ``<name>.html`` (e-mail), and ``<name>.short.txt`` (SMS, phone call, pager,
alarm: one line). A template missing in the customer's language is taken from
the default language. HTML is autoescaped (a resolution text cannot inject
markup); an undefined variable is an error, not a blank, unless the template
gives a ``default``. Without a short template, the short text is the subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)

from services.notify.domain import Notification

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str
    short: str = ""


class RenderingFailed(Exception):
    """The template is missing or cannot be rendered with the notification's context."""


class Templates:
    def __init__(self, folder: Path = TEMPLATES, default_language: str = "en") -> None:
        self.default_language = default_language
        self._env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, notification: Notification) -> Rendered:
        """E-mails get text and HTML; every other method a one-line short text."""
        try:
            if notification.method == "email":
                return Rendered(text=self._render(notification, "txt"), html=self._render(notification, "html"))
            return Rendered(text="", html="", short=self._short(notification))
        except TemplateError as exc:
            raise RenderingFailed(f"template {notification.template!r}: {type(exc).__name__}: {exc}") from exc

    def _short(self, notification: Notification) -> str:
        try:
            return " ".join(self._render(notification, "short.txt").split())
        except TemplateNotFound:
            return notification.subject

    def _render(self, notification: Notification, extension: str) -> str:
        names = [f"{language}/{notification.template}.{extension}" for language in self._languages(notification)]
        return self._env.select_template(names).render(notification.context)

    def _languages(self, notification: Notification) -> list[str]:
        language = (notification.language or "").lower().split("-")[0]
        return [language, self.default_language] if language and language != self.default_language else [self.default_language]
