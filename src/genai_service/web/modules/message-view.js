// One message of a conversation on the page: the user's question as plain text, the assistant's
// reply as safe Markdown that grows while it streams, then its status, sources and actions.

import { h } from "./dom.js";
import { citationLink, renderMarkdown } from "./markdown.js";

const STATUS_TEXT = { cancelled: "Stopped", failed: "Failed" };

export function userMessage(content) {
  return h(
    "li",
    { class: "message user" },
    h("p", { class: "message-author" }, "You"),
    h("div", { class: "message-body" }, content),
  );
}

export class AssistantMessage {
  #renderScheduled = false;

  /** `onRetry()`: ask the question again; `onCitation(number, citation)`: show a source. */
  constructor({ onRetry, onCitation }) {
    this.text = "";
    this.citations = [];
    this.onRetry = onRetry;
    this.body = h("div", { class: "message-body" });
    this.status = h("p", { class: "message-status" });
    this.sources = h("ol", { class: "sources", "aria-label": "Sources", hidden: true });
    this.retry = h("button", { type: "button", hidden: true, onclick: () => this.onRetry() }, "Retry");
    this.copy = h("button", { type: "button", hidden: !navigator.clipboard, onclick: () => this.#copy() }, "Copy");
    this.element = h(
      "li",
      { class: "message assistant" },
      h("p", { class: "message-author" }, "Assistant"),
      this.body,
      this.status,
      this.sources,
      h("div", { class: "message-actions" }, this.copy, this.retry),
    );
    this.element.addEventListener("click", (event) => {
      const link = event.target.closest("a.citation");
      if (link === null) return;
      event.preventDefault();
      const number = Number(link.dataset.citation);
      onCitation(number, this.citations[number - 1], link);
    });
  }

  /** The reply is being written: text is on its way. */
  streaming(text = "") {
    this.text = text;
    this.element.classList.add("streaming");
    this.element.dataset.status = "running";
    this.body.setAttribute("aria-busy", "true");
    this.status.textContent = "Writing…";
    this.#render();
  }

  /** The reply is written elsewhere and this page cannot follow it: it appears when stored. */
  waiting() {
    this.streaming();
    this.status.textContent = "A reply is being written (started elsewhere); it appears here when it is done.";
  }

  append(text) {
    this.text += text;
    if (this.#renderScheduled) return;
    this.#renderScheduled = true;
    requestAnimationFrame(() => {
      this.#renderScheduled = false;
      this.#render();
    });
  }

  /**
   * The stored reply. `streamedText`: what this page assembled from the events, kept when it is
   * the stored text (`data-text-source="stream"`); should they ever differ, the stored one wins.
   */
  finish(message, { streamedText = null, detail = null } = {}) {
    this.element.classList.remove("streaming");
    this.body.removeAttribute("aria-busy");
    const content = message?.content ?? streamedText ?? "";
    if (streamedText !== null) this.element.dataset.textSource = streamedText === content ? "stream" : "stored";
    this.text = content;
    this.citations = message?.citations ?? [];
    const status = message?.status ?? "failed";
    this.element.dataset.status = status;
    if (message?.id) this.element.dataset.messageId = message.id;
    this.#render();
    this.status.replaceChildren(...statusLine(message, status, detail));
    this.sources.replaceChildren(
      ...this.citations.map((citation, index) => h("li", {}, citationLink(index + 1, citation, { full: true }))),
    );
    this.sources.hidden = this.citations.length === 0;
    this.retry.hidden = status !== "failed";
  }

  #render() {
    this.body.replaceChildren(renderMarkdown(this.text, this.citations));
  }

  async #copy() {
    await navigator.clipboard.writeText(this.text);
    this.copy.textContent = "Copied";
    setTimeout(() => {
      this.copy.textContent = "Copy";
    }, 1500);
  }
}

function statusLine(message, status, detail) {
  const parts = [];
  if (status !== "completed") parts.push(h("strong", { class: `badge ${status}` }, STATUS_TEXT[status] ?? status));
  const error = message?.error ?? detail;
  if (status === "failed" && error) parts.push(h("span", { class: "error" }, ` ${error}`));
  const facts = [];
  if (message?.model) facts.push(message.model);
  if (message?.completion_tokens != null) facts.push(`${message.completion_tokens} tokens`);
  if (message?.latency_ms != null) facts.push(`${(message.latency_ms / 1000).toFixed(1)} s`);
  if (facts.length > 0) parts.push(h("span", { class: "hint" }, ` ${facts.join(" · ")}`));
  return parts;
}
