// The account: who is signed in, API keys (created with the secret shown once, listed, revoked),
// and usage with its limits where the server reports them.

import { ApiError } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { announce, byId, h, show, timeAgo, toast } from "./dom.js";

export class AccountView {
  constructor(api, session) {
    this.api = api;
    this.session = session;
    byId("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#createKey();
    });
    byId("copy-key").addEventListener("click", () => this.#copySecret());
    show(byId("copy-key"), Boolean(navigator.clipboard));
  }

  async open() {
    show(byId("account-view"));
    this.#showProfile();
    const anonymous = this.session.mode === "anonymous";
    show(byId("key-form"), !anonymous);
    show(byId("keys-anonymous"), anonymous);
    if (!anonymous) await this.#loadKeys();
    else byId("key-list").replaceChildren();
    this.#loadUsage();
    this.#offerDocs();
  }

  #showProfile() {
    const user = this.session.user;
    const facts = [
      ["Email", user.email],
      ["Name", user.full_name || "—"],
      ["Role", user.role],
      ["Member since", new Date(user.created_at).toLocaleDateString()],
    ];
    if (user.is_anonymous) facts.splice(1, 3, ["Mode", "anonymous (shared by everyone without an account)"]);
    byId("profile").replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  }

  async #loadKeys() {
    let page;
    try {
      page = await this.api.get("/api/keys?limit=100");
    } catch (error) {
      toast(`The API keys could not be loaded: ${error.message}`);
      return;
    }
    byId("key-list").replaceChildren(...page.items.map((key) => this.#keyItem(key)));
    show(byId("key-empty"), page.items.length === 0);
  }

  #keyItem(key) {
    const facts = [`${key.prefix}…`, `created ${timeAgo(key.created_at)}`];
    facts.push(key.last_used_at ? `last used ${timeAgo(key.last_used_at)}` : "never used");
    if (key.expires_at) facts.push(`expires ${new Date(key.expires_at).toLocaleDateString()}`);
    return h(
      "li",
      { "data-key-id": key.id },
      h("strong", {}, key.name),
      " ",
      h("span", { class: "hint" }, facts.join(" · ")),
      h("button", { type: "button", "aria-label": `Revoke ${key.name}`, onclick: () => this.#revoke(key) }, "Revoke"),
    );
  }

  async #createKey() {
    const input = byId("key-name");
    const name = input.value.trim();
    const error = byId("key-error");
    error.textContent = "";
    if (!name) {
      error.textContent = "Give the key a name, to tell it apart later.";
      input.focus();
      return;
    }
    let key;
    try {
      key = await this.api.post("/api/keys", { name });
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    input.value = "";
    byId("new-key-secret").textContent = key.secret;
    byId("copy-key-done").textContent = "";
    show(byId("new-key"));
    byId("new-key-secret").focus();
    announce("Key created. Copy it now: it will not be shown again.");
    await this.#loadKeys();
  }

  async #copySecret() {
    await navigator.clipboard.writeText(byId("new-key-secret").textContent);
    byId("copy-key-done").textContent = "Copied.";
  }

  async #revoke(key) {
    const confirmed = await confirmAction({
      title: "Revoke API key?",
      text: `"${key.name}" (${key.prefix}…) stops working at once. This cannot be undone.`,
      action: "Revoke",
    });
    if (!confirmed) return;
    try {
      await this.api.delete(`/api/keys/${key.id}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        toast(`The key could not be revoked: ${error.message}`);
        return;
      }
    }
    announce(`${key.name} revoked.`);
    await this.#loadKeys();
  }

  /**
   * Usage and limits (`GET /api/usage/me`): today's and this month's tokens against the budget,
   * and the calls per model. A server without usage accounting answers 404: the section stays
   * hidden.
   */
  async #loadUsage() {
    const section = byId("usage-section");
    let usage;
    try {
      usage = await this.api.get("/api/usage/me");
    } catch {
      show(section, false);
      return;
    }
    const budget = (label, period) => [
      h("dt", {}, label),
      h(
        "dd",
        {},
        period.limit === null
          ? `${tokens(period.used)} used (no limit)`
          : `${tokens(period.used)} of ${tokens(period.limit)} used, ${tokens(period.remaining)} left`,
      ),
    ];
    const perModel = usage.models.flatMap((model) => [
      h("dt", {}, model.model),
      h("dd", {}, `${calls(model.month.calls)}, ${tokens(model.month.total_tokens)} this month`),
    ]);
    byId("usage").replaceChildren(...budget("Today", usage.day), ...budget("This month", usage.month), ...perModel);
    show(section, true);
  }

  async #offerDocs() {
    try {
      const response = await fetch("/openapi.json", { method: "HEAD" });
      show(byId("docs-link"), response.ok);
    } catch {
      show(byId("docs-link"), false);
    }
  }

  clear() {
    byId("key-list").replaceChildren();
    byId("new-key-secret").textContent = "";
    show(byId("new-key"), false);
    show(byId("usage-section"), false);
  }
}

function tokens(count) {
  return `${count.toLocaleString("en")} ${count === 1 ? "token" : "tokens"}`;
}

function calls(count) {
  return `${count.toLocaleString("en")} ${count === 1 ? "call" : "calls"}`;
}
