from gateway.chat.model import Finish, ReasoningDelta, TextDelta, Usage
from gateway.chat.transforms import count_usage, cut_at_stop_sequences, limit_output_tokens


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_stop_sequence_split_across_deltas_is_cut() -> None:
    events = list(cut_at_stop_sequences(
        [TextDelta("Hello EN"), TextDelta("D world"), Finish("stop")], ("END",)
    ))
    assert text_of(events) == "Hello "
    assert events[-1] == Finish("stop_sequence", "END")


def test_partial_stop_prefix_is_released_when_it_is_not_a_stop() -> None:
    events = list(cut_at_stop_sequences(
        [TextDelta("a E"), TextDelta("Nx"), Finish("stop")], ("END",)
    ))
    assert text_of(events) == "a ENx"
    assert events[-1] == Finish("stop")


def test_text_flows_immediately_when_it_cannot_start_a_stop() -> None:
    stream = cut_at_stop_sequences(iter([TextDelta("abc"), TextDelta("d")]), ("XYZ",))
    assert next(stream) == TextDelta("abc")


def test_limit_cuts_at_token_budget() -> None:
    events = list(limit_output_tokens([TextDelta("a" * 10), TextDelta("b" * 10), Finish("stop")], 3))
    assert text_of(events) == "a" * 10 + "b" * 2
    assert events[-1] == Finish("length")


def test_usage_comes_right_before_finish() -> None:
    events = list(count_usage([ReasoningDelta("中文"), TextDelta("abcdefgh"), Finish("stop")], 7))
    assert events[-2] == Usage(7, 4, 2)
