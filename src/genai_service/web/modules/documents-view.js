// Documents: upload (picker or drag and drop, several files at once), each file's ingestion
// followed live from its progress events (queued → parsing → embedding → indexed | failed |
// cancelled), and cancel, retry and delete.

import { ApiError } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { announce, byId, formatBytes, h, show, toast } from "./dom.js";
import { readEvents } from "./server-sent-events.js";

const FINAL = new Set(["indexed", "failed", "cancelled"]);
const RUNNING = new Set(["queued", "parsing", "embedding"]);
const LABELS = {
  uploading: "Uploading",
  queued: "Queued",
  parsing: "Parsing",
  embedding: "Embedding",
  indexed: "Indexed",
  failed: "Failed",
  cancelled: "Cancelled",
};
/** Progress streams open at once; the browser allows few connections per server. */
const MAX_FOLLOWED = 3;
const RECONNECTS = 5;
const RECONNECT_DELAY_MS = 1000;

export class DocumentsView {
  #rows = new Map();
  #following = new Map();
  #waiting = [];
  #uploads = Promise.resolve();

  constructor(api) {
    this.api = api;
    this.list = byId("document-list");
    const input = byId("upload-input");
    input.addEventListener("change", () => {
      this.upload([...input.files]);
      input.value = "";
    });
    const zone = byId("drop-zone");
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      this.upload([...event.dataTransfer.files]);
    });
  }

  async open() {
    show(byId("documents-view"));
    // Only rows shown before the list was asked for can be missing from it because they were
    // deleted: one an upload added meanwhile is newer than the answer.
    const shown = new Set(this.#rows.keys());
    let page;
    try {
      page = await this.api.get("/api/documents?limit=100");
    } catch (error) {
      toast(`The documents could not be loaded: ${error.message}`);
      return;
    }
    if (page.total <= page.items.length) {
      // The whole list came: what is not in it was deleted meanwhile (elsewhere).
      const present = new Set(page.items.map((document) => document.id));
      for (const id of shown) if (!present.has(id)) this.#removed(id);
    }
    for (const document of [...page.items].reverse()) this.#show(document);
    this.#showEmpty();
  }

  /** Send the files one after another; each gets its row (and progress) at once. */
  upload(files) {
    for (const file of files) {
      const row = new DocumentRow({ filename: file.name, size: file.size, status: "uploading", progress: 0 }, this);
      this.list.prepend(row.element);
      this.#showEmpty();
      this.#uploads = this.#uploads.then(() => this.#send(file, row));
    }
  }

  async #send(file, row) {
    let answer;
    try {
      answer = await this.#post(file, (share) => row.update({ progress: share }));
      if (answer.status === 401) {
        this.api.session.end("Your session has ended. Please sign in again.");
        return;
      }
    } catch (error) {
      row.update({ status: "failed", error: error.message });
      return;
    }
    if (answer.status !== 200 && answer.status !== 202) {
      const detail = answer.body.detail || answer.body.title || `The server answered ${answer.status}.`;
      row.update({ status: "failed", error: `Not uploaded: ${detail}` });
      row.uploadFailed();
      return;
    }
    row.element.remove();
    const existing = this.#rows.get(answer.body.id);
    this.#show(answer.body);
    if (answer.status === 200) {
      this.#rows.get(answer.body.id).note("This content was uploaded before: this is that document.");
      if (existing) this.list.prepend(existing.element);
    }
    announce(`${file.name} uploaded.`);
  }

  /** `fetch` cannot report upload progress; XMLHttpRequest can. */
  async #post(file, onProgress) {
    const credential = await this.api.session.credential();
    const form = new FormData();
    form.append("file", file, file.name);
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", "/api/documents");
      if (credential !== null) request.setRequestHeader("Authorization", `Bearer ${credential}`);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body = {};
        try {
          body = JSON.parse(request.responseText);
        } catch {
          // An answer that is not JSON: its status says enough.
        }
        resolve({ status: request.status, body });
      });
      request.addEventListener("error", () => reject(new Error("The server could not be reached.")));
      request.send(form);
    });
  }

  #show(document) {
    let row = this.#rows.get(document.id);
    if (row === undefined) {
      row = new DocumentRow(document, this);
      this.#rows.set(document.id, row);
      this.list.prepend(row.element);
    } else {
      row.update(document);
    }
    if (RUNNING.has(document.status)) this.#follow(document.id);
  }

  /** Follow a document's progress events until its ingestion ends. */
  async #follow(id) {
    if (this.#following.has(id) || this.#waiting.includes(id)) return;
    if (this.#following.size >= MAX_FOLLOWED) {
      this.#waiting.push(id);
      return;
    }
    const controller = new AbortController();
    this.#following.set(id, controller);
    try {
      for (let attempt = 0; attempt < RECONNECTS && !controller.signal.aborted; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
        const response = await this.api.fetch(`/api/documents/${id}/events`, { signal: controller.signal });
        if (response.status === 404) return this.#removed(id);
        if (!response.ok) throw await ApiError.of(response);
        for await (const event of readEvents(response)) {
          if (event.type === "deleted") return this.#removed(id);
          if (event.type !== "progress") continue;
          const progress = JSON.parse(event.data);
          this.#rows.get(id)?.update(progress);
          if (FINAL.has(progress.status)) {
            announce(`${this.#rows.get(id)?.document.filename ?? "A document"}: ${LABELS[progress.status].toLowerCase()}.`);
            await this.#reload(id);
            return;
          }
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) this.#rows.get(id)?.note(`Progress is not available: ${error.message}`);
    } finally {
      this.#following.delete(id);
      const next = this.#waiting.shift();
      if (next !== undefined) this.#follow(next);
    }
  }

  /** The whole record once ingestion ended (progress events leave out the page count). */
  async #reload(id) {
    try {
      this.#rows.get(id)?.update(await this.api.get(`/api/documents/${id}`));
    } catch {
      // The row keeps what the events said.
    }
  }

  #removed(id) {
    this.#rows.get(id)?.element.remove();
    this.#rows.delete(id);
    this.#showEmpty();
  }

  async cancel(row) {
    try {
      row.update(await this.api.post(`/api/documents/${row.document.id}/cancel`));
    } catch (error) {
      toast(`The ingestion could not be cancelled: ${error.message}`);
    }
  }

  async retry(row) {
    try {
      const document = await this.api.post(`/api/documents/${row.document.id}/retry`);
      row.update(document);
      this.#follow(document.id);
    } catch (error) {
      toast(`The document could not be retried: ${error.message}`);
    }
  }

  async delete(row) {
    const name = row.document.filename;
    const confirmed = await confirmAction({
      title: "Delete document?",
      text: `"${name}", its text and its index will be deleted. Replies that cited it keep their quotes.`,
      action: "Delete",
    });
    if (!confirmed) return;
    try {
      await this.api.delete(`/api/documents/${row.document.id}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        toast(`The document could not be deleted: ${error.message}`);
        return;
      }
    }
    this.#following.get(row.document.id)?.abort();
    this.#removed(row.document.id);
    announce(`${name} deleted.`);
  }

  forgetUpload(row) {
    row.element.remove();
    this.#showEmpty();
  }

  #showEmpty() {
    show(byId("document-empty"), this.list.childElementCount === 0);
  }

  /** After sign-out: stop following and forget the previous user's documents. */
  clear() {
    for (const controller of this.#following.values()) controller.abort();
    this.#following.clear();
    this.#waiting = [];
    this.#rows.clear();
    this.list.replaceChildren();
  }
}

/** One document (or a file being uploaded) in the list. */
class DocumentRow {
  constructor(document, view) {
    this.document = { ...document };
    const name = document.filename;
    this.status = h("span", { class: "document-status" });
    this.progress = h("progress", { max: 1, value: 0, "aria-label": `Ingestion of ${name}` });
    this.details = h("span", { class: "hint" });
    this.message = h("p", { class: "document-note", hidden: true });
    this.cancel = h("button", { type: "button", "aria-label": `Cancel ${name}`, onclick: () => view.cancel(this) }, "Cancel");
    this.retry = h("button", { type: "button", "aria-label": `Retry ${name}`, onclick: () => view.retry(this) }, "Retry");
    this.remove = h("button", { type: "button", "aria-label": `Delete ${name}`, onclick: () => view.delete(this) }, "Delete");
    this.dismiss = h("button", { type: "button", "aria-label": `Dismiss ${name}`, hidden: true, onclick: () => view.forgetUpload(this) }, "Dismiss");
    this.element = h(
      "li",
      { class: "document" },
      h("div", { class: "document-name" }, h("strong", {}, name), " ", this.details),
      h("div", { class: "document-progress" }, this.progress, this.status),
      this.message,
      h("div", { class: "document-actions" }, this.cancel, this.retry, this.remove, this.dismiss),
    );
    this.update({});
  }

  update(changes) {
    Object.assign(this.document, changes);
    const { status, progress, error, size, chunk_count: chunks, page_count: pages } = this.document;
    this.element.dataset.status = status;
    if (this.document.id) this.element.dataset.documentId = this.document.id;
    this.progress.value = status === "indexed" ? 1 : progress ?? 0;
    const percent = RUNNING.has(status) || status === "uploading" ? ` ${Math.round((progress ?? 0) * 100)}%` : "";
    this.status.textContent = `${LABELS[status] ?? status}${percent}`;
    const facts = [];
    if (size != null) facts.push(formatBytes(size));
    if (pages) facts.push(plural(pages, "page"));
    if (chunks != null && status === "indexed") facts.push(plural(chunks, "chunk"));
    this.details.textContent = facts.join(" · ");
    if (error) this.note(error);
    else if (RUNNING.has(status)) this.message.hidden = true;
    const uploaded = this.document.id !== undefined;
    show(this.cancel, uploaded && RUNNING.has(status));
    show(this.retry, uploaded && status === "failed");
    show(this.remove, uploaded);
  }

  note(text) {
    this.message.textContent = text;
    this.message.hidden = false;
  }

  uploadFailed() {
    show(this.dismiss);
  }
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
