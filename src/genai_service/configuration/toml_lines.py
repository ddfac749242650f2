"""The line of every key and array element of a TOML document.

`tomllib` reports lines only for syntax errors; a value that parses but does not validate (a
negative timeout in the second provider of a chain) should still be reported at its line. This
scanner walks a document that `tomllib` has already accepted and records where each key path
starts: `("inference", "chat_models", "assistant", 1, "timeout") -> 14`.
"""

from __future__ import annotations

import tomllib

KeyPath = tuple[str | int, ...]

BARE_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
VALUE_ENDS = frozenset(",]}#\n\r")


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path of a valid TOML document to the line (1-based) where it is written."""
    scanner = _Scanner(text)
    scanner.document()
    return scanner.lines


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.array_tables: dict[tuple[str, ...], int] = {}
        """Index of the newest `[[table]]` element, by the table's path without indices."""

    def document(self) -> None:
        table: KeyPath = ()
        while self.pos < len(self.text):
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.text.startswith("[[", self.pos):
                table = self.header(array=True)
            elif self.text[self.pos] == "[":
                table = self.header(array=False)
            else:
                self.key_value(table)

    def header(self, *, array: bool) -> KeyPath:
        line = self.line
        self.advance(2 if array else 1)
        self.skip_blank(newlines=False)
        names = self.key()
        self.skip_blank(newlines=False)
        self.advance(2 if array else 1)
        if array:
            names_key = tuple(names)
            self.array_tables[names_key] = self.array_tables.get(names_key, -1) + 1
        path: KeyPath = ()
        for depth, name in enumerate(names):
            path = (*path, name)
            self.lines.setdefault(path, line)
            index = self.array_tables.get(tuple(names[: depth + 1]))
            if index is not None:
                path = (*path, index)
                self.lines.setdefault(path, line)
        return path

    def key_value(self, table: KeyPath) -> None:
        line = self.line
        path = (*table, *self.key())
        self.lines.setdefault(path, line)
        self.skip_blank(newlines=False)
        self.advance(1)  # "="
        self.skip_blank(newlines=False)
        self.value(path)

    def key(self) -> list[str]:
        names: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            char = self.text[self.pos]
            if char in "\"'":
                start = self.pos
                self.string()
                names.append(tomllib.loads(f"k = {self.text[start : self.pos]}")["k"])
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in BARE_KEY_CHARACTERS:
                    self.pos += 1
                names.append(self.text[start : self.pos])
            self.skip_blank(newlines=False)
            if self.pos < len(self.text) and self.text[self.pos] == ".":
                self.advance(1)
                continue
            return names

    def value(self, path: KeyPath) -> None:
        char = self.text[self.pos]
        if char in "\"'":
            self.string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in VALUE_ENDS:
                self.pos += 1

    def array(self, path: KeyPath) -> None:
        self.advance(1)
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.text[self.pos] == "]":
                self.advance(1)
                return
            self.lines.setdefault((*path, index), self.line)
            self.value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.text[self.pos] == ",":
                self.advance(1)

    def inline_table(self, path: KeyPath) -> None:
        self.advance(1)
        while True:
            self.skip_blank(newlines=True)
            if self.text[self.pos] == "}":
                self.advance(1)
                return
            self.key_value(path)
            self.skip_blank(newlines=True)
            if self.text[self.pos] == ",":
                self.advance(1)

    def string(self) -> None:
        quote = self.text[self.pos]
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            end = self.text.find(quote * 3, self.pos)
            while quote == '"' and _escaped(self.text, end):
                end = self.text.find(quote * 3, end + 1)
            # Quotes right after the closing delimiter belong to the value.
            while self.text.startswith(quote, end + 3):
                end += 1
            self.advance(end + 3 - self.pos)
            return
        self.advance(1)
        while self.text[self.pos] != quote:
            self.advance(2 if quote == '"' and self.text[self.pos] == "\\" else 1)
        self.advance(1)

    def skip_blank(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self.advance(1)
            elif char == "#":
                while self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
                    self.pos += 1
            else:
                return

    def advance(self, count: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` follows an odd number of backslashes."""
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
