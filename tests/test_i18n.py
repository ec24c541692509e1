"""The message catalogue (gateway.i18n): complete in both languages, and language choice.

Every key has an English and a Chinese text with the same ``{placeholders}`` (and, for
the homepage's HTML messages, the same tags); every route of the app has a Chinese
homepage line and an English one; the doctor's stages all have keys. ``negotiate``
(HTTP) and ``lang_from_env`` (command line) are checked on the spellings met in
practice.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import create_app, i18n
from gateway.config import Settings
from gateway.i18n import Lang, lang_from_env, negotiate, text
from gateway.system.views import english_help

HAN = re.compile(r"[\u4e00-\u9fff]")
TAG = re.compile(r"<(/?[a-z]+)")
#: Stage names of the credential doctor, as gateway/doctor.py spells them (and the
#: session-surface stages being added).
DOCTOR_STAGES = (
    "parse token", "user info", "device registration", "credits", "send message",
    "poll to finished", "delete chat", "surface probe", "session config", "agent discovery",
    "create session", "stream answer", "archive session", "signed in", "quota", "code endpoint",
    "count tokens",
)


@pytest.mark.parametrize("key", sorted(i18n.MESSAGES))
def test_every_message_has_both_languages_with_the_same_fields(key: str) -> None:
    message = i18n.MESSAGES[key]
    assert message.en.strip() and message.zh.strip(), key
    assert i18n.placeholders(message.en) == i18n.placeholders(message.zh), key
    if key.startswith("page."):
        assert TAG.findall(message.en) == TAG.findall(message.zh), f"{key}: different HTML tags"


@pytest.mark.parametrize("key", sorted(k for k in i18n.MESSAGES if k != "page.list_separator"))
def test_chinese_texts_are_chinese_and_english_ones_are_not(key: str) -> None:
    assert HAN.search(i18n.MESSAGES[key].zh), f"{key}: no Chinese in the zh text"
    assert not HAN.search(i18n.MESSAGES[key].en), f"{key}: Chinese in the en text"


def test_text_fills_fields_and_unknown_keys_fail() -> None:
    assert text("doctor.not_live", "en", stage="credits") == "NOT LIVE: failed at 'credits'."
    assert text("doctor.likely_cause", "zh", cause="x") == "可能原因：x"
    # A field may be called key or lang: text's own parameters are positional-only.
    assert "K+J" in text("page.clients.intro", "en", key="K+J")
    with pytest.raises(KeyError):
        text("doctor.cause.no_such_cause", "en")


@pytest.mark.parametrize("stage", DOCTOR_STAGES)
def test_every_doctor_stage_has_a_key_whose_english_is_its_name(stage: str) -> None:
    key = i18n.stage_key(stage)
    assert key in i18n.MESSAGES, key
    assert text(key, "en") == stage


def test_every_route_has_a_homepage_line_in_both_languages() -> None:
    app = create_app(Settings())
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    with app.app_context():
        missing_en = sorted(e for e in endpoints if not english_help(e))
    assert missing_en == [], "add a one-line docstring to the view"
    assert sorted(endpoints - set(i18n.ENDPOINT_HELP_ZH)) == [], "add the Chinese line to ENDPOINT_HELP_ZH"
    assert sorted(set(i18n.ENDPOINT_HELP_ZH) - endpoints) == [], "a Chinese line for a route that is gone"
    assert all(HAN.search(line) for line in i18n.ENDPOINT_HELP_ZH.values())


def test_endpoint_help_picks_the_language() -> None:
    assert i18n.endpoint_help("system.ping", "Liveness.", "en") == "Liveness."
    assert i18n.endpoint_help("system.ping", "Liveness.", "zh") == i18n.ENDPOINT_HELP_ZH["system.ping"]


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, "en"),
    ("", "", "en"),
    ("zh", None, "zh"),
    ("zh-CN", "en", "zh"),
    ("cn", None, "zh"),
    ("en", "zh-CN,zh;q=0.9", "en"),
    ("fr", "zh-CN,zh;q=0.9", "zh"),  # an unknown ?lang= falls through to the header
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "zh_TW", "zh"),
    (None, "en-US,en;q=0.9,zh;q=0.8", "en"),
    (None, "fr-FR, zh;q=0.5, en;q=0.4", "zh"),  # the first supported by quality
    (None, "en;q=0.3, zh;q=0.7", "zh"),
    (None, "zh;q=0, en", "en"),  # q=0: not acceptable
    (None, "fr, *;q=0.5", "en"),
    (None, "fr, de", "en"),
    (None, "zh;q=abc, en;q=0.1", "en"),  # a broken quality counts as 0
    (None, ",;, ;q=1", "en"),
])
def test_negotiate(query: str | None, header: str | None, expected: Lang) -> None:
    assert negotiate(query, header) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("zh_CN.UTF-8", "zh"),
    ("zh_TW.Big5", "zh"),
    ("zh_CN.UTF-8@pinyin", "zh"),
    ("en_US.UTF-8", "en"),
    ("C.UTF-8", "en"),
    ("POSIX", "en"),
    ("C", "en"),
    ("", "en"),
    (None, "en"),
    ("de_DE.UTF-8", "en"),
    ("zh_CN:en_US", "zh"),  # GNU LANGUAGE lists
    ("de:zh_CN", "zh"),
])
def test_lang_from_env(value: str | None, expected: Lang) -> None:
    assert lang_from_env(value) == expected


@pytest.mark.parametrize("key", sorted(k for k in i18n.MESSAGES if k.startswith("page.")))
def test_every_page_message_is_used_by_the_homepage(key: str) -> None:
    source = (Path(__file__).parent.parent / "templates" / "index.html").read_text(encoding="utf-8")
    views = (Path(__file__).parent.parent / "gateway" / "system" / "views.py").read_text(encoding="utf-8")
    # The credential steps are looked up in a loop: "page.credential." ~ step.
    step = key.removeprefix("page.credential.")
    assert f"'{key}'" in source or f'"{key}"' in views or f'"{step}"' in source, f"{key} is not used"
