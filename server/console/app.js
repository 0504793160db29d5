// Ledger console: one ES module, no build step, no dependencies. Served by the binary
// (server/src/console.rs) under a strict Content-Security-Policy: no inline script or style,
// no other origin. Every piece of log text is put on the page with textContent, never as
// markup: a log message is attacker-controlled.
//
// The session token lives in sessionStorage: readable only by this origin, gone when the
// tab closes, removed on sign-out. API calls send it as a Bearer credential; reads of a
// project add project_id=, as the HTTP API asks of session tokens.

const LEVELS = ["debug", "info", "warning", "error", "critical"];
const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
const TOKEN = "ledger.token";

// ---- DOM helpers -------------------------------------------------------------------------

/** Makes an element; strings among the children become text nodes (never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const svgNS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function mount(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
}

function num(n) {
  return Number(n).toLocaleString("en-US");
}

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN);
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (r.status === 401 && t) {
    signOut();
    throw new ApiError(401, json);
  }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  return u.toString();
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  go("/ui/signin");
}

// ---- Routing -----------------------------------------------------------------------------

let cleanup = [];

function go(path, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

async function render() {
  for (const f of cleanup) f();
  cleanup = [];
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  nav.replaceChildren();
  who.replaceChildren();
  if (path === "/ui/register") return registerPage();
  if (!token()) return signInPage();
  who.append(h("button", { onclick: signOut, id: "signout" }, "Sign out"));
  api("GET", "/api/v1/auth/me").then((me) => who.prepend(h("span", {}, me.email))).catch(() => {});
  const m = path.match(/^\/ui\/projects\/([0-9a-f]{16})(?:\/([a-z]+))?(?:\/([0-9a-f]{32}))?$/);
  try {
    if (m) {
      const [, pid, page = "explore", logId] = m;
      const project = await api("GET", `/api/v1/projects/${pid}`);
      projectNav(project, page);
      if (page === "explore") return explorePage(project);
      if (page === "keys") return keysPage(project);
      if (page === "settings") return settingsPage(project);
      if (page === "errors") return errorsPage(project);
      if (page === "patterns") return patternsPage(project);
      if (page === "usage") return usagePage(project);
      if (page === "logs" && logId) return logPage(project, logId);
    }
    return projectsPage();
  } catch (e) {
    if (e.status === 401) return;
    mount(h("p", { class: "error" }, e.message));
  }
}

function projectNav(project, page) {
  const base = `/ui/projects/${project.id}`;
  const link = (p, label) =>
    h("a", { href: `${base}/${p}`, "data-link": true, class: p === page ? "active" : "" }, label);
  document.getElementById("nav").replaceChildren(
    h("a", { href: "/ui/projects", "data-link": true }, "Projects"),
    h("span", { class: "muted" }, project.name),
    link("explore", "Explore"), link("errors", "Errors"), link("patterns", "Patterns"),
    link("usage", "Usage"), link("keys", "API keys"), link("settings", "Settings"),
  );
}

// ---- Sign in / register --------------------------------------------------------------------

function authForm(title, submitLabel, path, other) {
  const email = h("input", { type: "email", placeholder: "email", autocomplete: "username", required: true, id: "email" });
  const password = h("input", {
    type: "password", placeholder: "password (at least 10 characters)", required: true, id: "password",
    autocomplete: path.endsWith("register") ? "new-password" : "current-password",
  });
  const msg = h("p", { class: "error" });
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      msg.textContent = "";
      try {
        const r = await api("POST", path, { email: email.value, password: password.value });
        sessionStorage.setItem(TOKEN, r.token);
        go("/ui/projects", true);
      } catch (err) {
        msg.textContent = err.message;
      }
    },
  }, email, password, h("button", { class: "primary", type: "submit" }, submitLabel), msg);
  mount(h("div", { class: "auth panel" }, h("h1", {}, title), form, other));
}

function signInPage() {
  if (location.pathname !== "/ui/signin") history.replaceState(null, "", "/ui/signin");
  authForm("Sign in to Ledger", "Sign in", "/api/v1/auth/login",
    h("p", { class: "muted" }, "No account? ", h("a", { href: "/ui/register", "data-link": true }, "Create one")));
}

function registerPage() {
  authForm("Create a Ledger account", "Create account", "/api/v1/auth/register",
    h("p", { class: "muted" }, "Have one? ", h("a", { href: "/ui/signin", "data-link": true }, "Sign in")));
}

// ---- Projects ----------------------------------------------------------------------------

async function projectsPage() {
  if (!location.pathname.startsWith("/ui/projects")) history.replaceState(null, "", "/ui/projects");
  const { projects } = await api("GET", "/api/v1/projects");
  const name = h("input", { placeholder: "new project name", required: true, id: "project-name" });
  const msg = h("span", { class: "error" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const p = await api("POST", "/api/v1/projects", { name: name.value });
        go(`/ui/projects/${p.id}/keys`);
      } catch (err) {
        msg.textContent = err.message;
      }
    },
  }, name, h("button", { class: "primary", type: "submit" }, "Create project"), msg);
  const rows = projects.map((p) => h("tr", {},
    h("td", {}, h("a", { href: `/ui/projects/${p.id}/explore`, "data-link": true }, p.name)),
    h("td", {}, h("code", {}, p.id)),
    h("td", {}, `${p.retention_days} days`),
    h("td", {}, num(p.daily_quota)),
    h("td", {}, h("a", { href: `/ui/projects/${p.id}/keys`, "data-link": true }, "keys"), " · ",
      h("a", { href: `/ui/projects/${p.id}/settings`, "data-link": true }, "settings")),
  ));
  mount(
    h("h1", {}, "Projects"),
    h("div", { class: "panel" }, form),
    projects.length
      ? h("table", {}, h("tr", {}, ["Name", "Id", "Retention", "Daily quota", ""].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "muted" }, "No projects yet: create one, then an API key to send logs with."),
  );
}

function settingsPage(project) {
  const fields = [
    ["name", "Name", "text"], ["retention_days", "Retention (days)", "number"],
    ["daily_quota", "Daily quota (logs)", "number"], ["rate_limit_per_minute", "Requests per minute", "number"],
    ["rate_limit_per_hour", "Requests per hour", "number"], ["max_queue_depth", "Max queue depth", "number"],
  ];
  const inputs = {};
  const msg = h("p");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const body = {};
      for (const [k, , type] of fields) {
        const v = inputs[k].value;
        if (String(project[k]) !== v) body[k] = type === "number" ? Number(v) : v;
      }
      try {
        Object.assign(project, await api("PATCH", `/api/v1/projects/${project.id}`, body));
        msg.className = "ok";
        msg.textContent = "Saved.";
      } catch (err) {
        msg.className = "error";
        msg.textContent = err.message;
      }
    },
  },
  h("table", {}, fields.map(([k, label, type]) => {
    inputs[k] = h("input", { type, value: String(project[k]), id: `field-${k}`, min: type === "number" ? "0" : undefined });
    return h("tr", {}, h("th", {}, label), h("td", {}, inputs[k]));
  })),
  h("p", {}, h("button", { class: "primary", type: "submit" }, "Save")), msg);

  const confirmInput = h("input", { placeholder: `type ${project.name} to confirm`, id: "delete-confirm" });
  const del = h("button", {
    class: "danger", disabled: true, id: "delete-project",
    onclick: async () => {
      await api("DELETE", `/api/v1/projects/${project.id}`);
      go("/ui/projects");
    },
  }, "Delete project and all its logs");
  confirmInput.addEventListener("input", () => { del.disabled = confirmInput.value !== project.name; });
  mount(h("h1", {}, `Settings: ${project.name}`), h("div", { class: "panel" }, form),
    h("h2", {}, "Delete"),
    h("div", { class: "panel" }, h("p", { class: "muted" },
      "Deleting a project removes its logs, search index and API keys. It cannot be undone."),
    h("div", { class: "row" }, confirmInput, del)));
}

// ---- API keys ----------------------------------------------------------------------------

function curlLine(key) {
  return `curl -X POST ${location.origin}/api/v1/ingest/single \\\n` +
    `  -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\\n` +
    `  -d "{\\"timestamp\\": \\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\", \\"level\\": \\"info\\", ` +
    `\\"log_type\\": \\"logger\\", \\"importance\\": \\"standard\\", \\"message\\": \\"hello from curl\\"}"`;
}

function copyButton(text, label = "Copy") {
  const b = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = "Copied";
      } catch {
        b.textContent = "Select and copy by hand";
      }
    },
  }, label);
  return b;
}

async function keysPage(project) {
  const { keys } = await api("GET", `/api/v1/projects/${project.id}/keys`);
  const name = h("input", { placeholder: "key name", required: true, id: "key-name" });
  const ingest = h("input", { type: "checkbox", checked: true, id: "scope-ingest" });
  const query = h("input", { type: "checkbox", checked: true, id: "scope-query" });
  const shown = h("div");
  const msg = h("span", { class: "error" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      const scopes = [ingest.checked && "ingest", query.checked && "query"].filter(Boolean);
      try {
        const k = await api("POST", `/api/v1/projects/${project.id}/keys`, { name: name.value, scopes });
        await keysPage(project);
        const curl = curlLine(k.key);
        document.getElementById("new-key").replaceChildren(h("div", { class: "panel" },
          h("p", {}, h("strong", {}, "Your new API key. "), "It is shown only this once: copy it now."),
          h("div", { class: "row" }, h("div", { class: "secret", id: "key-secret" }, k.key), copyButton(k.key)),
          h("p", { class: "muted" }, "Send a log with it:"),
          h("pre", { class: "secret", id: "curl-line" }, curl), h("p", {}, copyButton(curl, "Copy the curl line")),
          h("p", {}, "Then find it in ", h("a", { href: `/ui/projects/${project.id}/explore`, "data-link": true }, "Explore"), "."),
        ));
      } catch (err) {
        msg.textContent = err.message;
      }
    },
  }, name, h("label", {}, ingest, "ingest"), h("label", {}, query, "query"),
  h("button", { class: "primary", type: "submit" }, "Create key"), msg);
  const rows = keys.map((k) => h("tr", { class: k.revoked_at ? "muted" : "" },
    h("td", {}, k.name), h("td", {}, h("code", {}, `${k.prefix}…`)), h("td", {}, k.scopes.join(", ")),
    h("td", {}, fmtTime(k.created_at)), h("td", {}, fmtTime(k.last_used_at)),
    h("td", {}, k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : h("button", {
      class: "danger", dataset: { revoke: k.name },
      onclick: async () => {
        if (!confirm(`Revoke the key "${k.name}"? Clients using it are refused from the next request.`)) return;
        await api("DELETE", `/api/v1/projects/${project.id}/keys/${k.id}`);
        keysPage(project);
      },
    }, "Revoke")),
  ));
  mount(h("h1", {}, `API keys: ${project.name}`), h("div", { id: "new-key" }, shown),
    h("div", { class: "panel" }, form),
    keys.length
      ? h("table", { id: "keys" }, h("tr", {}, ["Name", "Key", "Scopes", "Created", "Last used", ""].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "muted" }, "No keys yet."));
}

// ---- Explore -----------------------------------------------------------------------------

/** Explore's state, read from and written to the URL so a link can be shared. */
function exploreState() {
  const p = new URLSearchParams(location.search);
  return {
    q: p.get("q") || "",
    range: p.get("range") || (p.get("from") ? "custom" : "1h"),
    from: p.get("from") || "",
    to: p.get("to") || "",
    level: (p.get("level") || "").split(",").filter((l) => LEVELS.includes(l)),
    service: p.get("service") || "",
    environment: p.get("environment") || "",
  };
}

function writeState(st) {
  const params = qs({
    q: st.q, range: st.range === "1h" ? "" : st.range,
    from: st.range === "custom" ? st.from : "", to: st.range === "custom" ? st.to : "",
    level: st.level.join(","), service: st.service, environment: st.environment,
  });
  history.replaceState(null, "", location.pathname + (params ? `?${params}` : ""));
}

/** The [start, end) of the state's range in ms. */
function span(st) {
  if (st.range === "custom" && st.from) {
    const to = st.to ? Date.parse(st.to) : Date.now();
    return [Date.parse(st.from), to];
  }
  const now = Date.now();
  return [now - (RANGES[st.range] || 3600) * 1000, now + 60_000];
}

function filterParams(project, st) {
  const [start, end] = span(st);
  return {
    project_id: project.id, start_time: new Date(start).toISOString(), end_time: new Date(end).toISOString(),
    level: st.level.join(","), service: st.service, environment: st.environment,
  };
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function explorePage(project) {
  const st = exploreState();
  const q = h("input", { class: "q", id: "query", value: st.q, placeholder: 'search: timeout level:error "connection refused" attributes.http.status:>499' });
  const range = h("select", { id: "range" },
    [...Object.keys(RANGES), "custom"].map((r) => h("option", { value: r, selected: r === st.range }, r === "custom" ? "custom…" : `last ${r}`)));
  const [s0, e0] = span(st);
  const from = h("input", { type: "datetime-local", id: "from", value: toLocalInput(s0) });
  const to = h("input", { type: "datetime-local", id: "to", value: toLocalInput(Math.min(e0, Date.now())) });
  const custom = h("span", { class: "row" }, "from", from, "to", to);
  custom.hidden = st.range !== "custom";
  const levels = LEVELS.map((l) => h("input", { type: "checkbox", value: l, checked: st.level.includes(l), id: `level-${l}` }));
  const service = h("input", { placeholder: "service", value: st.service, id: "service", size: 12 });
  const environment = h("input", { placeholder: "environment", value: st.environment, id: "environment", size: 12 });
  const live = h("button", { type: "button", class: "toggle", id: "live" }, "Live tail");
  const queryError = h("div", { class: "query-error", id: "query-error" });
  const chart = h("div", { id: "chart" });
  const list = h("div", { class: "logs", id: "results" });
  const sentinel = h("div", { class: "sentinel", id: "more" });
  const count = h("span", { class: "muted", id: "count" });

  const read = () => {
    st.q = q.value.trim();
    st.range = range.value;
    if (st.range === "custom") {
      st.from = from.value ? new Date(from.value).toISOString() : "";
      st.to = to.value ? new Date(to.value).toISOString() : "";
    }
    st.level = levels.filter((c) => c.checked).map((c) => c.value);
    st.service = service.value.trim();
    st.environment = environment.value.trim();
    writeState(st);
  };
  let gen = 0;
  let cursor = null;
  let loading = false;
  let shown = 0;

  async function loadPage(first) {
    if (loading || (!first && !cursor)) return;
    loading = true;
    const my = gen;
    const params = { ...filterParams(project, st), limit: 100, cursor: first ? "" : cursor };
    const path = st.q ? `/api/v1/logs/search?${qs({ ...params, q: st.q })}` : `/api/v1/logs?${qs(params)}`;
    sentinel.textContent = "Loading…";
    try {
      const r = await api("GET", path);
      if (my !== gen) return;
      queryError.replaceChildren();
      for (const log of r.logs) list.append(logRow(project, log));
      shown += r.logs.length;
      cursor = r.next_cursor;
      count.textContent = `${num(shown)} log${shown === 1 ? "" : "s"}${cursor ? " (scroll for more)" : ""}${r.partial ? " — search budget reached, results partial" : ""}`;
      sentinel.textContent = cursor ? "" : shown ? "End of results." : "No logs match.";
    } catch (e) {
      if (my !== gen) return;
      sentinel.textContent = "";
      showQueryError(queryError, st.q, e);
    } finally {
      loading = false;
    }
  }

  function run() {
    read();
    gen += 1;
    cursor = null;
    shown = 0;
    list.replaceChildren();
    queryError.replaceChildren();
    custom.hidden = st.range !== "custom";
    loadPage(true);
    drawVolume(project, st, chart, (a, b) => {
      st.range = "custom";
      range.value = "custom";
      from.value = toLocalInput(a);
      to.value = toLocalInput(b);
      run();
    });
    if (tail) startTail();
  }

  // Load more as the end of the list scrolls into view.
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadPage(false);
  }, { rootMargin: "400px" });
  io.observe(sentinel);
  cleanup.push(() => io.disconnect());

  // Live tail: a fetch stream (EventSource cannot send an Authorization header).
  let tail = null;
  function stopTail() {
    if (tail) tail.abort();
    tail = null;
    live.classList.remove("on");
    live.textContent = "Live tail";
  }
  function startTail() {
    if (tail) tail.abort();
    tail = new AbortController();
    live.classList.add("on");
    live.textContent = "Live tail: on";
    const f = filterParams(project, st);
    delete f.start_time;
    delete f.end_time;
    followTail(project, { ...f, q: st.q }, tail.signal, (log) => {
      const row = logRow(project, log);
      row.classList.add("fresh");
      list.prepend(row);
      shown += 1;
      count.textContent = `${num(shown)} logs (live)`;
      while (list.childElementCount > 5000) list.lastElementChild.remove();
    }, (err) => {
      stopTail();
      queryError.replaceChildren(h("p", { class: "error" }, `Live tail stopped: ${err}`));
    });
  }
  live.addEventListener("click", () => (tail ? stopTail() : startTail()));
  cleanup.push(stopTail);

  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); run(); } },
    q, range, custom, h("button", { class: "primary", type: "submit", id: "run" }, "Search"));
  range.addEventListener("change", () => { custom.hidden = range.value !== "custom"; if (range.value !== "custom") run(); });
  for (const c of levels) c.addEventListener("change", run);
  mount(
    h("div", { class: "panel" }, form,
      h("div", { class: "row" }, h("span", { class: "muted" }, "level"),
        levels.map((c) => h("label", { class: `lvl-${c.value}` }, c, c.value)),
        service, environment, h("button", { type: "button", onclick: run }, "Apply"), live),
      queryError),
    h("div", { class: "panel" }, chart),
    h("div", { class: "panel" }, h("div", { class: "row" }, count), list, sentinel),
  );
  run();
}

function showQueryError(el, query, e) {
  const m = /at position (\d+)/.exec(e.message || "");
  if (e.code === "invalid_query" && m && query) {
    const pos = Math.min(Number(m[1]), query.length);
    el.replaceChildren(h("p", { class: "error" }, e.message),
      h("pre", {}, query, "\n", h("span", { class: "caret" }, `${" ".repeat(pos)}^`)));
  } else {
    el.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

function logRow(project, log) {
  const line = h("div", { class: "line" },
    h("span", { class: "ts" }, fmtTime(log.timestamp)),
    h("span", { class: `lvl lvl-${log.level}` }, log.level),
    h("span", { class: "svc" }, log.service || ""),
    h("span", { class: "msg" }, log.message || log.error_message || log.error_type || ""));
  const row = h("div", { class: "log", dataset: { id: log.id } }, line);
  line.addEventListener("click", () => {
    const open = row.querySelector("pre");
    if (open) return open.remove();
    row.append(h("pre", {}, JSON.stringify(log, null, 2), "\n",
      h("a", { href: `/ui/projects/${project.id}/logs/${log.id}`, "data-link": true }, "permalink")));
  });
  return row;
}

/** Reads the server-sent events of /logs/tail from a fetch stream. */
async function followTail(project, params, signal, onLog, onError) {
  try {
    const r = await fetch(`/api/v1/logs/tail?${qs(params)}`, {
      headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal, credentials: "omit",
    });
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      throw new ApiError(r.status, body);
    }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (event === "log") onLog(JSON.parse(data));
      }
    }
    if (!signal.aborted) onError("the server ended the stream");
  } catch (e) {
    if (!signal.aborted) onError(e.message || String(e));
  }
}

/** The stacked volume chart by level for the state's range; dragging a span narrows it. */
async function drawVolume(project, st, el, onSelect) {
  const [start, end] = span(st);
  const hours = Math.max(1, Math.ceil((Date.now() - start) / 3_600_000));
  const width = (end - start) / 1000;
  const bucket = width <= 3600 ? "1m" : width <= 6 * 3600 ? "5m" : width <= 86400 ? "15m" : width <= 8 * 86400 ? "1h" : "1d";
  const step = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 }[bucket] * 1000;
  let data;
  try {
    data = await api("GET", `/api/v1/metrics/log-volume?${qs({ project_id: project.id, hours, bucket })}`);
  } catch (e) {
    el.replaceChildren(h("p", { class: "muted" }, `Volume chart unavailable: ${e.message}`));
    return;
  }
  const buckets = data.buckets.filter((b) => {
    const t = Date.parse(b.start);
    return t + step > start && t < end;
  });
  const W = 1000, H = 120, max = Math.max(1, ...buckets.map((b) => b.total));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H + 16}`, class: "chart", id: "volume", preserveAspectRatio: "none" });
  const x = (t) => ((t - start) / (end - start)) * W;
  const colors = getComputedStyle(document.documentElement);
  for (const b of buckets) {
    const t = Date.parse(b.start);
    let y = H;
    for (const l of LEVELS) {
      const n = b.by_level[l] || 0;
      if (!n) continue;
      const bh = (n / max) * H;
      y -= bh;
      const r = s("rect", {
        x: x(t), y, width: Math.max(1, x(t + step) - x(t) - 1), height: bh,
        fill: colors.getPropertyValue(`--${l}`).trim() || "#888",
      });
      const title = s("title");
      title.textContent = `${fmtTime(b.start)} · ${l}: ${num(n)} (total ${num(b.total)})`;
      r.append(title);
      svg.append(r);
    }
  }
  const label = (t, anchor, at) => {
    const tx = s("text", { x: at, y: H + 13, fill: "#8b95a5", "font-size": 11, "text-anchor": anchor });
    tx.textContent = fmtTime(new Date(t).toISOString());
    svg.append(tx);
  };
  label(start, "start", 2);
  label(Math.min(end, Date.now()), "end", W - 2);
  const sel = s("rect", { class: "sel", x: 0, y: 0, width: 0, height: H, visibility: "hidden" });
  svg.append(sel);
  let down = null;
  const at = (e) => {
    const r = svg.getBoundingClientRect();
    return Math.max(0, Math.min(W, ((e.clientX - r.left) / r.width) * W));
  };
  svg.addEventListener("pointerdown", (e) => { down = at(e); svg.setPointerCapture(e.pointerId); });
  svg.addEventListener("pointermove", (e) => {
    if (down === null) return;
    const a = Math.min(down, at(e)), b = Math.max(down, at(e));
    sel.setAttribute("x", a);
    sel.setAttribute("width", b - a);
    sel.setAttribute("visibility", "visible");
  });
  svg.addEventListener("pointerup", (e) => {
    if (down === null) return;
    const a = Math.min(down, at(e)), b = Math.max(down, at(e));
    down = null;
    sel.setAttribute("visibility", "hidden");
    if (b - a < 4) return;
    const t = (px) => start + (px / W) * (end - start);
    onSelect(t(a), t(b));
  });
  const legend = h("div", { class: "legend" }, LEVELS.map((l) => {
    const i = h("i", { class: `lvl-${l}` });
    i.style.background = colors.getPropertyValue(`--${l}`).trim();
    return h("span", {}, i, l);
  }), h("span", {}, `per ${bucket} · drag to zoom`));
  el.replaceChildren(svg, legend);
}

// ---- Errors, patterns, usage, one log ----------------------------------------------------

async function errorsPage(project) {
  const { errors } = await api("GET", `/api/v1/metrics/top-errors?${qs({ project_id: project.id, hours: 24 * 7, limit: 100 })}`);
  const base = `/ui/projects/${project.id}`;
  mount(h("h1", {}, "Top errors (7 days)"),
    errors.length ? h("table", { id: "errors" },
      h("tr", {}, ["Count", "Error", "First seen", "Last seen", ""].map((t) => h("th", {}, t))),
      errors.map((e) => h("tr", {},
        h("td", {}, num(e.count)),
        h("td", {}, h("strong", {}, e.error_type || "(no type)"), h("br"), h("span", { class: "muted" }, e.error_message || "")),
        h("td", {}, fmtTime(e.first_seen)), h("td", {}, fmtTime(e.last_seen)),
        h("td", {}, h("a", { href: `${base}/logs/${e.sample_log_id}`, "data-link": true }, "sample log"),
          /^[\w.$:-]+$/.test(e.error_type || "") ? [" · ",
            h("a", { href: `${base}/explore?${qs({ range: "7d", q: `error_type:${e.error_type}` })}`, "data-link": true }, "all of this type")] : null),
      ))) : h("p", { class: "muted" }, "No errors in the last 7 days."));
}

async function patternsPage(project) {
  const { patterns } = await api("GET", `/api/v1/logs/patterns?${qs({ project_id: project.id, hours: 24, limit: 100 })}`);
  const base = `/ui/projects/${project.id}`;
  mount(h("h1", {}, "Message patterns (24 hours)"),
    patterns.length ? h("table", { id: "patterns" },
      h("tr", {}, ["Count", "Pattern", "Levels", "Last seen", ""].map((t) => h("th", {}, t))),
      patterns.map((p) => h("tr", {},
        h("td", {}, num(p.count)), h("td", {}, h("code", {}, p.pattern)),
        h("td", {}, Object.entries(p.levels || {}).filter(([, n]) => n).map(([l, n]) => h("span", { class: `lvl lvl-${l}` }, `${l} ${num(n)}`))),
        h("td", {}, fmtTime(p.last_seen)),
        h("td", {}, h("a", { href: `${base}/logs/${p.sample_log_id}`, "data-link": true }, "sample log")),
      ))) : h("p", { class: "muted" }, "No logs in the last 24 hours."));
}

async function usagePage(project) {
  const u = await api("GET", `/api/v1/metrics/usage-stats?${qs({ project_id: project.id, days: 30 })}`);
  const used = u.today.logs, quota = u.today.daily_quota;
  const pct = quota ? Math.min(100, (used / quota) * 100) : 100;
  const bar = h("div", { class: "bar" }, h("div"));
  bar.firstChild.style.width = `${pct}%`;
  mount(h("h1", {}, "Usage"),
    h("div", { class: "panel", id: "usage-today" },
      h("p", {}, `Today: ${num(used)} of ${num(quota)} logs (${pct.toFixed(1)} %), ${num(u.today.remaining)} left. The quota resets at midnight UTC.`), bar),
    h("table", { id: "usage-days" }, h("tr", {}, ["Date", "Logs", "Bytes"].map((t) => h("th", {}, t))),
      [...u.days].reverse().map((d) => h("tr", {}, h("td", {}, d.date), h("td", {}, num(d.logs)), h("td", {}, num(d.bytes))))));
}

async function logPage(project, id) {
  try {
    const log = await api("GET", `/api/v1/logs/${id}?${qs({ project_id: project.id })}`);
    mount(h("h1", {}, "Log ", h("code", {}, id)), h("div", { class: "panel" }, h("pre", { id: "log-json" }, JSON.stringify(log, null, 2))));
  } catch (e) {
    mount(h("p", { class: "error" }, e.status === 404 ? "No such log in this project (or it is past its retention)." : e.message));
  }
}

render();
