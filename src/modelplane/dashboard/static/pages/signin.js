// Sign in with an API token. It is kept in sessionStorage for this tab only.

import { clear, errorBox, field, h } from "../dom.js";

export function render(main, notice, submit) {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "panel",
      onsubmit: async (e) => {
        e.preventDefault();
        clear(status);
        const button = form.querySelector("button");
        button.disabled = true;
        try {
          await submit(input.value.trim());
        } catch (err) {
          clear(status, errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Access token", input, "`modelplane up` prints the admin's token; an admin gives you yours with `modelplane tokens create`."),
    h("p", { class: "small muted" }, "The token stays in this browser tab only (session storage) and is sent in the Authorization header, never in a URL."),
    h("button", { class: "primary", type: "submit" }, "Sign in"),
    status,
  );
  clear(
    main,
    h("h1", {}, "Sign in"),
    h("p", { class: "sub" }, "modelplane serves your trained models serverless or dedicated. Sign in to deploy, watch and try them."),
    notice ? h("div", { class: "error", role: "alert" }, notice) : null,
    form,
  );
  input.focus();
}
