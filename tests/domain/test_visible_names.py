"""Names that show what they are: invisible and reordering characters are found."""

from __future__ import annotations

import pytest

from peerdp.domain.visible_names import check_visible, invisible_character


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("setup\u202eexe.txt", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("Acme\u200bViewer", "U+200B ZERO WIDTH SPACE"),
        ("a\u2028b", "U+2028 LINE SEPARATOR"),
        ("a\u2029b", "U+2029 PARAGRAPH SEPARATOR"),
        ("a\x7fb", "U+007F control character"),
        ("a\x85b", "U+0085 control character"),
        ("a\x00b", "U+0000 control character"),
        ("\ufeffname", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("a\u2066b", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ],
)
def test_invisible_characters_are_found_and_named(text: str, found: str) -> None:
    assert invisible_character(text) == found
    with pytest.raises(ValueError, match=found.split()[0].replace("+", r"\+")):
        check_visible(text, "package name")


@pytest.mark.parametrize(
    "text", ["Acme Viewer 2.1", "Café-Paris", "ÄÖÜ_Ω", "名前", "a\u00a0b", "emoji 🚀", "x/y\\z"]
)
def test_visible_names_pass(text: str) -> None:
    assert invisible_character(text) is None
    assert check_visible(text) == text


def test_the_message_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^program name must not contain invisible"):
        check_visible("x\u200by", "program name")
