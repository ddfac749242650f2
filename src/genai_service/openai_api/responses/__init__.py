"""OpenAI's Responses API (`/v1/responses`) over the chat models, with stored responses."""
