"""The workshop guide (docs/workshop/) keeps its shape, and names only make targets that exist.

CI runs the labs' commands against the real stack (pytest --codeblocks docs/workshop); these checks need no
services, so a renamed make target or a lab missing a part fails here first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "workshop"
LABS = sorted(GUIDE.glob("[0-9][0-9]-*.md"))
HEADINGS = ["Goal", "Time", "Predict", "Commands", "Expected result", "Question", "Solution"]
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = "<!--pytest-codeblocks:expected-output-->"
# `make` as a command: at a line's start or after a shell separator, options, VAR=value pairs, then the target.
MAKE_CALL = re.compile(r"(?:^|[\s;&|(`$])make((?:\s+-[A-Za-z-]+)*)((?:\s+[A-Z_]+=\S*)*)"
                       r"\s+([a-z][a-z0-9_-]*)(?=[\s`|;)]|$)")
ALLOWED_HOSTS = {"127.0.0.1", "localhost"}


def fences(text: str) -> list[tuple[int, str, str]]:
    """(line number of the opening fence, language, body) of every fenced block, as pytest-codeblocks reads them."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            start, lang, body = i, m.group(2), []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                body.append(lines[i])
                i += 1
            found.append((start + 1, lang, "\n".join(body)))
        i += 1
    return found


def makefile_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", line)
        if m and not m.group(1).startswith("."):
            targets.add(m.group(1))
    return targets


def make_targets_named(text: str) -> set[str]:
    """Targets of every `make` call in fenced blocks and inline code spans."""
    code = [body for _, _, body in fences(text)] + re.findall(r"`([^`\n]+)`", text)
    return {m.group(3) for chunk in code for line in chunk.splitlines() for m in MAKE_CALL.finditer(line)}


def guide_files() -> list[Path]:
    return [GUIDE / "README.md", *LABS]


def test_six_to_eight_labs():
    assert 6 <= len(LABS) <= 8, [p.name for p in LABS]
    numbers = [int(p.name[:2]) for p in LABS]
    assert numbers == list(range(1, len(LABS) + 1)), "labs are numbered 01, 02, ... without gaps"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_lab_has_the_seven_parts_in_order_and_a_solution(lab):
    text = lab.read_text()
    assert text.startswith(f"# Lab {int(lab.name[:2])}: "), "the title comes first: # Lab N: ..."
    level2 = re.findall(r"^## (.+?)\s*$", text, flags=re.M)
    assert level2 == HEADINGS, f"level-2 headings must be exactly {HEADINGS}, found {level2}"
    solution = text.split("\n## Solution", 1)[1]
    assert re.search(r"<details><summary>Instructor's solution</summary>.+</details>", solution, flags=re.S)
    time = text.split("\n## Time", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\babout \d+ minutes\b", time, flags=re.I), "Time says: about N minutes"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_lab_runs_commands_and_checks_a_result(lab):
    blocks = fences(lab.read_text())
    assert any(lang == "bash" for _, lang, _ in blocks), "a lab without bash blocks tests nothing"
    assert MARKER in lab.read_text(), "every lab checks at least one deterministic result"


def test_index_links_every_lab_and_every_link_exists():
    index = (GUIDE / "README.md").read_text()
    linked = set(re.findall(r"\]\((\d\d-[a-z0-9-]+\.md)\)", index))
    assert linked == {p.name for p in LABS}, f"index links {sorted(linked)}, labs are {[p.name for p in LABS]}"


def test_index_runs_nothing():
    langs = [lang for _, lang, _ in fences((GUIDE / "README.md").read_text())]
    assert not [lang for lang in langs if lang in ("bash", "sh", "python", "zsh")], langs


def test_first_lab_starts_the_stack_and_last_lab_tears_it_down():
    first = [body for _, lang, body in fences(LABS[0].read_text()) if lang == "bash"]
    last = [body for _, lang, body in fences(LABS[-1].read_text()) if lang == "bash"]
    assert first[0].strip() == "make up"
    assert last[-1].strip() == "make down"


@pytest.mark.parametrize("path", guide_files(), ids=lambda p: p.name)
def test_every_make_target_named_exists(path):
    missing = make_targets_named(path.read_text()) - makefile_targets()
    assert not missing, f"{path.name} names make targets the Makefile lacks: {sorted(missing)}"


def test_the_target_check_sees_the_guides_targets():
    """The regex is not vacuous: the guide's core targets are found."""
    named = set().union(*(make_targets_named(p.read_text()) for p in guide_files()))
    assert {"up", "down", "lb", "load", "kill-node", "chaos", "experiment", "bench"} <= named, named
    assert make_targets_named("run `make -s lb MODE=sticky` and\n```bash\nX=1 make bogus-target Y=2\n```") == {
        "lb", "bogus-target"}


@pytest.mark.parametrize("path", guide_files(), ids=lambda p: p.name)
def test_expected_output_follows_a_bash_block(path):
    text = path.read_text()
    lines = text.splitlines()
    blocks = fences(text)
    for number, line in enumerate(lines, start=1):
        if line.strip() != MARKER:
            continue
        before = [b for b in blocks if b[0] < number]
        assert before and before[-1][1] == "bash", f"{path.name}:{number}: the marker must follow a bash block"
        after = [b for b in blocks if b[0] > number]
        assert after and after[0][1] == "text", f"{path.name}:{number}: the expected output is a ```text block"


@pytest.mark.parametrize("path", guide_files(), ids=lambda p: p.name)
def test_no_python_or_sh_fences_and_no_deprecated_markers(path):
    text = path.read_text()
    langs = {lang for _, lang, _ in fences(text)}
    assert not langs & {"python", "sh", "zsh"}, f"{path.name}: use bash to run, text or console to show"
    assert "pytest-codeblocks:skip" not in text, "use <!--pytest.mark.skip(reason=...)--> instead"


@pytest.mark.parametrize("path", guide_files(), ids=lambda p: p.name)
def test_no_latest_tags_and_no_other_hosts(path):
    text = path.read_text()
    assert ":latest" not in text
    ips = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)) - ALLOWED_HOSTS
    assert not ips, f"{path.name}: hard-coded addresses {sorted(ips)}"
    hosts = set(re.findall(r"http://([^/:\s`'\")]+)", text)) - ALLOWED_HOSTS
    assert not hosts, f"{path.name}: http:// URLs to {sorted(hosts)}; the lab answers on 127.0.0.1"
