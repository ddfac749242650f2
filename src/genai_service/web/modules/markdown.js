// Replies as Markdown, safely. Two layers, so one mistake is not enough:
// 1. The Markdown renderer never passes markup through: raw HTML in a reply is shown as the text
//    it is, a link whose address is not http(s) or mailto is shown as its Markdown text, and an
//    image becomes a link to it (nothing is loaded from a reply).
// 2. DOMPurify sanitises what the renderer produced and hands back DOM nodes (never an HTML
//    string for the page to assign): its Trusted Types policy is the only one the page's CSP lets
//    create HTML.

import { Marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.mjs";
import { h } from "./dom.js";

const SAFE_ADDRESS = /^(https?:|mailto:)/i;
const CITATION_MARKER = /\[(\d{1,3})\]/g;
const NO_CITATIONS_INSIDE = new Set(["A", "CODE", "PRE"]);

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    link({ href, raw }) {
      return SAFE_ADDRESS.test(href) ? false : escapeHtml(raw);
    },
    image({ href, text, raw }) {
      if (!SAFE_ADDRESS.test(href)) return escapeHtml(raw);
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
  },
});

const SANITIZE = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "picture",
    "video", "audio", "iframe", "object", "embed"],
  FORBID_ATTR: ["style", "id", "name", "srcset"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/**
 * A reply's Markdown as DOM nodes. With `citations`, each `[n]` marker that names one of them
 * becomes a link (`a.citation[data-citation=n]`) that the chat opens the source from.
 */
export function renderMarkdown(text, citations = []) {
  const fragment = DOMPurify.sanitize(markdown.parse(text), SANITIZE);
  if (citations.length > 0) linkCitations(fragment, citations);
  return fragment;
}

function linkCitations(root, citations) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    if (!insideNoCitationElement(node, root) && CITATION_MARKER.test(node.data)) found.push(node);
    CITATION_MARKER.lastIndex = 0;
  }
  for (const node of found) node.replaceWith(...withCitationLinks(node.data, citations));
}

function insideNoCitationElement(node, root) {
  for (let parent = node.parentNode; parent !== null && parent !== root; parent = parent.parentNode) {
    if (NO_CITATIONS_INSIDE.has(parent.nodeName)) return true;
  }
  return false;
}

function withCitationLinks(text, citations) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(CITATION_MARKER)) {
    const number = Number(match[1]);
    const citation = citations[number - 1];
    if (citation === undefined) continue;
    parts.push(text.slice(last, match.index), citationLink(number, citation));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/** Where source `number` comes from: "[1] handbook.md, page 2". */
export function citationName(number, citation) {
  return `[${number}] ${citation.filename}${citation.page ? `, page ${citation.page}` : ""}`;
}

/**
 * The link of source `number` (from 1): the bare marker in a reply's text (named in full for
 * screen readers), or its full name in the list of sources under a reply.
 */
export function citationLink(number, citation, { full = false } = {}) {
  const name = citationName(number, citation);
  return h(
    "a",
    { href: "#", class: "citation", "data-citation": number, "aria-label": full ? null : name },
    full ? name : `[${number}]`,
  );
}
