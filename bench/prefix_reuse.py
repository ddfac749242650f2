"""Time to first token of a long conversation's next turn, with and without prefix reuse.

Two servers (the engine's prefix reuse on, and off), three conversations of ten turns each,
one after another, built on each through streamed `/v1/chat/completions` (each turn sends the
whole history again, as chat clients do), alternating turn by turn so background load hits both
alike, and which of the two goes first from turn to turn. The conversations are on different
subjects, so one shares no more with another than the chat template's start. Each server answers
one short request first, so that the first turn is not also the first to page the model's
weights in (the second server would find them in the page cache). Printed, as medians over the
conversations: the first turn's time to first token (no regression) and the tenth's (about
1,500 prompt tokens).
Run: `python -m bench.prefix_reuse`.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import httpx
from loguru import logger

from bench.http_load import genai_server, load_average

TURNS = 10
REPLY_TOKENS = 48
SUBJECTS = (
    "lighthouses, their keepers, the lenses they used and the ships they guided along "
    "dangerous coasts",
    "canals, their locks, the horses that towed the boats and the towns that grew along them",
    "windmills, their sails, the millers who kept them and the grain and water they moved",
)
"""One conversation on each."""
QUESTION = (
    "Here is part {turn} of my notes on the history of {subject}; summarise what is new in "
    "this part in a few sentences and tell me what to read next about it. "
)


WARM_UP = "Say hello."


def _ttft(client: httpx.Client, messages: list[dict[str, str]]) -> tuple[float, str, int]:
    """Seconds to the first content chunk, the whole reply, and the prompt's tokens."""
    body: dict[str, Any] = {
        "messages": messages,
        "max_tokens": REPLY_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    prompt_tokens = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = httpx.Response(200, content=line.removeprefix("data: ")).json()
            if chunk.get("usage"):
                prompt_tokens = chunk["usage"]["prompt_tokens"]
            for choice in chunk["choices"]:
                text = choice["delta"].get("content")
                if text:
                    first = first or time.perf_counter() - started
                    parts.append(text)
    return first or float("nan"), "".join(parts), prompt_tokens


def main() -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(f"load_average_before {load_average()}")
    with (
        genai_server() as reusing,
        genai_server(GENAI_INFERENCE__LOCAL_CHAT__REUSE_PREFIXES="false") as plain,
        httpx.Client(base_url=reusing.base_url, timeout=600) as with_reuse,
        httpx.Client(base_url=plain.base_url, timeout=600) as without_reuse,
    ):
        clients = {"with": with_reuse, "without": without_reuse}
        first: dict[str, list[float]] = {"with": [], "without": []}
        last: dict[str, list[float]] = {"with": [], "without": []}
        prompt_tokens = 0
        for client in clients.values():
            _ttft(client, [{"role": "user", "content": WARM_UP}])
        for subject in SUBJECTS:
            histories: dict[str, list[dict[str, str]]] = {"with": [], "without": []}
            for turn in range(1, TURNS + 1):
                for name in ("with", "without") if turn % 2 else ("without", "with"):
                    history = histories[name]
                    question = QUESTION.format(turn=turn, subject=subject) * 2
                    history.append({"role": "user", "content": question})
                    seconds, reply, prompt_tokens = _ttft(clients[name], history)
                    history.append({"role": "assistant", "content": reply})
                    if turn == 1:
                        first[name].append(seconds)
                    elif turn == TURNS:
                        last[name].append(seconds)
    median = {name: statistics.median(values) for name, values in first.items()}
    print(f"prefix_turn1_ttft_ms_with_reuse {median['with'] * 1000:.1f}")
    print(f"prefix_turn1_ttft_ms_without_reuse {median['without'] * 1000:.1f}")
    print(f"prefix_turn{TURNS}_prompt_tokens {prompt_tokens}")
    median = {name: statistics.median(values) for name, values in last.items()}
    print(f"prefix_turn{TURNS}_ttft_ms_with_reuse {median['with'] * 1000:.1f}")
    print(f"prefix_turn{TURNS}_ttft_ms_without_reuse {median['without'] * 1000:.1f}")
    print(f"prefix_turn{TURNS}_with_over_without {median['with'] / median['without']:.2f}")
    print(f"prefix_conversations {len(SUBJECTS)}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
