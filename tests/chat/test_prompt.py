import pytest

from gateway.chat.prompt import TRANSCRIPT_PREFACE, fold
from gateway.errors import InvalidRequest
from gateway.parts import Message, TextPart


def msg(role: str, text: str) -> Message:
    return Message(role, (TextPart(text),))


def test_single_user_message_goes_as_it_is() -> None:
    assert fold([msg("user", "hi")], 1000) == "hi"


def test_history_becomes_a_labelled_transcript() -> None:
    prompt = fold([msg("system", "be brief"), msg("user", "a"), msg("assistant", "b"), msg("user", "c")], 10_000)
    assert prompt.startswith(TRANSCRIPT_PREFACE)
    assert prompt.index("[System]\nbe brief") < prompt.index("[User]\na") < prompt.index("[Assistant]\nb") < prompt.index("[User]\nc")


def test_oldest_turns_drop_first_and_system_stays() -> None:
    history = [msg("system", "SYS")] + [msg("user" if i % 2 == 0 else "assistant", f"turn{i} " + "x" * 50) for i in range(20)]
    prompt = fold(history, len(TRANSCRIPT_PREFACE) + 400)
    assert "SYS" in prompt and "turn19" in prompt
    assert "turn0 " not in prompt
    kept = [i for i in range(20) if f"turn{i} " in prompt]
    assert kept == list(range(kept[0], 20))


def test_too_large_even_alone_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest) as info:
        fold([msg("user", "x" * 100)], 50)
    assert info.value.param == "messages"
