"""CLI: `lmmrec serve` - the HTTP service of a trained run (FastAPI + uvicorn)."""

from __future__ import annotations

import gc
import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from lmmrec.errors import ConfigError
from lmmrec.explain import coldstart  # light; the module, where tests replace its extractor

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", help="backend override key=value, e.g. openai.base_url=http://host:8000/v1")]


DEFAULT_KEY_ENV = "LMMREC_API_KEY"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(api_key_env: str | None, host: str, insecure: bool) -> str | None:
    """The key the service requires (None: none). Fails closed: a named variable that is
    unset or empty is an error, and so is a non-loopback bind without a key (unless
    ``insecure``)."""
    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {api_key_env}: the variable is unset or empty; "
                              "set it to the API key (or drop --api-key-env to serve without "
                              "one on this machine only)")
    else:
        key = os.environ.get(DEFAULT_KEY_ENV) or None
    if key is None and not is_loopback(host) and not insecure:
        raise ConfigError(f"--host {host}: refusing to serve beyond this machine without an "
                          f"API key; set ${DEFAULT_KEY_ENV} (or --api-key-env NAME), or pass "
                          "--insecure")
    return key


def serve_cmd(
    run: Annotated[Path, typer.Option("--run", help="a finished run folder")],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port")] = 8000,
    api_key_env: Annotated[str | None, typer.Option(
        help="environment variable holding the API key; it must be set (default: "
        f"${DEFAULT_KEY_ENV} if set, else no key, on a loopback address only)")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="allow a non-loopback --host without an API key")] = False,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="larger bodies get 413")]
        = 64 * 1024,
    cache_mb: Annotated[float, typer.Option(
        min=0, help="memory for rendered answers, in MiB")] = 64.0,
    cold_start: Annotated[bool, typer.Option(
        "--cold-start", help="enable POST /recommendations (runs the LLM on new users' "
        "texts)")] = False,
    cold_start_concurrency: Annotated[int, typer.Option(
        min=1, help="cold-start requests at once (503 past that)")] = 1,
    cold_start_per_minute: Annotated[float, typer.Option(
        min=0.001, help="cold-start requests per client (key or address) per minute")] = 6.0,
    max_texts: Annotated[int, typer.Option(
        min=1, max=coldstart.MAX_REVIEWS, help="texts in one cold-start request")] = 5,
    backend: Annotated[str, typer.Option(help="LLM for cold start: local | openai")] = "local",
    config: Annotated[Path | None, typer.Option(help="backend YAML")] = None,
    overrides: Overrides = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Serve explained recommendations of RUN over HTTP (docs at /docs)."""
    # fastapi, uvicorn, torch, pydantic: lazy, keeps `lmmrec --help` fast
    import uvicorn

    from lmmrec.explain.recommender import Recommender
    from lmmrec.llm.backends import backend_config
    from lmmrec.serve.app import ServeSettings, create_app

    key = api_key(api_key_env, host, insecure)
    if key is None:
        typer.secho(f"note: no API key (${api_key_env or DEFAULT_KEY_ENV} is not set): "
                    "the API needs none", err=True)
    if not is_loopback(host) and key is None:
        typer.secho(f"warning: serving on {host} without an API key (--insecure)", err=True,
                    fg=typer.colors.YELLOW)
    extractor = coldstart.configured_extractor(backend_config(backend, config, overrides))  # lazy
    rec = Recommender.load(run, extract=extractor)
    app = create_app(rec, ServeSettings(
        api_key=key, max_body_bytes=max_body_bytes, cache_bytes=int(cache_mb * 2 ** 20),
        cold_start=cold_start, cold_start_concurrency=cold_start_concurrency,
        cold_start_per_minute=cold_start_per_minute, max_texts=max_texts,
        title=f"lmmrec: {run.name}"))
    typer.secho(f"serving {run} on http://{host}:{port} (docs: /docs)", err=True)
    # What is loaded now lives as long as the service: out of the cyclic collector's reach,
    # or a full collection walks it all (~0.3 s at 10^5 items: a latency spike mid-load).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)
    finally:
        extractor.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
