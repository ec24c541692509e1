from gateway.chat.tokens import TokenCounter, estimate_tokens


def test_estimate_counts_cjk_per_char_and_latin_per_four() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("中文") == 2
    assert estimate_tokens("中文abcd") == 3


def test_longer_text_counts_more() -> None:
    assert estimate_tokens("word " * 100) > estimate_tokens("word " * 10)


def test_fitting_respects_the_budget() -> None:
    counter = TokenCounter()
    counter.add("abcd")
    assert counter.fitting("efghijkl", 2) == "efgh"
    assert counter.fitting("中文", 2) == "中"
