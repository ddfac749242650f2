// The sidebar: the user's conversations, most recently active first, searchable by title.

import { byId, h, show, timeAgo, toast } from "./dom.js";

const PAGE_SIZE = 30;
const SEARCH_DELAY_MS = 250;

export class ConversationList {
  #items = [];
  #total = 0;
  #activeId = null;
  #query = "";
  #searchTimer = 0;
  #loading = null;

  constructor(api) {
    this.api = api;
    this.list = byId("conversation-list");
    this.search = byId("conversation-search");
    this.search.addEventListener("input", () => {
      clearTimeout(this.#searchTimer);
      this.#searchTimer = setTimeout(() => {
        this.#query = this.search.value.trim();
        this.refresh();
      }, SEARCH_DELAY_MS);
    });
    byId("conversation-more").addEventListener("click", () => this.#load(this.#items.length));
    const toggle = byId("sidebar-toggle");
    toggle.addEventListener("click", () => this.#setOpen(toggle.getAttribute("aria-expanded") !== "true"));
    const sidebar = byId("sidebar");
    sidebar.addEventListener("click", (event) => {
      if (event.target.closest("a, #new-chat")) this.#setOpen(false);
    });
    sidebar.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && sidebar.classList.contains("open")) {
        this.#setOpen(false);
        toggle.focus();
      }
    });
  }

  /** Load the first page again (after a change: a new reply reorders the list). */
  refresh() {
    return this.#load(0);
  }

  async #load(offset) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
    if (this.#query) params.set("q", this.#query);
    const loading = this.api.get(`/api/conversations?${params}`);
    this.#loading = loading;
    let page;
    try {
      page = await loading;
    } catch (error) {
      toast(`The conversations could not be loaded: ${error.message}`);
      return;
    }
    if (this.#loading !== loading) return;
    this.#items = offset === 0 ? page.items : [...this.#items, ...page.items];
    this.#total = page.total;
    this.#render();
  }

  #render() {
    this.list.replaceChildren(
      ...this.#items.map((conversation) => {
        const title = conversation.title || "Untitled conversation";
        return h(
          "li",
          {},
          h(
            "a",
            {
              href: `#/chat/${conversation.id}`,
              "aria-current": conversation.id === this.#activeId ? "page" : null,
            },
            h("span", { class: "conversation-title" }, title),
            h("span", { class: "hint" }, timeAgo(conversation.last_activity_at)),
          ),
        );
      }),
    );
    show(byId("conversation-empty"), this.#items.length === 0);
    byId("conversation-empty").textContent = this.#query ? "No conversation has that in its title." : "No conversations yet.";
    show(byId("conversation-more"), this.#items.length < this.#total);
  }

  markActive(conversationId) {
    this.#activeId = conversationId;
    for (const link of this.list.querySelectorAll("a")) {
      if (link.getAttribute("href") === `#/chat/${conversationId}`) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  /** On narrow screens the sidebar is a drawer opened by its button. */
  #setOpen(open) {
    byId("sidebar-toggle").setAttribute("aria-expanded", String(open));
    byId("sidebar").classList.toggle("open", open);
  }

  clear() {
    this.#items = [];
    this.#total = 0;
    this.#query = "";
    this.search.value = "";
    this.list.replaceChildren();
  }
}
