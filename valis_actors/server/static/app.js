// The VALIS web chat: a client of this server's own /v1/models and /v1/chat/completions.
// Plain script, no build step, nothing loaded from elsewhere. It holds no key: a key typed
// into the page stays in sessionStorage (this tab only).
"use strict";

(() => {
  const STORE = "valis.webchat.v1"; // localStorage: {persona, conversations: {id: {sessionId, messages}}}
  const KEY = "valis.webchat.key"; // sessionStorage: the API key, when the server needs one
  const FALLBACK_HINT =
    "No LLM answered, so the persona's local fallback did. To use a real LLM, set its key " +
    "(ANTHROPIC_API_KEY or OPENAI_API_KEY) in the environment of valis serve, check that the " +
    "provider is in config.json's \"providers\", and restart valis serve. The attempts below " +
    "say why each provider did not answer.";

  const $ = (id) => document.getElementById(id);
  const ui = {
    persona: $("persona"), description: $("persona-description"), fresh: $("new-conversation"),
    auth: $("auth"), authForm: $("auth-form"), key: $("api-key"),
    error: $("error"), errorText: $("error-text"), retry: $("retry"),
    log: $("log"), empty: $("empty"), session: $("session"), announce: $("announce"),
    composer: $("composer"), message: $("message"), send: $("send"), stop: $("stop"),
  };

  let personas = [];
  let inFlight = null; // {controller, persona} while an answer streams
  let state = load();

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "null");
      if (saved && typeof saved === "object" && saved.conversations) return saved;
    } catch (_) { /* unreadable: start over */ }
    return { persona: null, conversations: {} };
  }

  function save() {
    try {
      // An answer still arriving is kept as incomplete: after a reload it is never shown complete.
      localStorage.setItem(STORE, JSON.stringify(state, (k, v) => (k === "status" && v === "streaming" ? "incomplete" : v)));
    } catch (err) {
      showError("Could not keep the conversation in this browser: " + err.message);
    }
  }

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function conversation(personaId) {
    let conv = state.conversations[personaId];
    if (!conv) {
      conv = state.conversations[personaId] = { sessionId: "web-" + newId(), messages: [] };
    }
    return conv;
  }

  function headers(extra) {
    const h = Object.assign({ "Content-Type": "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY);
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  // --- errors ---------------------------------------------------------------------------

  function showError(text, retry) {
    ui.errorText.textContent = text;
    ui.retry.hidden = !retry;
    ui.retry.onclick = retry ? () => { hideError(); retry(); } : null;
    ui.error.hidden = false;
  }

  function hideError() {
    ui.error.hidden = true;
    ui.errorText.textContent = "";
  }

  async function errorOf(response) {
    let message = "";
    try {
      const body = await response.json();
      message = (body.error && body.error.message) || "";
    } catch (_) { /* not JSON */ }
    return `${response.status} ${response.statusText || ""}`.trim() + (message ? `: ${message}` : "");
  }

  function needKey(message) {
    ui.auth.hidden = false;
    showError(message || "This server needs an API key. Type it in the field above.");
    ui.key.focus();
  }

  // --- personas -------------------------------------------------------------------------

  async function loadPersonas() {
    let response;
    try {
      response = await fetch("/v1/models", { headers: headers() });
    } catch (_) {
      showError("Cannot reach the server. Is valis serve running?", loadPersonas);
      return;
    }
    if (response.status === 401) {
      needKey(await errorOf(response));
      return;
    }
    if (!response.ok) {
      showError("Could not list the personas: " + (await errorOf(response)), loadPersonas);
      return;
    }
    hideError();
    ui.auth.hidden = true;
    personas = (await response.json()).data || [];
    ui.persona.replaceChildren(...personas.map((p) => {
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = (p.name || p.id) + (p.description ? ` — ${oneLine(p.description)}` : "");
      option.title = p.description || "";
      return option;
    }));
    const known = personas.some((p) => p.id === state.persona);
    state.persona = known ? state.persona : (personas[0] && personas[0].id) || null;
    ui.persona.value = state.persona || "";
    ui.persona.disabled = personas.length === 0;
    if (!personas.length) showError("The server has no personas.");
    save();
    render();
  }

  function oneLine(text) {
    const line = text.split(/(?<=[.!?])\s/)[0].trim();
    return line.length > 70 ? line.slice(0, 69).trimEnd() + "…" : line;
  }

  function personaById(id) {
    return personas.find((p) => p.id === id);
  }

  // --- rendering ------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ms(seconds) {
    return seconds === null || seconds === undefined ? "?" :
      seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
  }

  function metaNode(meta) {
    const box = el("details", "meta");
    box.open = Boolean(meta.open);
    box.addEventListener("toggle", () => { meta.open = box.open; save(); });
    const model = meta.model ? ` / ${meta.model}` : "";
    const tries = meta.attempts || [];
    box.append(el("summary", null,
      `Answered by ${meta.provider}${model} · first token ${ms(meta.ttft)} · total ${ms(meta.total)}` +
      ` · ${tries.length} attempt${tries.length === 1 ? "" : "s"}`));
    const list = el("ul");
    for (const a of tries) {
      list.append(el("li", null, `${a.provider}: ${a.outcome}${a.reason ? ` (${a.reason})` : ""}` +
        (a.duration ? `, ${ms(a.duration)}` : "")));
    }
    if (meta.fallback) list.append(el("li", null, "→ persona fallback answered"));
    if (!tries.length && !meta.fallback) list.append(el("li", null, "no attempts reported"));
    box.append(list);
    return box;
  }

  const STATUS = {
    incomplete: "Incomplete answer: it was cut off before the end.",
    stopped: "Stopped. This answer is incomplete and the persona will not remember it.",
    failed: "Not answered.",
  };

  function messageNode(m, personaName) {
    const item = el("li", `msg ${m.role} ${m.status || ""}`.trim());
    item.append(el("div", "who", m.role === "user" ? "You" : personaName));
    item.append(el("div", "text", m.text));
    if (m.role === "assistant" && m.status !== "complete" && m.status !== "streaming") {
      item.append(el("div", "status", STATUS[m.status] + (m.error ? ` Reason: ${m.error}` : "")));
    }
    if (m.meta && m.meta.fallback) item.append(el("p", "fallback", "Fallback answer. " + FALLBACK_HINT));
    if (m.meta) item.append(metaNode(m.meta));
    return item;
  }

  function answerName(id) {
    const persona = personaById(id);
    return persona ? persona.name || persona.id : id;
  }

  function render() {
    const persona = personaById(state.persona);
    ui.description.textContent = persona ? persona.description || "" : "";
    const messages = state.persona ? conversation(state.persona).messages : [];
    const name = persona ? persona.name || persona.id : "Assistant";
    ui.log.replaceChildren(...messages.map((m) => messageNode(m, name)));
    ui.empty.hidden = messages.length > 0;
    ui.session.textContent = state.persona ? `Session ${conversation(state.persona).sessionId}` : "";
    const busy = inFlight !== null;
    ui.message.disabled = busy;
    ui.send.disabled = busy || !state.persona;
    ui.persona.disabled = busy || personas.length === 0;
    ui.fresh.disabled = busy;
    ui.stop.hidden = !busy;
    ui.composer.setAttribute("aria-busy", String(busy));
    ui.log.setAttribute("aria-busy", String(busy));
    const last = ui.log.lastElementChild;
    if (last) last.scrollIntoView({ block: "end" });
  }

  // --- sending --------------------------------------------------------------------------

  async function send() {
    const text = ui.message.value;
    if (inFlight || !state.persona || !text.trim()) return;
    hideError();
    const personaId = state.persona;
    const conv = conversation(personaId);
    conv.messages.push({ role: "user", text });
    const answer = { role: "assistant", text: "", status: "streaming",
      error: "The page was reloaded or closed while it arrived." };
    conv.messages.push(answer);
    ui.message.value = "";
    const controller = new AbortController();
    inFlight = { controller, persona: personaId };
    const began = performance.now();
    let firstAt = null;
    save();
    render();

    const finish = (status, error) => {
      answer.status = status;
      if (error) answer.error = error;
      else delete answer.error;
      inFlight = null;
      save();
      render();
      // One announcement per answer for screen readers, not one per chunk.
      ui.announce.textContent = status === "complete" ? `${answerName(personaId)} answered: ${answer.text}` :
        `${STATUS[status]}${answer.error ? ` ${answer.error}` : ""}`;
      ui.message.focus();
    };

    let response;
    try {
      // Only the new message: with X-Session-Id the server's memory holds the conversation.
      // A fresh Idempotency-Key per turn: the same words twice are two turns, not a retry.
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers({ "X-Session-Id": conv.sessionId, "Idempotency-Key": newId() }),
        body: JSON.stringify({ model: personaId, stream: true, messages: [{ role: "user", content: text }] }),
        signal: controller.signal,
      });
    } catch (err) {
      if (controller.signal.aborted) return finish("stopped");
      finish("failed", "Cannot reach the server. Is valis serve running?");
      showError("Cannot reach the server. Is valis serve running?");
      return;
    }
    if (!response.ok) {
      const message = await errorOf(response);
      if (!ui.message.value) ui.message.value = text; // not sent: keep it to edit and send again
      finish("failed", message);
      if (response.status === 401) needKey(message);
      else showError(message);
      return;
    }

    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;
    let cut = null;
    try {
      while (!done) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer += decoder.decode(value, { stream: true });
        let cutAt;
        while ((cutAt = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cutAt);
          buffer = buffer.slice(cutAt + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (!data) continue;
          if (data === "[DONE]") { done = true; break; }
          const chunk = JSON.parse(data);
          if (chunk.error) { cut = chunk.error.message || "the server reported an error"; done = true; break; }
          const choice = (chunk.choices || [])[0];
          if (choice && choice.delta && choice.delta.content) {
            if (firstAt === null) firstAt = performance.now();
            answer.text += choice.delta.content;
            // Only the streaming answer changes: the rest of the log stays as it is.
            const node = ui.log.lastElementChild && ui.log.lastElementChild.querySelector(".text");
            if (node) {
              node.textContent = answer.text;
              node.scrollIntoView({ block: "end" });
            } else render();
          }
          if (chunk.valis) {
            answer.meta = {
              provider: chunk.valis.provider, model: chunk.valis.model,
              fallback: chunk.valis.fallback_used, attempts: chunk.valis.attempts || [],
              fingerprint: chunk.system_fingerprint || null,
            };
          }
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return finish("stopped");
      cut = "The connection broke before the answer finished.";
    }
    if (answer.meta) {
      answer.meta.ttft = firstAt === null ? null : (firstAt - began) / 1000;
      answer.meta.total = (performance.now() - began) / 1000;
    }
    if (cut !== null) {
      finish("incomplete", cut);
      showError("The answer was cut off: " + cut);
    } else if (!done) {
      finish("incomplete", "The stream ended without its end marker.");
      showError("The answer was cut off: the stream ended without its end marker.");
    } else {
      finish("complete");
    }
  }

  function stop() {
    if (inFlight) inFlight.controller.abort(); // the server cancels the provider attempt
  }

  // --- events ---------------------------------------------------------------------------

  ui.composer.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && inFlight) { event.preventDefault(); stop(); }
  });
  ui.stop.addEventListener("click", stop);
  ui.persona.addEventListener("change", () => {
    state.persona = ui.persona.value;
    save();
    hideError();
    render();
  });
  ui.fresh.addEventListener("click", () => {
    if (!state.persona || inFlight) return;
    delete state.conversations[state.persona]; // a new session id: the server starts afresh too
    save();
    hideError();
    render();
    ui.message.focus();
  });
  ui.authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.key.value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
    ui.key.value = "";
    loadPersonas();
  });

  render();
  loadPersonas();
})();
