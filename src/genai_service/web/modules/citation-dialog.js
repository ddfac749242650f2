// A cited source, shown where it stands in its document: the filename, the page, and the exact
// quoted text highlighted within the text around it (from `GET /api/documents/{id}/text`, which
// the citation's `start` and `end` index).

import { ApiError } from "./api.js";
import { byId, h } from "./dom.js";
import { citationName } from "./markdown.js";

const CONTEXT_CHARS = 600;
/** Scrolled so that the quote starts this far below the top: a few lines of its context show. */
const CONTEXT_LINES_PX = 72;

export class CitationDialog {
  #texts = new Map();

  constructor(api) {
    this.api = api;
    this.dialog = byId("citation-dialog");
    byId("citation-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("click", (event) => {
      if (event.target === this.dialog) this.dialog.close();
    });
  }

  /** Forget the documents' texts (they belong to the user who signed out). */
  clear() {
    this.#texts.clear();
  }

  async open(number, citation) {
    byId("citation-title").textContent = citationName(number, citation);
    const where = [`characters ${citation.start}-${citation.end}`];
    if (citation.page) where.unshift(`page ${citation.page}`);
    where.push(`relevance ${citation.score.toFixed(2)}`);
    byId("citation-meta").textContent = where.join(" · ");
    const body = byId("citation-text");
    body.replaceChildren(h("span", { class: "hint" }, "Loading the document…"));
    this.dialog.showModal();
    body.setAttribute("aria-busy", "true");
    try {
      const text = await this.#documentText(citation.document_id);
      body.replaceChildren(...quoteInContext(text, citation));
    } catch (error) {
      const reason = error instanceof ApiError && error.status === 404
        ? "The document was deleted; this is the quote the reply was given."
        : `The document's text could not be loaded (${error.message}); this is the quote the reply was given.`;
      body.replaceChildren(h("mark", {}, citation.quote), h("p", { class: "hint" }, reason));
    } finally {
      body.removeAttribute("aria-busy");
    }
    const mark = body.querySelector("mark");
    if (mark !== null) body.scrollTop = Math.max(0, mark.offsetTop - CONTEXT_LINES_PX);
  }

  async #documentText(documentId) {
    if (!this.#texts.has(documentId)) {
      const loading = this.api.get(`/api/documents/${documentId}/text`);
      this.#texts.set(documentId, loading);
      loading.catch(() => this.#texts.delete(documentId));
    }
    return this.#texts.get(documentId);
  }
}

/** The quote as a `<mark>`, with up to CONTEXT_CHARS of text on each side, cut at a space. */
function quoteInContext(text, citation) {
  let { start, end } = citation;
  if (text.slice(start, end) !== citation.quote) {
    // Offsets index the text the quote was cut from; look the quote up if they do not fit.
    const found = text.indexOf(citation.quote);
    if (found < 0) return [h("mark", {}, citation.quote)];
    start = found;
    end = found + citation.quote.length;
  }
  let from = Math.max(0, start - CONTEXT_CHARS);
  let to = Math.min(text.length, end + CONTEXT_CHARS);
  if (from > 0) from = Math.min(start, Math.max(from, text.indexOf(" ", from) + 1));
  if (to < text.length) to = Math.max(end, text.lastIndexOf(" ", to));
  return [
    from > 0 ? "… " : "",
    text.slice(from, start),
    h("mark", {}, text.slice(start, end)),
    text.slice(end, to),
    to < text.length ? " …" : "",
  ];
}
