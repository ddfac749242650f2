from __future__ import annotations

import pytest

from genai_service.inference.local.reply_text import ReplyText


def feed(reply: ReplyText, pieces: list[bytes]) -> list[str]:
    return [reply.push(piece) for piece in pieces]


def test_characters_split_across_tokens_come_out_whole() -> None:
    data = "né 日本 🎉".encode()
    reply = ReplyText(stop=())

    sent = feed(reply, [data[i : i + 1] for i in range(len(data))])

    assert "".join(sent) + reply.flush() == "né 日本 🎉"
    assert all("\ufffd" not in part for part in sent)


def test_a_character_cut_by_the_end_of_the_reply_is_dropped() -> None:
    reply = ReplyText(stop=())

    sent = reply.push(b"ok " + "日".encode()[:2])

    assert sent + reply.flush() == "ok "


@pytest.mark.parametrize(
    ("pieces", "stop", "expected"),
    [
        (["Hello", " wor", "ld", " again"], ("world",), "Hello "),
        (["a", "b", "c", "END", "x"], ("END",), "abc"),
        (["E", "N", "D"], ("END",), ""),
        (["xx", "<|", "stop", "|>", "yy"], ("<|stop|>", "zz"), "xx"),
        (["one ", "two ", "three"], ("two", "one two"), ""),
    ],
)
def test_stop_sequence_ends_the_reply_without_leaking(
    pieces: list[str], stop: tuple[str, ...], expected: str
) -> None:
    reply = ReplyText(stop=stop)

    sent = feed(reply, [p.encode() for p in pieces])

    assert reply.stopped
    assert "".join(sent) + reply.flush() == expected


def test_text_that_only_looked_like_a_stop_sequence_is_released() -> None:
    reply = ReplyText(stop=("STOP",))

    held = reply.push(b"ST")
    released = reply.push(b"ART")

    assert held == ""
    assert released == "START"
    assert not reply.stopped


def test_held_prefix_of_a_stop_sequence_is_sent_when_the_reply_ends() -> None:
    reply = ReplyText(stop=("</answer>",))

    sent = reply.push(b"42 </ans")

    assert sent == "42 "
    assert reply.flush() == "</ans"
