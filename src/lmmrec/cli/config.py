"""CLI: `lmmrec config show` - every `--set` key of `lmmrec train`, its default and help."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from lmmrec.errors import ConfigError

config_app = typer.Typer(help="Inspect configuration keys.", no_args_is_help=True,
                         rich_markup_mode=None)


def sections(method: str | None = None, backbone: str | None = None
             ) -> list[tuple[str, list[Any]]]:
    """(title, keys) of every section `lmmrec train --set` accepts, from the models; with
    ``backbone`` a shipped preset, its YAML values are the defaults shown."""
    # pydantic, yaml: lazy, keeps `lmmrec --help` fast
    from lmmrec.align.registry import ALIGNERS
    from lmmrec.backbones import REGISTRY, backbone_class
    from lmmrec.config import read_yaml
    from lmmrec.config_doc import Key, model_keys
    from lmmrec.train.config import RunConfig, backbone_files

    presets = backbone_files()
    preset: dict[str, Any] = {}
    if backbone is not None:
        if backbone in presets:
            preset = read_yaml(presets[backbone])
        elif backbone not in REGISTRY:
            valid = sorted(set(presets) | set(REGISTRY))
            raise ConfigError(f"unknown backbone {backbone!r}; valid: {', '.join(valid)}")
    if method is not None and method not in ALIGNERS.names():
        raise ConfigError(f"unknown method {method!r}; valid: {', '.join(ALIGNERS.names())}")

    def with_preset(keys: list[Key]) -> list[Key]:
        out = []
        for k in keys:
            node: Any = preset
            for part in k.path.split("."):
                node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
            out.append(k if node is KeyError else Key(k.path, node, k.help))
        return out

    run = [k for k in model_keys(RunConfig) if k.path not in ("align", "backbone")]
    out = [("lmmrec train (--set KEY=VALUE)", with_preset(run))]
    for name in ALIGNERS:  # every registered method, a new one included
        if method in (None, name):
            out.append((f"align.* (--method {name})",
                        model_keys(ALIGNERS.cls(name).Config, "align.")))
    name_of = preset.get("backbone", {}).get("name", backbone)
    for name in sorted(REGISTRY):
        if backbone is None or name == name_of:
            keys = [Key("backbone.name", name, "the backbone (or a preset: --backbone)")]
            keys += model_keys(backbone_class(name).Config, "backbone.")
            title = f"backbone.* (--backbone {backbone or name})"
            out.append((title, with_preset(keys)))
    return out


@config_app.command("show")
def show_cmd(
    method: Annotated[str | None, typer.Option(help="only this method's align.* keys")] = None,
    backbone: Annotated[str | None, typer.Option(
        help="only this backbone's keys; a preset's values shown as defaults")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every key `lmmrec train --set KEY=VALUE` accepts, with its default and help."""
    secs = sections(method, backbone)
    if as_json:
        typer.echo(json.dumps({t: [{"key": k.path, "default": k.default, "help": k.help}
                                   for k in keys] for t, keys in secs}, indent=2))
        return
    for title, keys in secs:
        typer.echo(title)
        width = max(len(k.path) for k in keys)
        for k in keys:
            default = json.dumps(k.default)
            typer.echo(f"  {k.path:<{width}}  {default:<12}  {k.help}")
        typer.echo("")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
