// A conversation: its messages, the composer, the streamed reply with its Stop button, and the
// pick-up of a reply that was being written when the page was reloaded or the chat switched.

import { ApiError } from "./api.js";
import { askText, confirmAction } from "./dialogs.js";
import { DocumentScope } from "./document-scope.js";
import { announce, byId, show, toast } from "./dom.js";
import { AssistantMessage, userMessage } from "./message-view.js";
import { ReplyStream } from "./replies.js";

const HISTORY_LIMIT = 100;
const STORED_REPLY_POLL_MS = 1500;
const TITLE_DELAYS_MS = [2000, 4000, 8000, 16000];

export class ChatView {
  conversation = null;
  /** The reply this page is reading: `{conversationId, stream, reply}`. */
  #following = null;
  #opened = 0;
  #modelsLoaded = false;
  /** A new chat's conversation is being created (its first question waits for it). */
  #starting = false;
  /** A conversation is being loaded: until it is on screen, a question would go to the one before. */
  #loading = false;

  constructor({ api, replies, conversations, citations }) {
    this.api = api;
    this.replies = replies;
    this.conversations = conversations;
    this.citations = citations;
    this.messages = byId("messages");
    this.input = byId("message-input");
    this.scope = new DocumentScope(api, { onChange: (value) => this.#changeDocuments(value) });
    byId("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#send();
      }
    });
    byId("stop").addEventListener("click", () => this.#stop());
    byId("rename-chat").addEventListener("click", () => this.#rename());
    byId("delete-chat").addEventListener("click", () => this.#delete());
  }

  /** Show a conversation (`null`: a new chat). */
  async open(conversationId) {
    const opened = ++this.#opened;
    this.leave();
    this.messages.replaceChildren();
    this.#setLoading(conversationId !== null);
    show(byId("chat-view"));
    this.conversations.markActive(conversationId);
    if (conversationId === null) {
      this.conversation = null;
      this.#showHeader();
      if (!this.#modelsLoaded) this.#loadModels();
      await this.scope.set(null);
      this.input.focus();
      return;
    }
    let history;
    try {
      this.conversation = await this.api.get(`/api/conversations/${conversationId}`);
      history = await this.#history(conversationId);
    } catch (error) {
      if (opened !== this.#opened) return;
      this.#setLoading(false);
      toast(error instanceof ApiError && error.status === 404 ? "There is no such conversation." : error.message);
      location.hash = "#/chat/new";
      return;
    }
    if (opened !== this.#opened) return;
    this.#setLoading(false);
    this.#showHeader();
    for (const message of history) this.messages.append(this.#stored(message, history));
    this.#showEmpty();
    this.scope.set(this.conversation.documents);
    this.#scrollToEnd();
    const last = history.at(-1);
    if (last?.role === "user") await this.#pickUp(conversationId, last.content, opened);
  }

  /** Stop reading the reply on screen (the server goes on writing it). */
  leave() {
    this.#following?.stream.abort();
    this.#following = null;
    this.#setRunning(false);
  }

  /** When the page is hidden: keep what the reply on screen had, to pick it up after a reload. */
  park() {
    if (this.#following !== null && this.#following.stream.generationId !== null) {
      this.replies.park(this.#following.conversationId, this.#following.stream);
    }
  }

  focusComposer() {
    this.input.focus();
  }

  async #history(conversationId) {
    const url = `/api/conversations/${conversationId}/messages`;
    const first = await this.api.get(`${url}?limit=${HISTORY_LIMIT}`);
    if (first.total <= HISTORY_LIMIT) return first.items;
    const latest = await this.api.get(`${url}?limit=${HISTORY_LIMIT}&offset=${first.total - HISTORY_LIMIT}`);
    return latest.items;
  }

  #stored(message, history) {
    if (message.role === "user") return userMessage(message.content);
    const question = history[history.indexOf(message) - 1];
    const reply = this.#newReply(question?.content ?? "");
    reply.finish(message);
    return reply.element;
  }

  #newReply(question) {
    return new AssistantMessage({
      onRetry: () => this.#ask(question),
      onCitation: (number, citation, link) => this.#showCitation(number, citation, link),
    });
  }

  async #showCitation(number, citation, link) {
    this.citations.dialog.addEventListener("close", () => link.focus(), { once: true });
    await this.citations.open(number, citation);
  }

  async #send() {
    if (this.#following !== null || this.#starting || this.#loading) return;
    const content = this.input.value.trim();
    if (!content) return;
    if (this.conversation === null) {
      this.#starting = true;
      try {
        this.conversation = await this.api.post("/api/conversations", {
          model: byId("model-picker").value || null,
          system_prompt: byId("system-prompt").value.trim() || null,
          documents: this.scope.value(),
        });
      } catch (error) {
        toast(`The chat could not be started: ${error.message}`);
        return;
      } finally {
        this.#starting = false;
      }
      byId("system-prompt").value = "";
      history.replaceState(null, "", `#/chat/${this.conversation.id}`);
      this.#showHeader();
      this.conversations.markActive(this.conversation.id);
      this.conversations.refresh();
    }
    this.input.value = "";
    await this.#ask(content);
  }

  async #ask(content) {
    if (this.#following !== null || this.conversation === null) return;
    const conversationId = this.conversation.id;
    const question = userMessage(content);
    const reply = this.#newReply(content);
    this.messages.append(question, reply.element);
    this.#showEmpty();
    reply.streaming();
    this.#scrollToEnd();
    const stream = new ReplyStream(this.api);
    this.#following = { conversationId, stream, reply };
    this.#setRunning(true);
    try {
      await stream.start(conversationId, this.#turnOptions(content), this.#handlers(conversationId, stream, reply));
    } catch (error) {
      if (stream.aborted) return;
      if (stream.generationId === null) {
        // Refused before anything was stored: the question goes back to the composer.
        question.remove();
        reply.element.remove();
        this.input.value = content;
        this.#showEmpty();
        toast(error.message);
      } else {
        reply.finish(null, { streamedText: stream.text, detail: error.message });
      }
    } finally {
      this.#done(stream);
    }
  }

  /** A reply that was being written when this conversation was last on screen. */
  async #pickUp(conversationId, question, opened) {
    const known = this.replies.known(conversationId) ?? (await this.replies.ask(conversationId));
    if (opened !== this.#opened) return;
    const reply = this.#newReply(question);
    this.messages.append(reply.element);
    this.#showEmpty();
    if (known === null) {
      reply.waiting();
      await this.#waitForStoredReply(conversationId, reply, opened);
      return;
    }
    reply.streaming(known.text);
    this.#scrollToEnd();
    this.replies.remember(conversationId, known.generationId);
    const stream = new ReplyStream(this.api, known);
    this.#following = { conversationId, stream, reply };
    this.#setRunning(true);
    try {
      await stream.resume(this.#handlers(conversationId, stream, reply));
    } catch (error) {
      if (stream.aborted) return;
      if (error instanceof ApiError && (error.status === 404 || error.status === 410)) {
        await this.#waitForStoredReply(conversationId, reply, opened);
      } else {
        reply.finish(null, { streamedText: stream.text, detail: error.message });
      }
    } finally {
      this.#done(stream);
    }
  }

  #handlers(conversationId, stream, reply) {
    return {
      started: (generationId) => this.replies.remember(conversationId, generationId),
      delta: (text) => {
        reply.append(text);
        this.#scrollToEnd();
      },
      end: (type, data) => {
        this.replies.forget(conversationId);
        reply.finish(data.message, { streamedText: stream.text, detail: data.detail });
        announce(type === "error" ? "The reply failed." : data.status === "cancelled" ? "Reply stopped." : "Reply complete.");
        this.#afterReply(conversationId);
      },
    };
  }

  #done(stream) {
    if (this.#following?.stream !== stream) return;
    this.#following = null;
    this.#setRunning(false);
  }

  /** Poll the stored messages until the reply of the trailing question is there. */
  async #waitForStoredReply(conversationId, reply, opened) {
    while (opened === this.#opened) {
      await new Promise((resolve) => setTimeout(resolve, STORED_REPLY_POLL_MS));
      if (opened !== this.#opened) return;
      try {
        const last = (await this.#history(conversationId)).at(-1);
        if (last?.role === "assistant") {
          reply.finish(last);
          this.#afterReply(conversationId);
          return;
        }
      } catch (error) {
        reply.finish(null, { detail: error.message });
        return;
      }
    }
  }

  /** The list reorders by activity, and an untitled conversation gets a title soon after (the
   * server writes it with the model once the first reply is stored). */
  #afterReply(conversationId) {
    this.conversations.refresh();
    if (!this.conversation?.title) this.#awaitTitle(conversationId, 0);
  }

  #awaitTitle(conversationId, attempt) {
    if (attempt >= TITLE_DELAYS_MS.length) return;
    setTimeout(async () => {
      if (this.conversation?.id !== conversationId || this.conversation.title) return;
      try {
        const conversation = await this.api.get(`/api/conversations/${conversationId}`);
        if (this.conversation?.id !== conversationId) return;
        this.conversation = conversation;
      } catch {
        return;
      }
      if (!this.conversation.title) {
        this.#awaitTitle(conversationId, attempt + 1);
        return;
      }
      this.#showHeader();
      this.conversations.refresh();
    }, TITLE_DELAYS_MS[attempt]);
  }

  async #stop() {
    const generationId = this.#following?.stream.generationId;
    if (!generationId) return;
    const stop = byId("stop");
    stop.disabled = true;
    try {
      await this.api.post(`/api/generations/${generationId}/cancel`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) toast(`The reply could not be stopped: ${error.message}`);
    } finally {
      stop.disabled = false;
    }
  }

  #turnOptions(content) {
    const turn = { content };
    const maxTokens = byId("max-tokens").valueAsNumber;
    const temperature = byId("temperature").valueAsNumber;
    if (Number.isInteger(maxTokens) && maxTokens > 0) turn.max_tokens = maxTokens;
    if (Number.isFinite(temperature)) turn.temperature = temperature;
    return turn;
  }

  async #changeDocuments(value) {
    if (this.conversation === null) return;
    try {
      this.conversation = await this.api.patch(`/api/conversations/${this.conversation.id}`, { documents: value });
      announce("The chat's documents are saved.");
    } catch (error) {
      toast(`The documents could not be changed: ${error.message}`);
    }
  }

  async #rename() {
    const title = await askText({
      title: "Rename conversation",
      label: "Title",
      value: this.conversation.title ?? "",
      action: "Save",
    });
    if (title === null) return;
    try {
      this.conversation = await this.api.patch(`/api/conversations/${this.conversation.id}`, { title });
      this.#showHeader();
      this.conversations.refresh();
    } catch (error) {
      toast(`The conversation could not be renamed: ${error.message}`);
    }
  }

  async #delete() {
    const title = this.conversation.title ?? "this conversation";
    const confirmed = await confirmAction({
      title: "Delete conversation?",
      text: `"${title}" and all its messages will be deleted.`,
      action: "Delete",
    });
    if (!confirmed) return;
    try {
      await this.api.delete(`/api/conversations/${this.conversation.id}`);
    } catch (error) {
      toast(`The conversation could not be deleted: ${error.message}`);
      return;
    }
    this.replies.forget(this.conversation.id);
    this.conversations.refresh();
    announce("Conversation deleted.");
    location.hash = "#/chat/new";
  }

  #showHeader() {
    const existing = this.conversation !== null;
    byId("chat-title").textContent = existing ? this.conversation.title || "Untitled conversation" : "New chat";
    byId("chat-model").textContent = existing ? this.conversation.model || "server's default model" : "";
    show(byId("rename-chat"), existing);
    show(byId("delete-chat"), existing);
    show(byId("chat-setup"), !existing);
    document.title = existing ? `${this.conversation.title || "Chat"} · genai-service` : "genai-service";
  }

  #showEmpty() {
    show(byId("chat-empty"), this.messages.childElementCount === 0);
  }

  #setRunning(running) {
    show(byId("stop"), running);
    byId("send").disabled = running || this.#loading;
  }

  #setLoading(loading) {
    this.#loading = loading;
    byId("send").disabled = loading || this.#following !== null;
  }

  #scrollToEnd() {
    const main = byId("main");
    if (main.scrollHeight - main.scrollTop - main.clientHeight < 120 || this.#following === null) {
      main.scrollTop = main.scrollHeight;
    }
  }

  async #loadModels() {
    this.#modelsLoaded = true;
    try {
      const models = await this.api.get("/v1/models");
      const picker = byId("model-picker");
      picker.replaceChildren(new Option("Server default", ""));
      for (const model of models.data) picker.append(new Option(model.id, model.id));
    } catch {
      this.#modelsLoaded = false;
    }
  }

  /** After sign-out: nothing of the previous user stays on screen. */
  clear() {
    this.leave();
    this.#setLoading(false);
    this.conversation = null;
    this.messages.replaceChildren();
    this.#modelsLoaded = false;
    byId("system-prompt").value = "";
    this.input.value = "";
  }
}
