// Which documents a chat's replies draw on: none, all of the user's, or chosen ones (the
// conversation's `documents`: `null`, `"all"` or a list of ids).

import { byId, h, show, toast } from "./dom.js";

export class DocumentScope {
  #chosen = new Set();
  #documents = [];

  /** `onChange(value)` runs when the user changes the scope. */
  constructor(api, { onChange }) {
    this.api = api;
    this.choices = byId("document-choices");
    for (const radio of this.#radios()) {
      radio.addEventListener("change", () => {
        this.#showChoices();
        onChange(this.value());
      });
    }
    this.choices.addEventListener("change", (event) => {
      const id = event.target.value;
      if (event.target.checked) this.#chosen.add(id);
      else this.#chosen.delete(id);
      this.#summarise();
      onChange(this.value());
    });
  }

  #radios() {
    return document.querySelectorAll('input[name="document-scope"]');
  }

  /** Show `value` (a conversation's `documents`) and load the documents one can choose. */
  async set(value) {
    const kind = value === "all" ? "all" : Array.isArray(value) && value.length > 0 ? "chosen" : "none";
    for (const radio of this.#radios()) radio.checked = radio.value === kind;
    this.#chosen = new Set(Array.isArray(value) ? value : []);
    this.#showChoices();
    try {
      const page = await this.api.get("/api/documents?limit=100");
      this.#documents = page.items.filter((document) => document.status === "indexed" || this.#chosen.has(document.id));
    } catch (error) {
      toast(`The documents could not be loaded: ${error.message}`);
      this.#documents = [];
    }
    this.#renderChoices();
  }

  value() {
    const kind = [...this.#radios()].find((radio) => radio.checked)?.value ?? "none";
    if (kind === "all") return "all";
    if (kind === "chosen" && this.#chosen.size > 0) return [...this.#chosen];
    return null;
  }

  #renderChoices() {
    this.choices.replaceChildren(
      ...this.#documents.map((document) =>
        h(
          "li",
          {},
          h(
            "label",
            {},
            h("input", { type: "checkbox", value: document.id, checked: this.#chosen.has(document.id) }),
            ` ${document.filename}`,
          ),
        ),
      ),
    );
    this.#showChoices();
  }

  #showChoices() {
    const chosen = this.#radios()[2].checked;
    show(this.choices, chosen && this.#documents.length > 0);
    show(byId("document-choices-empty"), chosen && this.#documents.length === 0);
    this.#summarise();
  }

  #summarise() {
    const value = this.value();
    const kind = [...this.#radios()].find((radio) => radio.checked)?.value;
    byId("document-scope-summary").textContent =
      value === "all" ? "all my documents" : value ? `${value.length} chosen` : kind === "chosen" ? "none chosen yet" : "none";
  }
}
