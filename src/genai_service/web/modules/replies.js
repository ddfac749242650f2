// Replies the server is writing, followed over Server-Sent Events.
//
// The server owns every reply: a page that goes away stops reading, not generating. So a page
// that comes back (a reload, a switch back to the chat, another tab) follows the same generation
// again from `GET /api/generations/{id}/events`: after the last event it had (`Last-Event-ID`),
// or from the start when it had none. Event ids are sequential, so an event seen twice is
// dropped and no text is doubled.

import { ApiError } from "./api.js";
import { readEvents } from "./server-sent-events.js";

const RECONNECT_DELAYS_MS = [300, 600, 1200, 2500, 5000];
const PARKED_KEY = "genai-service.replies";
const CHANNEL_NAME = "genai-service.replies";
const ASK_TIMEOUT_MS = 400;

/**
 * One reply as this page follows it. `handlers`: `started(generationId)` (the server accepted the
 * question), `generation(data)` (the first event: ids and the stored question), `delta(text)`,
 * `end(type, data)` with `type` "done" or "error".
 */
export class ReplyStream {
  #controller = new AbortController();

  constructor(api, { generationId = null, lastEventId = 0, text = "" } = {}) {
    this.api = api;
    this.generationId = generationId;
    this.lastEventId = lastEventId;
    this.text = text;
  }

  /** Stop reading; the server goes on writing the reply. */
  abort() {
    this.#controller.abort();
  }

  get aborted() {
    return this.#controller.signal.aborted;
  }

  /** Ask in a conversation and follow the reply. Rejects with `ApiError` when refused. */
  async start(conversationId, turn, handlers) {
    const response = await this.api.fetch(`/api/conversations/${conversationId}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...turn, stream: true }),
      signal: this.#controller.signal,
    });
    if (!response.ok) throw await ApiError.of(response);
    this.generationId = response.headers.get("X-Generation-ID");
    handlers.started?.(this.generationId);
    await this.#follow(response, handlers);
  }

  /** Follow a reply already being written, after the events this stream already has. */
  async resume(handlers) {
    await this.#follow(await this.#reconnect(), handlers);
  }

  async #reconnect() {
    const headers = this.lastEventId > 0 ? { "Last-Event-ID": String(this.lastEventId) } : {};
    const response = await this.api.fetch(`/api/generations/${this.generationId}/events`, {
      headers,
      signal: this.#controller.signal,
    });
    if (!response.ok) throw await ApiError.of(response);
    return response;
  }

  async #follow(first, handlers) {
    let response = first;
    let failures = 0;
    for (;;) {
      try {
        for await (const event of readEvents(response)) {
          failures = 0;
          if (this.#handle(event, handlers)) return;
        }
      } catch (error) {
        if (this.aborted) return;
        if (error instanceof ApiError) throw error;
      }
      if (this.aborted) return;
      // The connection ended before the reply did: pick it up where it was.
      if (failures >= RECONNECT_DELAYS_MS.length) throw new Error("The connection to the server was lost.");
      await pause(RECONNECT_DELAYS_MS[failures++], this.#controller.signal);
      try {
        response = await this.#reconnect();
      } catch (error) {
        if (this.aborted) return;
        if (error instanceof ApiError) throw error;
      }
    }
  }

  /** Returns true at the last event of the reply. */
  #handle(event, handlers) {
    const id = Number(event.id);
    if (Number.isFinite(id)) {
      if (id <= this.lastEventId) return false;
      this.lastEventId = id;
    }
    const data = JSON.parse(event.data);
    if (event.type === "generation") {
      this.generationId = data.generation_id;
      handlers.generation?.(data);
    } else if (event.type === "delta") {
      this.text += data.text;
      handlers.delta?.(data.text);
    } else if (event.type === "done" || event.type === "error") {
      handlers.end?.(event.type, data);
      return true;
    }
    return false;
  }
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Which generation is writing the reply of which conversation, as far as this tab knows: the
 * ones it started or followed, the one it was reading before a reload (parked in sessionStorage
 * with the text so far and the last event id), and what other tabs of the same user tell it
 * over a BroadcastChannel.
 */
export class RunningReplies {
  #generations = new Map();
  #parked = null;
  #channel = "BroadcastChannel" in window ? new BroadcastChannel(CHANNEL_NAME) : null;
  #waiting = new Map();

  constructor(session) {
    this.session = session;
    this.#channel?.addEventListener("message", (event) => this.#heard(event.data));
  }

  remember(conversationId, generationId) {
    this.#generations.set(conversationId, generationId);
    this.#tell({ type: "running", conversationId, generationId });
  }

  forget(conversationId) {
    this.#generations.delete(conversationId);
  }

  /** What this tab knows of a conversation's running reply: `{generationId, lastEventId, text}`. */
  known(conversationId) {
    const parked = this.#parked;
    if (parked !== null && parked.conversationId === conversationId && parked.userId === this.session.user?.id) {
      this.#parked = null;
      return { generationId: parked.generationId, lastEventId: parked.lastEventId, text: parked.text };
    }
    const generationId = this.#generations.get(conversationId);
    return generationId === undefined ? null : { generationId, lastEventId: 0, text: "" };
  }

  /** Ask the user's other tabs whether one of them follows the conversation's reply. */
  ask(conversationId) {
    if (this.#channel === null) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(conversationId);
        resolve(null);
      }, ASK_TIMEOUT_MS);
      this.#waiting.set(conversationId, (generationId) => {
        clearTimeout(timer);
        this.#waiting.delete(conversationId);
        resolve({ generationId, lastEventId: 0, text: "" });
      });
      this.#tell({ type: "ask", conversationId });
    });
  }

  #tell(message) {
    this.#channel?.postMessage({ ...message, userId: this.session.user?.id });
  }

  #heard(message) {
    if (!this.session.signedIn || message.userId !== this.session.user?.id) return;
    if (message.type === "ask") {
      const generationId = this.#generations.get(message.conversationId);
      if (generationId !== undefined) {
        this.#tell({ type: "running", conversationId: message.conversationId, generationId });
      }
    } else if (message.type === "running") {
      this.#waiting.get(message.conversationId)?.(message.generationId);
    }
  }

  /** When the page is hidden: keep the reply being read, to pick it up after a reload. */
  park(conversationId, stream) {
    const parked = {
      conversationId,
      generationId: stream.generationId,
      lastEventId: stream.lastEventId,
      text: stream.text,
      userId: this.session.user?.id,
    };
    sessionStorage.setItem(PARKED_KEY, JSON.stringify(parked));
  }

  unpark() {
    sessionStorage.removeItem(PARKED_KEY);
  }

  /** At start-up: take what the page before the reload was reading out of storage (it is
   * used only if the same user is signed in again). */
  takeParked() {
    const raw = sessionStorage.getItem(PARKED_KEY);
    sessionStorage.removeItem(PARKED_KEY);
    if (raw === null) return;
    try {
      const parked = JSON.parse(raw);
      if (parked.generationId) this.#parked = parked;
    } catch {
      // A damaged entry: the reply is replayed from its start instead.
    }
  }

  clear() {
    this.#generations.clear();
    this.#parked = null;
  }
}
