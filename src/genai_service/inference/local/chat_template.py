"""The prompt format of a GGUF chat model: its `tokenizer.chat_template`, rendered with Jinja2."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

import llama_cpp
from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from loguru import logger

from genai_service.inference.base import ChatMessage
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.kit.errors import BadRequest

# Used when a GGUF carries no template; ChatML is what most small instruct models expect.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplateRejected(BadRequest):
    """The model's own template refused the conversation (e.g. roles that do not alternate)."""

    title = "Conversation not supported by the model"
    slug = "chat-template-rejected"


def _raise_exception(message: str) -> NoReturn:
    raise ChatTemplateRejected(message)


def _strftime_now(pattern: str) -> str:
    return datetime.now().strftime(pattern)


class ChatTemplate:
    """Renders messages the way the model was trained to read them, ending with the reply prompt."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str) -> None:
        # trim_blocks/lstrip_blocks and loopcontrols match how Hugging Face renders these templates.
        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        self._template = environment.from_string(source)
        self.renders_tool_role = "tool" in source
        """Whether the template knows the `tool` role (else tool results go in user messages)."""
        self._bos_token = bos_token
        self._eos_token = eos_token

    @classmethod
    def from_model(cls, model: llama_cpp.llama_model_p, vocabulary: Vocabulary) -> ChatTemplate:
        raw: bytes | None = llama_cpp.llama_model_chat_template(model, None)
        if raw is None:
            logger.warning("the GGUF has no tokenizer.chat_template; using ChatML")
            source = CHATML_TEMPLATE
        else:
            source = raw.decode("utf-8")
        return cls(
            source,
            bos_token=vocabulary.text_of(vocabulary.bos),
            eos_token=vocabulary.text_of(vocabulary.eos),
        )

    def render(self, messages: Sequence[ChatMessage]) -> str:
        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
                raise_exception=_raise_exception,
                strftime_now=_strftime_now,
            )
        except TemplateError as error:
            raise ChatTemplateRejected(f"the model's chat template failed: {error}") from error
