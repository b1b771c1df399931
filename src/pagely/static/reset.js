// The password reset form (templates/auth/reset.html), as a file rather than an inline script:
// the page's Content-Security-Policy allows scripts from this origin only.
const form = document.getElementById("reset");
const error = document.getElementById("error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = form.new_password.value;
  const min = form.new_password.minLength;
  const max = form.new_password.maxLength;
  error.hidden = true;
  if (password.length < min || password.length > max) {
    error.textContent = `The password must be ${min} to ${max} characters.`;
    error.hidden = false;
    return;
  }
  const response = await fetch(form.action, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token: form.token.value, new_password: password}),
  });
  if (response.ok) {
    form.hidden = true;
    document.getElementById("done").hidden = false;
    return;
  }
  const body = await response.json().catch(() => null);
  const detail = body && body.error && body.error.details && body.error.details[0];
  error.textContent = (detail && detail.message) || (body && body.error && body.error.message)
    || "Something went wrong. Try again.";
  error.hidden = false;
});
