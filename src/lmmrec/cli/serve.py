"""CLI: `lmmrec serve` - the HTTP service of a trained run (FastAPI + uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", help="backend override key=value, e.g. openai.base_url=http://host:8000/v1")]


def serve_cmd(
    run: Annotated[Path, typer.Option("--run", help="a finished run folder")],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port")] = 8000,
    api_key_env: Annotated[str, typer.Option(
        help="environment variable holding the API key (unset or empty: no key)")]
        = "LMMREC_API_KEY",
    max_body_bytes: Annotated[int, typer.Option(min=1, help="larger bodies get 413")]
        = 64 * 1024,
    backend: Annotated[str, typer.Option(help="LLM for cold start: local | openai")] = "local",
    config: Annotated[Path | None, typer.Option(help="backend YAML")] = None,
    overrides: Overrides = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Serve explained recommendations of RUN over HTTP (docs at /docs)."""
    import uvicorn

    from lmmrec.explain.coldstart import configured_extractor
    from lmmrec.explain.extract_config import backend_config
    from lmmrec.explain.recommender import Recommender
    from lmmrec.serve.app import ServeSettings, create_app

    key = os.environ.get(api_key_env) or None
    if key is None:
        typer.secho(f"note: ${api_key_env} is not set: the API needs no key", err=True)
    if host not in ("127.0.0.1", "localhost", "::1") and key is None:
        typer.secho(f"warning: serving on {host} without an API key", err=True,
                    fg=typer.colors.YELLOW)
    extractor = configured_extractor(backend_config(backend, config, overrides))  # lazy
    rec = Recommender.load(run, extract=extractor)
    app = create_app(rec, ServeSettings(api_key=key, max_body_bytes=max_body_bytes,
                                        title=f"lmmrec: {run.name}"))
    typer.secho(f"serving {run} on http://{host}:{port} (docs: /docs)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)
    finally:
        extractor.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
