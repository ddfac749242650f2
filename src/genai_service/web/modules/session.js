// Who the page acts for, and its credentials.
//
// Tokens live in this object's private fields only. Across a reload the refresh token (never the
// access token) is parked in sessionStorage: written when the page is hidden, read and removed
// at once when the next page starts. So it sits in storage only while the tab reloads, a tab
// duplicated meanwhile starts signed out instead of spending the same single-use refresh token
// (which would end the session), and nothing is ever written to localStorage.

const RELOAD_KEY = "genai-service.session";
const REFRESH_MARGIN_MS = 30_000;

export class SessionEnded extends Error {}

export class Session extends EventTarget {
  #access = null;
  #refresh = null;
  #expiresAt = 0;
  #refreshing = null;
  /** "signed-out", "account" or "anonymous". */
  mode = "signed-out";
  /** The caller's account (`GET /api/users/me`). */
  user = null;

  get signedIn() {
    return this.mode !== "signed-out";
  }

  /** The bearer credential to send: a fresh access token, or none in anonymous mode. */
  async credential() {
    if (this.mode !== "account") return null;
    if (Date.now() > this.#expiresAt - REFRESH_MARGIN_MS) await this.refresh(this.#access);
    return this.#access;
  }

  /**
   * Trade the refresh token for a new pair. Concurrent callers share one exchange (a refresh token
   * works once; presenting it twice would end the session); a caller whose token was already
   * replaced by someone else's exchange gets the new one without another.
   */
  async refresh(staleAccess = null) {
    if (this.#refreshing !== null) return this.#refreshing;
    if (staleAccess !== null && staleAccess !== this.#access) return undefined;
    this.#refreshing = this.#exchange().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #exchange() {
    let response;
    try {
      response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: this.#refresh }),
      });
    } catch {
      throw new Error("The server cannot be reached.");
    }
    if (!response.ok) {
      this.end("Your session has ended. Please sign in again.");
      throw new SessionEnded("session ended");
    }
    this.#keep(await response.json());
  }

  #keep(pair) {
    this.#access = pair.access_token;
    this.#refresh = pair.refresh_token;
    this.#expiresAt = Date.now() + pair.expires_in * 1000;
  }

  async signIn(email, password) {
    const response = await fetch("/api/auth/token", {
      method: "POST",
      body: new URLSearchParams({ username: email, password }),
    });
    if (!response.ok) return response;
    this.#keep(await response.json());
    this.mode = "account";
    await this.#loadUser();
    return response;
  }

  /** Anonymous mode: the server answers `/api/users/me` without credentials. */
  async anonymousAvailable() {
    try {
      const response = await fetch("/api/users/me");
      return response.ok && (await response.json()).is_anonymous === true;
    } catch {
      return false;
    }
  }

  async enterAnonymously() {
    this.mode = "anonymous";
    await this.#loadUser();
  }

  async #loadUser() {
    const credential = await this.credential();
    const response = await fetch("/api/users/me", {
      headers: credential ? { Authorization: `Bearer ${credential}` } : {},
    });
    if (!response.ok) {
      this.#forget();
      throw new SessionEnded("no account");
    }
    this.user = await response.json();
    this.dispatchEvent(new Event("change"));
  }

  /** Sign out: the server ends the session (its refresh token stops working). */
  async signOut() {
    const refresh = this.#refresh;
    this.#forget();
    if (refresh !== null) {
      try {
        await fetch("/api/auth/logout", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: refresh }),
        });
      } catch {
        // The session expires by itself; the page has forgotten it either way.
      }
    }
    this.dispatchEvent(new CustomEvent("ended", { detail: { reason: "" } }));
  }

  /** The server refused the credentials: forget them and ask the user to sign in. */
  end(reason) {
    if (this.mode === "signed-out") return;
    this.#forget();
    this.dispatchEvent(new CustomEvent("ended", { detail: { reason } }));
  }

  #forget() {
    this.#access = null;
    this.#refresh = null;
    this.#expiresAt = 0;
    this.mode = "signed-out";
    this.user = null;
  }

  /** Called when the page is hidden (a reload, a navigation, a closed tab). */
  parkForReload() {
    if (this.mode === "signed-out") return;
    const parked = { mode: this.mode, refresh_token: this.#refresh };
    sessionStorage.setItem(RELOAD_KEY, JSON.stringify(parked));
  }

  /** The page is shown again from the back-forward cache: it still holds its session. */
  unpark() {
    sessionStorage.removeItem(RELOAD_KEY);
  }

  /** At start-up: pick up the session parked by the page before a reload. */
  async resume() {
    const raw = sessionStorage.getItem(RELOAD_KEY);
    sessionStorage.removeItem(RELOAD_KEY);
    if (raw === null) return false;
    try {
      const parked = JSON.parse(raw);
      if (parked.mode === "anonymous") {
        await this.enterAnonymously();
        return true;
      }
      this.#refresh = parked.refresh_token;
      this.mode = "account";
      await this.refresh();
      await this.#loadUser();
      return true;
    } catch {
      this.#forget();
      return false;
    }
  }
}
