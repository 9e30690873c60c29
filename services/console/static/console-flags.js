// The flags pages. A refused change (4xx / 5xx) carries a message: show it in #flash instead of dropping
// it (htmx's default), whatever the button's own target was. JSON errors (sign-in, CSRF) become text.
document.addEventListener("htmx:beforeSwap", (e) => {
  const xhr = e.detail.xhr, flash = document.getElementById("flash");
  if (xhr.status < 400 || !flash) return;
  Object.assign(e.detail, {shouldSwap: true, isError: false, target: flash, swapOverride: "innerHTML",
                           selectOverride: "unset"});
  if ((xhr.getResponseHeader("content-type") || "").includes("json")) {
    let msg = xhr.responseText;
    try { msg = JSON.parse(msg).detail; } catch (_) { /* not JSON after all: show as is */ }
    const p = document.createElement("p");
    p.className = "flash bad";
    p.textContent = typeof msg === "string" ? msg : JSON.stringify(msg);
    e.detail.serverResponse = p.outerHTML;
  }
});
