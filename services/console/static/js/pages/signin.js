// Sign in with email and password: POST /v2/requesttoken answers with the token (a JSON string).
import { api, ApiError, setToken, takeSignInNotice } from "../api.js";
import { el, field, put, showProblem } from "../ui.js";

export async function render(root, _params, ctx) {
  const notice = takeSignInNotice();
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const submit = el("button", { type: "submit" }, "Sign in");
  const form = el(
    "form",
    { class: "card signin", novalidate: true },
    field("Email", email),
    field("Password", password),
    el("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data } = await api("POST", "/v2/requesttoken", { body: { email: email.value.trim(), password: password.value } });
      setToken(typeof data === "string" ? data : String(data));
      ctx.navigate("#/subscriptions");
    } catch (error) {
      showProblem(form, error instanceof ApiError ? error : new ApiError(0, { detail: String(error.message) }));
      password.value = "";
    } finally {
      submit.disabled = false;
    }
  });
  put(root, 
    el("h1", {}, "Sign in"),
    notice ? el("p", { class: "form-alert", role: "alert" }, notice) : null,
    el("p", {}, "Sign in to Herald with your email and password."),
    form,
  );
  email.focus();
}
