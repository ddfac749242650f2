"""`config example`: a file with every setting at its default, written from the settings model."""

from __future__ import annotations

from genai_service.configuration.toml_render import Layout, render
from genai_service.settings import Settings

HEADER = """\
# genai-service configuration: every setting, commented out at its default.
#
# Read from $GENAI_CONFIG, else ./genai-service.toml. Uncomment a line to change a setting.
# Environment variables override this file: GENAI_INFERENCE__LOCAL_CHAT__N_CTX overrides
# n_ctx in [inference.local_chat]. A string "env:NAME" is the value of the environment
# variable NAME, so secrets stay out of the file: api_key = "env:OPENAI_API_KEY".
# Check a file with: genai-service config check

"""


def example_file() -> str:
    defaults = Settings.model_construct().model_dump(mode="json")
    return HEADER + render(Settings, defaults, Layout(example=True))
