// Confirmations and one-line questions in the page's own modal dialog (keyboard and screen-reader
// friendly, unlike `window.confirm`): Escape or Cancel says no, Enter or the action button yes.

import { byId, show } from "./dom.js";

function ask({ title, text = "", action, label = null, value = "" }) {
  const dialog = byId("confirm-dialog");
  const form = byId("confirm-form");
  const input = byId("confirm-input");
  byId("confirm-title").textContent = title;
  byId("confirm-text").textContent = text;
  byId("confirm-ok").textContent = action;
  show(byId("confirm-field"), label !== null);
  byId("confirm-label").textContent = label ?? "";
  input.value = value;
  return new Promise((resolve) => {
    const finish = (answer) => {
      form.removeEventListener("submit", submitted);
      byId("confirm-cancel").removeEventListener("click", cancelled);
      dialog.removeEventListener("cancel", cancelled);
      dialog.close();
      resolve(answer);
    };
    const submitted = (event) => {
      event.preventDefault();
      if (label !== null && input.value.trim() === "") {
        input.focus();
        return;
      }
      finish(label === null ? true : input.value.trim());
    };
    const cancelled = (event) => {
      event.preventDefault();
      finish(label === null ? false : null);
    };
    form.addEventListener("submit", submitted);
    byId("confirm-cancel").addEventListener("click", cancelled);
    dialog.addEventListener("cancel", cancelled);
    dialog.showModal();
    if (label !== null) input.select();
    else byId("confirm-ok").focus();
  });
}

/** Resolves to true when the user confirms `action`. */
export function confirmAction({ title, text, action }) {
  return ask({ title, text, action });
}

/** Resolves to the text entered, or null when cancelled. */
export function askText({ title, label, value, action }) {
  return ask({ title, label, value, action });
}
