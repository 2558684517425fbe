"""The ``helpdesk`` command line (typer + rich); see app.py and docs/client.md."""

# Each module registers its commands on app; --help shows their panels in this order.
from helpdesk_client.cli import account, reading, working, live  # noqa: F401  # isort: skip
from helpdesk_client.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
