"""The cursor under the filter parser: position, whitespace, words, quoted tokens, and error
messages that name the column and what was found there."""

from __future__ import annotations

import re
from typing import Final, NoReturn

from tracklane.exceptions import InvalidArgument

__all__ = ["INTEGER", "NUMBER", "QUOTES", "WORD", "Scanner", "clip"]

# ASCII only: str patterns' \d and \w would accept other scripts' digits, which float() then parses.
WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SNIPPET: Final = re.compile(r"[A-Za-z0-9_.+-]+|[=!<>]+")
QUOTES: Final = ("`", '"', "'")
NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER: Final = re.compile(r"[+-]?[0-9]+")


def clip(text: str) -> str:
    """User text shortened for a message: gRPC carries messages in headers, which have size limits."""
    return text if len(text) <= 40 else text[:40] + "..."


class Scanner:
    """A cursor over one filter or order-by item; the parser's methods consume input or raise.

    Args:
        text: The item.
        label: Names the item in error messages (``filter``, ``order_by[0]``).
        field: The request field errors name.
        noun: What the item is, for "the end of the ..." in messages.
    """

    def __init__(self, text: str, *, label: str, field: str, noun: str) -> None:
        self.text = text
        self.pos = 0
        self.label = label
        self.field = field
        self.noun = noun

    def fail(self, pos: int, message: str) -> NoReturn:
        raise InvalidArgument(f"{self.label}: at column {pos + 1}: {message}", field=self.field)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self) -> str:
        """The ASCII word at the cursor ('' if none), not consumed."""
        match = WORD.match(self.text, self.pos)
        return match.group() if match else ""

    def snippet(self, pos: int) -> str:
        """The token-ish text at ``pos`` ('' at the end), shortened for an error message."""
        if pos >= len(self.text):
            return ""
        match = _SNIPPET.match(self.text, pos)
        snippet = match.group() if match else self.text[pos]
        if snippet in QUOTES:
            closing = self.text.find(snippet, pos + 1, pos + 40)
            snippet = self.text[pos : closing + 1] if closing > 0 else snippet
        return clip(snippet)

    def found(self, pos: int | None = None) -> str:
        """Describes the input at ``pos`` (default: the cursor) for an error message."""
        snippet = self.snippet(self.pos if pos is None else pos)
        return repr(snippet) if snippet else f"the end of the {self.noun}"

    def quoted(self, what: str) -> str:
        """Reads a quoted token at the cursor; a doubled quote character stands for itself."""
        quote, start = self.text[self.pos], self.pos
        parts: list[str] = []
        i = start + 1
        while True:
            j = self.text.find(quote, i)
            if j < 0:
                self.fail(start, f"unterminated {what}: add the closing {quote}")
            parts.append(self.text[i:j])
            if self.text.startswith(quote, j + 1):
                parts.append(quote)
                i = j + 2
                continue
            self.pos = j + 1
            return "".join(parts)

    def word_at(self, pos: int) -> str:
        match = WORD.match(self.text, pos)
        return match.group() if match else ""
