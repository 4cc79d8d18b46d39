// cloverleaf dashboard: the little the pages need beyond HTML (no framework, no build step).
// Confirm before destructive forms, copy buttons, Health's live refresh, and the Playground.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const note = button.parentElement.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(field.value);
  } catch (_) {          // no clipboard API (plain http): select it for Ctrl+C
    field.focus();
    field.select();
    document.execCommand && document.execCommand("copy");
  }
  if (note) note.textContent = "Copied";
});

// Health: swap in the live part every 5 s while the tab is visible.
(() => {
  const box = document.querySelector("[data-live]");
  if (!box) return;
  const refresh = async () => {
    if (document.hidden) return;
    box.setAttribute("aria-busy", "true");
    try {
      const res = await fetch(box.dataset.live, { credentials: "same-origin", redirect: "manual" });
      if (res.ok) box.innerHTML = await res.text();
      else document.getElementById("live-note").textContent = "Live updates stopped (sign in again)";
    } catch (_) { /* offline for a moment: the next tick retries */ }
    box.setAttribute("aria-busy", "false");
  };
  setInterval(refresh, 5000);
})();

// Playground: a chat that streams NDJSON lines from /ui/playground/stream.
(() => {
  const root = document.getElementById("playground");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const log = $("pg-log"), input = $("pg-input"), form = $("pg-form"), files = $("pg-files");
  const send = $("pg-send"), stop = $("pg-stop");
  const maxBytes = Number(root.dataset.maxBytes) || 20 * 1024 * 1024;
  let history = [];
  let controller = null;

  const fmtMs = (v) => v == null ? "—" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms";
  const set = (id, text) => { $(id).textContent = text; };

  const bubble = (role, text) => {
    const hint = log.querySelector(".hint");
    if (hint) hint.remove();
    const li = document.createElement("li");
    li.className = role;
    li.textContent = text;
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  };

  const readFile = (file) => new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });

  const parts = async (text) => {
    const chosen = Array.from(files.files || []);
    if (!chosen.length) return text;
    const content = [{ type: "text", text }];
    for (const file of chosen) {
      const url = await readFile(file);
      if (file.type.startsWith("image/")) content.push({ type: "image_url", image_url: { url } });
      else content.push({ type: "file", file: { file_data: url, filename: file.name } });
    }
    return content;
  };

  files.addEventListener("change", () => {
    const names = Array.from(files.files || []).map((f) => f.name);
    set("pg-attached", names.length ? "Attached: " + names.join(", ") : "");
  });

  $("pg-clear").addEventListener("click", () => {
    history = [];
    log.innerHTML = "";
    bubble("hint muted", "New conversation.");
    input.focus();
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
  });

  stop.addEventListener("click", () => controller && controller.abort());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    const content = await parts(text);
    const body = { model: $("pg-model").value.trim(), messages: [], max_tokens: Number($("pg-max").value) || undefined };
    const temp = $("pg-temp").value.trim();
    if (temp) body.temperature = Number(temp);
    const system = $("pg-system").value.trim();
    if (system) body.messages.push({ role: "system", content: system });
    body.messages.push(...history, { role: "user", content });
    const key = $("pg-key").value.trim();
    if (key) body.key = key;
    const payload = JSON.stringify(body);
    if (payload.length > maxBytes) { bubble("error", "The message and its attachments are larger than the server accepts."); return; }

    const names = Array.from(files.files || []).map((f) => f.name);
    const mine = bubble("user", text);
    if (names.length) { const a = document.createElement("span"); a.className = "att"; a.textContent = "📎 " + names.join(", "); mine.appendChild(a); }
    input.value = ""; files.value = ""; set("pg-attached", "");
    const answer = bubble("assistant streaming", "");
    ["pg-ttft", "pg-latency", "pg-tokens", "pg-cost", "pg-target", "pg-trace"].forEach((id) => set(id, "—"));
    set("pg-status", "streaming…");
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    let full = "";
    try {
      const res = await fetch("/ui/playground/stream", {
        method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: { "content-type": "application/json", "x-csrf-token": root.dataset.csrf }, body: payload,
      });
      if (!res.ok) {
        let message = "HTTP " + res.status;
        try { const err = await res.json(); message = err.error.message + " (HTTP " + res.status + ")"; if (err.trace_id) showTrace(err.trace_id); } catch (_) {}
        throw new Error(message);
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl); buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line);
          if (ev.type === "text") { full += ev.text; answer.textContent = full; log.scrollTop = log.scrollHeight; }
          else if (ev.type === "start") showTrace(ev.trace_id);
          else if (ev.type === "error") throw new Error(ev.message);
          else if (ev.type === "done") {
            set("pg-status", "done");
            set("pg-ttft", fmtMs(ev.ttft_ms)); set("pg-latency", fmtMs(ev.latency_ms));
            set("pg-tokens", ev.input_tokens + " in · " + ev.output_tokens + " out");
            set("pg-cost", ev.cost_text || "—"); set("pg-target", ev.target || "—");
          }
        }
      }
      history.push({ role: "user", content }, { role: "assistant", content: full });
    } catch (err) {
      const aborted = err.name === "AbortError";
      set("pg-status", aborted ? "stopped" : "failed");
      if (!full) answer.remove();
      if (!aborted) bubble("error", String(err.message || err));
    } finally {
      answer.classList.remove("streaming");
      controller = null; send.disabled = false; stop.disabled = true;
      input.focus();
    }
  });

  function showTrace(id) {
    const dd = $("pg-trace");
    dd.textContent = "";
    const a = document.createElement("a");
    a.href = "/ui/traces/trace/" + encodeURIComponent(id);
    a.textContent = id.slice(0, 14) + "…";
    a.id = "pg-trace-link";
    dd.appendChild(a);
  }
})();
