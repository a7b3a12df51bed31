"""The CLI app registers its command modules once, however often main() runs in a process
(in-process callers such as the test suite call it hundreds of times)."""

from __future__ import annotations


def test_build_app_is_idempotent(cli) -> None:
    from lmmrec.cli.main import app, build_app

    build_app()
    groups, commands = len(app.registered_groups), len(app.registered_commands)
    for _ in range(3):
        assert cli("data", "--help").code == 0
    build_app()
    assert (len(app.registered_groups), len(app.registered_commands)) == (groups, commands)
