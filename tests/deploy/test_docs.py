"""The deployment docs tell people to run commands the CLI really has."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy._contract import ROOT, invoke

DOCS = ("docs/deploy.md", "docs/postman.md")
# `sms-sender SUBCOMMAND ...` as a word of its own, up to a comment, a pipe or the code's end;
# not `kubectl -n sms-sender ...`, where it is the namespace.
COMMAND = re.compile(r"(?:^|(?<=[\s`(]))(?<!-n )(?:\.venv/bin/)?sms-sender ([a-z][^#|&;`\n]*)")


def _code(markdown: str) -> str:
    """Fenced blocks and inline code spans: where commands are, as opposed to prose."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M))
    return "\n".join([*fenced, *inline])


def _commands(document: str) -> list[list[str]]:
    code = _code((ROOT / document).read_text())
    return [shlex.split(match.rstrip(" \\")) for match in COMMAND.findall(code)]


@pytest.mark.parametrize("document", DOCS)
def test_every_command_in_the_docs_is_a_real_call(document: str) -> None:
    commands = _commands(document)
    assert commands, f"{document} shows no sms-sender command"
    for argv in commands:
        invoke(argv)


def test_deploy_guide_shows_each_part_of_the_service() -> None:
    shown = {tuple(argv[:2]) if argv[0] == "token" else (argv[0],) for argv in _commands(DOCS[0])}
    assert {("migrate",), ("api",), ("worker",), ("serve",), ("demo",)} <= shown
    assert ("token", "create") in shown
