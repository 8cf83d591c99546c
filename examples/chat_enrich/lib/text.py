"""Text helpers shared by the app's nodes."""


def preview(text: str, chars: int) -> str:
    """The first ``chars`` characters, with an ellipsis if the text was cut."""
    return text if len(text) <= chars else text[: max(chars - 1, 0)] + "…"


def word_count(text: str) -> int:
    return len(text.split())
