"""CLI: `lmmrec recommend` - explained top-K for a known user, or for a new one by text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lmmrec.errors import ConfigError
from lmmrec.explain import coldstart  # light; the module, where tests replace its extractor

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", help="backend override key=value, e.g. openai.base_url=http://host:8000/v1")]


def recommend_cmd(
    run: Annotated[Path, typer.Option("--run", help="a finished run folder")],
    user: Annotated[str | None, typer.Option("--user", help="a user id of the dataset")] = None,
    text: Annotated[list[str] | None, typer.Option(
        "--text", help="cold start: a review by the new user (repeatable)")] = None,
    text_file: Annotated[Path | None, typer.Option(
        "--text-file", help="cold start: reviews, one per paragraph (or per line)")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="items to return")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    llm: Annotated[bool, typer.Option(
        "--llm", help="cold start: extract the text's motivations with an LLM first (default: "
        "match the text's own phrases, no LLM, seconds)")] = False,
    backend: Annotated[str | None, typer.Option(
        help="LLM for cold start: local | openai (implies --llm)")] = None,
    config: Annotated[Path | None, typer.Option(help="backend YAML (implies --llm)")] = None,
    overrides: Overrides = None,
) -> None:
    """Top-K items with the user's and item's best-matching motivations and a reason.

    For a new user (--text/--text-file) items are ranked by how well their reviews'
    motivations match the text: the same matches the reasons show."""
    by_text = bool(text) or text_file is not None
    if (user is not None) == by_text:
        raise ConfigError("pass either --user ID or --text/--text-file (not both)")
    texts: list[str] = [t for t in (text or []) if t.strip()]
    if text_file is not None:
        if not text_file.is_file():
            raise ConfigError(f"--text-file {text_file}: not found")
        texts += coldstart.split_reviews(text_file.read_text(encoding="utf-8"))
    from lmmrec.explain.recommender import Recommender  # torch: lazy, keeps --help fast

    rec = Recommender.load(run)
    phrases: list[str] = []
    if user is not None:
        recs = rec.recommend(user, k)
    else:
        if not texts:
            raise ConfigError("--text/--text-file: no review text given")
        rec.require_text()  # before the LLM is loaded
        if llm or backend is not None or config is not None or overrides:
            from lmmrec.llm.backends import backend_config  # pydantic: lazy, as above

            extractor = coldstart.configured_extractor(backend_config(backend or "local", config,
                                                            overrides))
            try:
                phrases = rec.extract_phrases(texts, extractor)
            finally:
                extractor.close()
        else:
            from lmmrec.explain.coldrank import query_phrases  # pydantic: lazy, as above

            phrases = query_phrases(texts)
        recs = rec.recommend_for_phrases(phrases, k)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in recs], indent=2, ensure_ascii=False))
        return
    _print(recs, user, phrases)


def _print(recs, user: str | None, phrases: list[str]) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.markup import escape

    con = Console(highlight=False, soft_wrap=True)
    who = f"user {user}" if user is not None else "the new user"
    if phrases:
        con.print(f"[bold]motivations of {who}:[/bold] {escape(', '.join(phrases))}")
    con.print(f"[bold]top {len(recs)} for {escape(who)}[/bold]")
    for n, r in enumerate(recs, 1):
        title = f"  {escape(r.title[:80])}" if r.title else ""
        con.print(f"{n:>3}. [cyan]{escape(r.item)}[/cyan]{title}  (score {r.score:.4f})")
        con.print(f"     {escape(r.reason)}")
        for m in r.matches:
            con.print(f"       - \"{escape(m.user_phrase)}\" <-> \"{escape(m.item_phrase)}\" "
                      f"({m.similarity:.2f})")


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
