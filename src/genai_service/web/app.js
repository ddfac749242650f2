// The web chat page of genai-service: start-up, sign-in state and the sections, routed by the URL
// fragment (#/chat/new, #/chat/<conversation id>, #/documents, #/account) so a reload shows
// the same place.

import { AccountView } from "./modules/account-view.js";
import { Api } from "./modules/api.js";
import { AuthView } from "./modules/auth-view.js";
import { ChatView } from "./modules/chat-view.js";
import { CitationDialog } from "./modules/citation-dialog.js";
import { ConversationList } from "./modules/conversation-list.js";
import { DocumentsView } from "./modules/documents-view.js";
import { byId, show } from "./modules/dom.js";
import { RunningReplies } from "./modules/replies.js";
import { Session } from "./modules/session.js";

const SECTIONS = ["chat-view", "documents-view", "account-view"];
const CHAT_ROUTE = /^#\/chat\/([0-9a-f-]{36})$/;

const session = new Session();
const api = new Api(session);
const replies = new RunningReplies(session);
const conversations = new ConversationList(api);
const citations = new CitationDialog(api);
const chat = new ChatView({ api, replies, conversations, citations });
const documents = new DocumentsView(api);
const account = new AccountView(api, session);
const auth = new AuthView(session, { onSignedIn: enterWorkspace });

function enterWorkspace() {
  auth.hide();
  const user = session.user;
  byId("who").textContent = user.is_anonymous ? "Anonymous" : user.full_name || user.email;
  show(byId("workspace"));
  conversations.refresh();
  route();
}

async function signedOut(reason) {
  chat.clear();
  documents.clear();
  account.clear();
  conversations.clear();
  citations.clear();
  replies.clear();
  show(byId("workspace"), false);
  await auth.showFor(reason);
}

function route() {
  if (!session.signedIn) return;
  const hash = location.hash;
  for (const id of SECTIONS) show(byId(id), false);
  chat.leave();
  const section = hash.startsWith("#/documents") ? "documents" : hash.startsWith("#/account") ? "account" : "chat";
  for (const link of document.querySelectorAll(".sections a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (section === "documents") documents.open();
  else if (section === "account") account.open();
  else {
    const match = CHAT_ROUTE.exec(hash);
    if (match === null && hash !== "#/chat/new") history.replaceState(null, "", "#/chat/new");
    chat.open(match === null ? null : match[1]);
  }
}

window.addEventListener("hashchange", route);
// Parked only while the page is hidden: a reload picks both up, a page shown again from the
// back-forward cache takes them back out of storage.
window.addEventListener("pagehide", () => {
  session.parkForReload();
  chat.park();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) {
    session.unpark();
    replies.unpark();
  }
});
session.addEventListener("ended", (event) => signedOut(event.detail.reason));
byId("sign-out").addEventListener("click", () => session.signOut());
byId("new-chat").addEventListener("click", () => {
  if (location.hash === "#/chat/new") chat.open(null);
  else location.hash = "#/chat/new";
});
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  if (!location.hash.startsWith("#/chat")) location.hash = "#/chat/new";
  chat.focusComposer();
});

async function start() {
  replies.takeParked();
  const resumed = await session.resume();
  show(byId("loading"), false);
  if (resumed) enterWorkspace();
  else if (byId("auth-view").hidden) await auth.showFor();
}

start();
