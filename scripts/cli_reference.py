"""Keep the generated parts of docs/cli.md equal to the `enliven` command's own help.

    .venv/bin/python scripts/cli_reference.py           # rewrite them in docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check   # exit 1 (and say so) if docs/cli.md is stale

docs/cli.md is written by hand around generated blocks. A line
`<!-- help: enliven COMMAND -->` is followed by a ```text block that holds
`enliven COMMAND --help` (`<!-- help: enliven -->` the top-level help, with
the exit codes); `<!-- exit codes -->` ... `<!-- end exit codes -->` holds the
exit code table of enliven.errors.EXIT_CODES. Every command of the parser must
have its block, and no block may name a command that does not exist.
tests/test_docs.py fails when the file differs from what this script writes.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "cli.md"
WIDTH = "100"  # the help's line width, whatever the terminal
HELP_MARKER = re.compile(r"^<!-- help: (enliven(?: [a-z-]+)?) -->\n```text\n.*?^```\n", re.M | re.S)
EXIT_BLOCK = re.compile(r"^<!-- exit codes -->\n.*?^<!-- end exit codes -->\n", re.M | re.S)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, in the order `enliven --help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def help_texts() -> dict[str, str]:
    """`enliven --help` and every `enliven COMMAND --help`, keyed "enliven" and "enliven COMMAND",
    formatted the same on every machine (line width, the home folder in default paths)."""
    from enliven.cli import build_parser

    saved = dict(os.environ)
    os.environ["COLUMNS"] = WIDTH
    os.environ.pop("XDG_CONFIG_HOME", None)  # `keys --dir`'s default is under it
    try:
        parser = build_parser()
        texts = {"enliven": parser.format_help()}
        for name, command in subcommands(parser).items():
            texts[f"enliven {name}"] = command.format_help()
    finally:  # a test calls this in its own process: leave the environment as it was
        os.environ.clear()
        os.environ.update(saved)
    home = str(Path.home())
    if home.strip("/"):
        texts = {key: text.replace(home + os.sep, "~/") for key, text in texts.items()}
    return texts


def exit_code_table() -> str:
    from enliven.errors import EXIT_CODES

    rows = "".join(f"| {code} | {meaning} |\n" for code, meaning in EXIT_CODES.items())
    return f"<!-- exit codes -->\n| code | meaning |\n|---|---|\n{rows}<!-- end exit codes -->\n"


def render(text: str) -> str:
    """`text` (docs/cli.md) with every generated block made anew; ValueError if a command has no block
    or a block names no command."""
    texts = help_texts()
    named = HELP_MARKER.findall(text)
    missing = [key for key in texts if key not in named]
    unknown = [key for key in named if key not in texts]
    twice = sorted({key for key in named if named.count(key) > 1})
    if missing or unknown or twice:
        raise ValueError(f"docs/cli.md: commands without a help block {missing}, blocks for no command "
                         f"{unknown}, blocks twice {twice}")
    if len(EXIT_BLOCK.findall(text)) != 1:
        raise ValueError("docs/cli.md needs one <!-- exit codes --> ... <!-- end exit codes --> block")
    text = HELP_MARKER.sub(lambda m: f"<!-- help: {m[1]} -->\n```text\n{texts[m[1]].rstrip()}\n```\n", text)
    return EXIT_BLOCK.sub(lambda m: exit_code_table(), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the help blocks of docs/cli.md.")
    parser.add_argument("--check", action="store_true", help="only say whether docs/cli.md is up to date")
    args = parser.parse_args(argv)
    current = REFERENCE.read_text(encoding="utf-8")
    try:
        wanted = render(current)
    except ValueError as error:
        print(f"cli_reference: {error}", file=sys.stderr)
        return 1
    if wanted == current:
        print(f"{REFERENCE.relative_to(ROOT)} is up to date")
        return 0
    if args.check:
        print(f"{REFERENCE.relative_to(ROOT)} differs from `enliven --help`: run scripts/cli_reference.py",
              file=sys.stderr)
        return 1
    REFERENCE.write_text(wanted, encoding="utf-8")
    print(f"rewrote {REFERENCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
