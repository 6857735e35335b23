"""The documentation stays true: README.md and docs/*.md against the code.

- The README is short (at most README_MAX_LINES) and in the issue's order.
- Every command in the README's sh blocks is checked: the `enliven` lines that
  run on the bundled photo are run for real, every other `enliven` line (in
  docs/ too) is parsed by the real argument parser, scripts must exist, and a
  `python X.py --flag` must be a flag X.py knows. A renamed option fails here.
- The Blender steps name buttons that exist in the add-on.
- Every relative link and #anchor points at a file and heading that exist.
- docs/cli.md says what `enliven --help` says (scripts/cli_reference.py), and
  lists every exit code the command can return.
- docs/service.md names every request type and the fields and parts the
  server requires of each (shared/schema.py's REQUESTS).
- The README's picture exists, moves, and stays under 2 MB.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from enliven.cli import build_parser
from enliven.shared.channels import CHANNELS
from enliven.shared.presets import PRESETS

from conftest import run_enliven

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 200
PICTURE = ROOT / "docs" / "astronaut.gif"
PICTURE_MAX_BYTES = 2 * 1024 * 1024
# README sections, in the order the issue asks for.
README_SECTIONS = ("Two commands", "Your first animation in Blender", "From the command line",
                   "What the frames look like", "Supported Blender versions and platforms", "More")
# `enliven` commands of the README that run on the CI machine, on the bundled photo; the rest are parsed only.
RUNNABLE = {"analyze", "generate", "presets", "talk"}
# Words in bold in the Blender steps that are Blender's own, not the add-on's.
BLENDER_UI = {"Edit > Preferences > Get Extensions", "⌄", "Install from Disk…", "Add-ons", "N", "Numpad 1", "I",
              "F12", "Output Properties > Output", "Render > Render Animation", "Ctrl F12", "End",
              "Image Editor"}


def sh_blocks(path: Path) -> list[str]:
    """The text of every ```sh block of a markdown file."""
    return re.findall(r"^```sh\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def command_lines(path: Path) -> list[list[str]]:
    """Every command of the file's sh blocks as words: comments dropped, continued lines joined."""
    commands = []
    for block in sh_blocks(path):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def parse_enliven(words: list[str], where: str) -> None:
    """Parse an `enliven ...` command line with the real parser; fail with the line if it is refused."""
    assert words[0] == "enliven"
    assert not {"&&", "|", ";", ">"} & set(words), f"{where}: one command a line, please: {shlex.join(words)}"
    try:
        build_parser().parse_args(words[1:])
    except SystemExit as error:
        pytest.fail(f"{where}: `{shlex.join(words)}` is refused by the enliven parser (exit {error.code})")


def python_script_flags(script: Path) -> str:
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ----------------------------------------------------------------------------- the README's shape


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/ (at most {README_MAX_LINES})"


def test_readme_has_the_picture_then_the_sections_in_order():
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert tuple(headings) == README_SECTIONS
    picture = text.index("](docs/astronaut.gif)")
    assert text.index("# Enliven") < picture < text.index("## Two commands")
    # The two commands, exactly: CI (.ci/run) calls the second.
    assert [["scripts/demo.sh"], ["scripts/test.sh"]] == command_lines(README)[:2]


def test_readme_blender_steps_name_buttons_the_addon_has():
    text = README.read_text(encoding="utf-8")
    steps = text[text.index("## Your first animation in Blender"):text.index("## From the command line")]
    numbered = re.findall(r"^(\d+)\. ", steps, re.M)
    assert numbered == [str(n) for n in range(1, len(numbered) + 1)] and len(numbered) >= 9
    source = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "addon").glob("*.py"))
    labels = set(re.findall(r'(?:bl_label|bl_category|name|text)\s*=\s*"([^"]+)"', source))
    labels |= set(re.findall(r"\('[A-Z_]+', \"([^\"]+)\"", source))  # enum items
    # Channel sliders and Insert Preset's menu items are named from the channel and preset tables.
    labels |= {name.replace("_", " ").replace("-", " ").title() for name in [ch.name for ch in CHANNELS] + list(PRESETS)}
    assert "Add Portrait" in labels and "Start a Local Backend" in labels  # the extraction works
    bold = [" ".join(word.split()) for word in re.findall(r"\*\*(.+?)\*\*", steps, re.S)]  # across line breaks
    unknown = [word for word in bold if not word.endswith(".") and word not in labels and word not in BLENDER_UI]
    assert not unknown, f"README's Blender steps name buttons the add-on does not have: {unknown}"


def test_readme_names_the_zip_build_py_makes():
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert f"`dist/enliven-{version}.zip`" in README.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- commands in code blocks


def test_readme_commands_exist_and_parse():
    for words in command_lines(README):
        program = words[0]
        if program == "enliven":
            parse_enliven(words, "README.md")
        elif program.startswith("scripts/"):
            script = ROOT / program
            assert script.is_file() and script.stat().st_mode & 0o111, f"README.md: {program} is not an executable script"
        elif program in ("python", ".venv/bin/python", "python3"):
            script = ROOT / words[1]
            assert script.is_file(), f"README.md: no {words[1]}"
            known = python_script_flags(script)
            for flag in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
                assert flag in known, f"README.md: {words[1]} has no {flag}"
        else:
            pytest.fail(f"README.md: `{shlex.join(words)}`: add a check for {program!r} to tests/test_docs.py")


def test_readme_commands_run(tmp_path):
    """The README's `enliven` commands on the bundled photo, run as written (in a scratch folder that has
    the repository's backend/ in it), each making what it names."""
    (tmp_path / "backend").symlink_to(ROOT / "backend")
    ran = []
    for words in command_lines(README):
        if words[0] != "enliven" or words[1] not in RUNNABLE or any(
                w.endswith((".jpg", ".mp4", ".json")) and not Path(w).parts[0] == "out" for w in words[2:]):
            continue
        result = run_enliven(*words[1:], cwd=tmp_path)
        assert result.returncode == 0, f"`{shlex.join(words)}` failed:\n{result.stderr[-2000:]}"
        for option in ("--out", "--video", "--overlay"):
            if option in words:
                made = tmp_path / words[words.index(option) + 1]
                assert made.exists() and (made.is_file() or any(made.iterdir())), f"`{shlex.join(words)}` made no {made}"
        ran.append(words[1])
    assert {"analyze", "generate", "talk"} <= set(ran), f"the README's runnable commands changed: ran {ran}"


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_enliven_lines_in_docs_parse(page):
    lines = [words for words in command_lines(page) if words[0] == "enliven"]
    for words in lines:
        parse_enliven(words, f"docs/{page.name}")


def test_a_renamed_option_would_fail(tmp_path):
    """The check above can fail: a line with an option the parser does not have is refused."""
    with pytest.raises(pytest.fail.Exception, match="refused by the enliven parser"):
        parse_enliven(["enliven", "generate", "photo.png", "--preset", "blink", "--out", "f", "--colour"], "test")


# ----------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_links_point_at_files_and_headings(page):
    assert not broken_links(page), f"{page.name}: broken links {broken_links(page)}"


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere) [also](page.md#title)\n")
    assert broken_links(page) == ["missing.md (no such file)", "#nowhere (no heading #nowhere in page.md)"]
    assert slug("A remote GPU: Blender on a workstation, `enliven serve` on a GPU box") == \
        "a-remote-gpu-blender-on-a-workstation-enliven-serve-on-a-gpu-box"


def test_every_docs_page_is_linked_from_the_readme():
    text = README.read_text(encoding="utf-8")
    unlinked = [page.name for page in DOCS if f"](docs/{page.name}" not in text]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


# ----------------------------------------------------------------------------- the CLI reference


def load_cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_the_commands_help():
    reference = load_cli_reference()
    current = reference.REFERENCE.read_text(encoding="utf-8")
    assert reference.render(current) == current, (
        "docs/cli.md differs from `enliven --help`: run `.venv/bin/python scripts/cli_reference.py` and commit it")


def test_cli_reference_refuses_a_missing_command():
    reference = load_cli_reference()
    text = reference.REFERENCE.read_text(encoding="utf-8")
    without = re.sub(r"<!-- help: enliven talk -->\n```text\n.*?^```\n", "", text, flags=re.M | re.S)
    with pytest.raises(ValueError, match="enliven talk"):
        reference.render(without)


def test_every_exit_code_is_documented():
    from enliven.errors import EXIT_CODES

    used = {int(code) for path in (ROOT / "backend").rglob("*.py")
            for code in re.findall(r"^\s+exit_code = (\d+)$", path.read_text(encoding="utf-8"), re.M)}
    assert used and not used - set(EXIT_CODES), f"exit codes with no entry in EXIT_CODES: {used - set(EXIT_CODES)}"
    assert "| 3 | no face" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the protocol in docs/service.md


def documented_requirements(path: Path) -> dict[str, tuple[set[str], set[str]]]:
    """docs/service.md's table "What each request needs": request type -> (required fields, required parts)."""
    text = path.read_text(encoding="utf-8")
    table = text[text.index("| request | required fields | required parts |"):]
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|([^|]*)\|", table.split("\n\n", 1)[0], re.M)

    def names(cell: str) -> set[str]:
        return set(re.findall(r"`(\w+)`", cell))

    documented = [kind for kind, _, _ in rows]
    assert len(documented) == len(set(documented)), f"a request has two rows: {documented}"
    return {kind: (names(fields), names(parts)) for kind, fields, parts in rows}


def test_service_docs_list_what_each_request_requires():
    """The table a client is written from names every request type and exactly the fields and parts the
    server requires of it (shared/schema.py's REQUESTS, which the server checks every request against)."""
    from enliven.shared.protocol import REQUEST_TYPES
    from enliven.shared.schema import REQUESTS

    required = {kind: ({name for name, spec in fields.items() if spec.required},
                       {name for name, spec in parts.items() if spec.required})
                for kind, (fields, parts) in REQUESTS.items()}
    assert set(REQUESTS) == set(REQUEST_TYPES)
    assert documented_requirements(ROOT / "docs" / "service.md") == required


# ----------------------------------------------------------------------------- the picture


def test_readme_picture_moves_and_is_small():
    assert PICTURE.stat().st_size <= PICTURE_MAX_BYTES
    with Image.open(PICTURE) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 24
        first = gif.convert("RGB").tobytes()
        gif.seek(gif.n_frames // 2)
        assert gif.convert("RGB").tobytes() != first
