"""`lmmrec` entry point. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import importlib
import sys

import typer

from lmmrec.errors import LmmrecError

app = typer.Typer(help="LMMRec: motivation-aware recommendation with LLM-extracted reasons.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)  # help as written: rich would eat "a:b:c"

# Modules exposing `register(app)`; kept as names so `lmmrec --help` stays fast.
COMMAND_MODULES = [
    "lmmrec.cli.data",
    "lmmrec.cli.train",
    "lmmrec.cli.extract",
    "lmmrec.cli.demo",
    "lmmrec.cli.experiment",
    "lmmrec.cli.recommend",
    "lmmrec.cli.serve",
    "lmmrec.cli.report",
    "lmmrec.cli.config",
]


_built = False


def build_app() -> typer.Typer:
    """The app with every command module registered, once: registering again would add
    each group a second time, and every later call would build all the copies."""
    global _built
    if not _built:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(app)
        _built = True
    return app


def main(argv: list[str] | None = None) -> None:
    build_app()
    try:
        app(args=argv, standalone_mode=False)
    except LmmrecError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except SystemExit:
        raise
    except Exception as e:  # usage errors arrive here in non-standalone mode
        import click
        from typer import _click as typer_click  # typer vendors its own click

        if isinstance(e, click.ClickException | typer_click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort) or type(e).__name__ == "Abort":
            sys.exit(130)
        raise

if __name__ == "__main__":
    main()
