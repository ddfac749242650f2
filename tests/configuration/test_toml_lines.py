from __future__ import annotations

import tomllib

from genai_service.configuration.toml_lines import key_lines

DOCUMENT = '''\
# a comment with = and [brackets]
name = "a # not a comment"
a.b = 'literal [x]'

[inference]
default_chat_model = "assistant" # trailing comment

[inference.chat_models]
"quoted.name" = [{ kind = "local" }]
assistant = [
  # first a comment
  { kind = "openai_compatible", base_url = "http://x/v1", timeout = 30 },

  { kind = "local", model = """multi
line ]"""},
]

[[servers]]
host = "one"

[[servers]]
host = "two"
ports = [
  1,
  2,
]

[servers.extra]
note = \'\'\'it's
three\'\'\'
after = true
'''


def test_every_key_and_element_has_its_line() -> None:
    tomllib.loads(DOCUMENT)  # the scanner only ever sees valid documents
    lines = key_lines(DOCUMENT)
    assert lines[("name",)] == 2
    assert lines[("a", "b")] == 3
    assert lines[("inference",)] == 5
    assert lines[("inference", "default_chat_model")] == 6
    assert lines[("inference", "chat_models", "quoted.name")] == 9
    assert lines[("inference", "chat_models", "quoted.name", 0, "kind")] == 9
    assert lines[("inference", "chat_models", "assistant")] == 10
    assert lines[("inference", "chat_models", "assistant", 0)] == 12
    assert lines[("inference", "chat_models", "assistant", 0, "timeout")] == 12
    assert lines[("inference", "chat_models", "assistant", 1, "model")] == 14
    assert lines[("servers", 0, "host")] == 19
    assert lines[("servers", 1)] == 21
    assert lines[("servers", 1, "ports", 1)] == 25
    assert lines[("servers", 1, "extra", "note")] == 29
    assert lines[("servers", 1, "extra", "after")] == 31
