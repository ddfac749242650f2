// Sign in, create an account (the password rules checked as the user types), or continue under
// anonymous mode when the server allows it.

import { ApiError } from "./api.js";
import { byId, show } from "./dom.js";

// The server's policy, counted as it counts (characters, not UTF-16 units); it checks again.
const RULES = {
  length: (password) => [...password].length >= 8 && [...password].length <= 128,
  digit: (password) => /\p{Nd}/u.test(password),
  uppercase: (password) => password !== password.toLowerCase(),
};

export class AuthView {
  constructor(session, { onSignedIn }) {
    this.session = session;
    this.onSignedIn = onSignedIn;
    this.registering = false;
    this.form = byId("auth-form");
    this.email = byId("auth-email");
    this.password = byId("auth-password");
    this.error = byId("auth-error");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit();
    });
    byId("auth-switch").addEventListener("click", () => this.#setRegistering(!this.registering));
    this.password.addEventListener("input", () => this.#checkRules());
    byId("anonymous-button").addEventListener("click", () => this.#enterAnonymously());
  }

  async showFor(reason = "") {
    show(byId("auth-view"));
    this.error.textContent = reason;
    this.password.value = "";
    this.email.focus();
    show(byId("anonymous-entry"), await this.session.anonymousAvailable());
  }

  hide() {
    show(byId("auth-view"), false);
  }

  #setRegistering(registering) {
    this.registering = registering;
    const title = registering ? "Create an account" : "Sign in";
    byId("auth-title").textContent = title;
    byId("auth-submit").textContent = title;
    byId("auth-switch-text").textContent = registering ? "Have an account?" : "No account yet?";
    byId("auth-switch").textContent = registering ? "Sign in" : "Create an account";
    this.password.autocomplete = registering ? "new-password" : "current-password";
    show(byId("password-rules"), registering);
    show(byId("auth-name-field"), registering);
    this.error.textContent = "";
    this.#checkRules();
    this.email.focus();
  }

  #checkRules() {
    let allMet = true;
    for (const item of byId("password-rules").querySelectorAll("li")) {
      const met = RULES[item.dataset.rule](this.password.value);
      item.dataset.met = String(met);
      allMet &&= met;
    }
    return allMet;
  }

  async #submit() {
    const email = this.email.value.trim();
    const password = this.password.value;
    if (!email || !password) {
      this.error.textContent = "Enter your email and password.";
      return;
    }
    if (this.registering && !this.#checkRules()) {
      this.error.textContent = "The password does not follow the rules below it yet.";
      this.password.focus();
      return;
    }
    const submit = byId("auth-submit");
    submit.disabled = true;
    this.error.textContent = "";
    try {
      if (this.registering) await this.#register(email, password);
      const response = await this.session.signIn(email, password);
      if (!response.ok) {
        const problem = await ApiError.of(response);
        this.error.textContent = problem.status === 429
          ? `Too many failed attempts. Try again in ${response.headers.get("Retry-After") || "a few"} seconds.`
          : problem.message;
        return;
      }
      this.password.value = "";
      this.onSignedIn();
    } catch (error) {
      this.error.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  }

  async #register(email, password) {
    const fullName = byId("auth-name").value.trim();
    const response = await fetch("/api/auth/register", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password, full_name: fullName || null }),
    });
    if (!response.ok) {
      const error = await ApiError.of(response);
      const messages = (error.problem.errors || []).map((item) => item.message);
      throw new Error(messages.length > 0 ? messages.join(". ") : error.message);
    }
  }

  async #enterAnonymously() {
    try {
      await this.session.enterAnonymously();
      this.onSignedIn();
    } catch (error) {
      this.error.textContent = `Anonymous access is not available (${error.message}).`;
    }
  }
}
