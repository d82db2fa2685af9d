"""``detect_language`` counting by runs and in C (issue 21: ~110 µs a note in a rebuild) gives what
counting each character does: a reference implementation of the rule, letter by letter."""

import random
import re

import pytest

from kb.notes import detect_language


def reference(text: str) -> str:
    """The rule as its docstring states it, one character at a time."""
    text = re.sub(r"https?://\S+", "", text)
    japanese = sum(1 for ch in text if ch == "\u3005" or "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u4dbf"
                   or "\u4e00" <= ch <= "\u9fff" or "\uff66" <= ch <= "\uff9f")
    latin = sum(1 for ch in text if "a" <= ch <= "z" or "A" <= ch <= "Z")
    return "ja" if japanese and japanese * 5 >= japanese + latin else "en"


@pytest.mark.parametrize("text, lang", [
    ("", "en"), ("Detection as one regression.", "en"), ("物体検出を一回の回帰で解く。", "ja"),
    ("漢abcd", "ja"), ("漢abcde", "en"),                       # one kanji against four and five letters
    ("漢 https://example.com/abcdefghijklmnop", "ja"),          # a link's letters do not count
    ("Café résumé naïve", "en"), ("ｦﾟ々", "ja"),
])
def test_by_hand(text, lang):
    assert detect_language(text) == reference(text) == lang


def test_random_mixes_match_the_reference():
    rng = random.Random(21)
    alphabet = "aZq 漢かナー々ｦﾟ。、\u3000é1/:.https://ｱ"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for variant in (text, f"{text} https://github.com/{text.strip()} {text}"):
            assert detect_language(variant) == reference(variant), variant
