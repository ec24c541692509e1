"""The two READMEs (README.md in English, README.zh-CN.md in Chinese) say the same.

Neither may silently fall behind the other: both link each other at the top, have the
same heading structure with the same code blocks per section (the set-up commands
byte-identical, and the one .ci/run uses among them), list the same endpoints and the
same settings, and the settings are exactly the code's (``gateway.config.env_table``),
each with its default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import env_table

ROOT = Path(__file__).parent.parent
ENGLISH = ROOT / "README.md"
CHINESE = ROOT / "README.zh-CN.md"
READMES = (ENGLISH, CHINESE)
#: How many lines from the top the link to the other language must appear within.
LINK_WITHIN_LINES = 5
HAN = re.compile(r"[\u4e00-\u9fff]")
FENCE = re.compile(r"^```(\S*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
SETTING_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| `([^`]*)` \|", re.MULTILINE)
ENDPOINT_ROW = re.compile(r"^\| (`(?:GET|POST|PUT|PATCH|DELETE) [^|]*?)\s\|", re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`]+)`")


@dataclass
class Section:
    """One heading and what follows it up to the next heading."""

    level: int
    title: str
    code_blocks: list[tuple[str, str]]  # (info string, body)


def sections(text: str) -> list[Section]:
    """Headings outside code fences, each with the fenced blocks under it."""
    found = [Section(0, "", [])]
    fence: tuple[str, list[str]] | None = None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if line.startswith("```"):
                found[-1].code_blocks.append((fence[0], "\n".join(fence[1])))
                fence = None
            else:
                fence[1].append(line)
        elif opening:
            fence = (opening[1], [])
        elif heading := HEADING.match(line):
            found.append(Section(len(heading[1]), heading[2], []))
    assert fence is None, "an unclosed code fence"
    return found


def endpoints(text: str) -> list[tuple[str, ...]]:
    """The method-and-path code spans of each endpoint table row, in order."""
    return [tuple(CODE_SPAN.findall(cell)) for cell in ENDPOINT_ROW.findall(text)]


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in READMES}


def test_each_links_the_other_at_the_top(texts: dict[str, str]) -> None:
    top = {name: "\n".join(text.splitlines()[:LINK_WITHIN_LINES]) for name, text in texts.items()}
    assert f"]({CHINESE.name})" in top[ENGLISH.name]
    assert f"]({ENGLISH.name})" in top[CHINESE.name]


def test_same_heading_structure_and_code_blocks(texts: dict[str, str]) -> None:
    english, chinese = (sections(texts[path.name]) for path in READMES)
    assert [s.level for s in english] == [s.level for s in chinese], (
        [s.title for s in english], [s.title for s in chinese])
    for en, zh in zip(english, chinese, strict=True):
        assert [info for info, _ in en.code_blocks] == [info for info, _ in zh.code_blocks], (en.title, zh.title)


def test_the_chinese_headings_are_chinese(texts: dict[str, str]) -> None:
    titles = [s.title for s in sections(texts[CHINESE.name])[2:]]  # after the project name
    assert titles and all(HAN.search(title) for title in titles), titles


def test_the_set_up_commands_are_the_same_and_run_by_ci(texts: dict[str, str]) -> None:
    english, chinese = (sections(texts[path.name]) for path in READMES)
    set_up_en, set_up_zh = english[2], chinese[2]  # the first section after the introduction
    assert len(set_up_en.code_blocks) == 2, "the README has exactly two set-up commands"
    assert set_up_en.code_blocks == set_up_zh.code_blocks
    ci = (ROOT / ".ci" / "run").read_text()
    assert set_up_en.code_blocks[1][1] in ci.splitlines(), "the test command is not what .ci/run runs"


def test_the_set_up_commands_work_without_a_system_pip(texts: dict[str, str]) -> None:
    # A stock Debian 12 / Ubuntu 24.04 refuses `pip install` outside a virtual environment
    # (PEP 668): both commands make one in .venv and run everything from it.
    run, test = (body for _, body in sections(texts[ENGLISH.name])[2].code_blocks)
    assert run == ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && "
                   ".venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app")
    assert test == ("python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt && "
                    ".venv/bin/python -m ruff check . && .venv/bin/python -m mypy && .venv/bin/python -m pytest")
    for command in (run, test):
        steps = command.split(" && ")
        assert steps[0] == "python3 -m venv .venv"
        assert all(step.startswith(".venv/bin/") for step in steps[1:]), steps
    # And the README says where the venv module comes from on Debian and Ubuntu.
    for text in texts.values():
        assert "python3-venv" in text.split("```", 1)[0]


def test_same_endpoints(texts: dict[str, str]) -> None:
    english, chinese = (endpoints(texts[path.name]) for path in READMES)
    assert english, "no endpoint table found"
    assert english == chinese


def test_same_settings_with_the_same_defaults(texts: dict[str, str]) -> None:
    english, chinese = (SETTING_ROW.findall(texts[path.name]) for path in READMES)
    assert english, "no settings table found"
    assert english == chinese
    assert len(set(english)) == len(english), "a setting is listed twice"


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.name)
def test_the_settings_table_is_the_codes(readme: Path) -> None:
    listed = set(SETTING_ROW.findall(readme.read_text(encoding="utf-8")))
    code = {(name, default) for name, default, _ in env_table()}
    assert sorted(code - listed) == [], "settings missing from the README (or with another default)"
    assert sorted(listed - code) == [], "README rows for settings the code does not have"
