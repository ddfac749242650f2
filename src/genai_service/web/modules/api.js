// Calls to the service's API with the session's credentials; errors as the server wrote them.

/** An error answer: the RFC 9457 problem the server sent (`title`, `detail`, `errors`...). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem;
  }

  static async of(response) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // Not a problem document (a proxy's error page, say): the status says enough.
    }
    return new ApiError(response.status, problem);
  }
}

export class Api {
  constructor(session) {
    this.session = session;
  }

  /**
   * `fetch` with the caller's credentials. An access token refused as expired is refreshed once
   * and the request sent again; refused again, the session ends (the page asks to sign in).
   */
  async fetch(path, init = {}) {
    const credential = await this.session.credential();
    let response = await fetch(path, withCredential(init, credential));
    if (response.status === 401 && credential !== null) {
      await this.session.refresh(credential);
      const renewed = await this.session.credential();
      response = await fetch(path, withCredential(init, renewed));
      if (response.status === 401) this.session.end("Your session has ended. Please sign in again.");
    } else if (response.status === 401 && this.session.mode === "anonymous") {
      this.session.end("This server no longer allows anonymous use. Please sign in.");
    }
    return response;
  }

  /** A JSON request; resolves to the parsed body (`null` for 204), rejects with `ApiError`. */
  async request(path, { method = "GET", json, signal } = {}) {
    const init = { method, signal, headers: {} };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    const response = await this.fetch(path, init);
    if (!response.ok) throw await ApiError.of(response);
    if (response.status === 204) return null;
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : response.text();
  }

  get(path, options = {}) {
    return this.request(path, options);
  }

  post(path, json, options = {}) {
    return this.request(path, { ...options, method: "POST", json });
  }

  patch(path, json) {
    return this.request(path, { method: "PATCH", json });
  }

  delete(path) {
    return this.request(path, { method: "DELETE" });
  }
}

function withCredential(init, credential) {
  const headers = new Headers(init.headers);
  if (credential !== null) headers.set("Authorization", `Bearer ${credential}`);
  return { ...init, headers };
}
