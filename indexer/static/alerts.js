// newswire alerts view: list, create, pause/resume and delete alert rules through /api/alerts.
// Rule names, queries and alert titles are user or article text: the DOM is built with
// createElement/textContent only (never innerHTML), and only http(s) URLs become links.
// Writes send the API token as a bearer token; the page asks for it once and keeps it in
// sessionStorage (this tab only).

const TOKEN_KEY = "newswire.apiToken";
const LATEST = 5;  // alerts shown per rule
const FILTERS = [
  // [rule filter field, search URL parameter, form input id, label]
  ["conflicts", "conflict", "rule-conflicts", "conflict"],
  ["event_types", "event_type", "rule-event-types", "event type"],
  ["countries", "country", "rule-countries", "country"],
  ["sources", "source", "rule-sources", "source"],
  ["languages", "language", "rule-languages", "language"],
];

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function safeHref(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch { return null; }
}

// Only the host: webhook paths often carry tokens of their own.
function hostOf(url) {
  try { return new URL(url).host; } catch { return "(bad URL)"; }
}

function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

const splitList = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

// ---- views ---------------------------------------------------------------------------

function showView() {
  const alerts = window.location.hash === "#alerts";
  $("search-view").hidden = alerts;
  $("alerts-view").hidden = !alerts;
  document.body.dataset.view = alerts ? "alerts" : "search";
  $("nav-alerts").toggleAttribute("aria-current", alerts);
  $("nav-search").toggleAttribute("aria-current", !alerts);
  if (alerts) {
    document.title = "Alert rules — newswire";
    loadRules();
  }
}

// ---- messages ------------------------------------------------------------------------

function say(text) {
  $("alerts-status").textContent = text;
}

function fail(text, where = "alerts-error") {
  const box = $(where);
  box.textContent = text;
  box.hidden = !text;
}

// FastAPI's 422 detail is a list of {loc, msg}; ours is a string.
function detailText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const loc = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
      return loc ? `${loc}: ${d.msg}` : String(d.msg || JSON.stringify(d));
    }).join("; ");
  }
  return `HTTP ${status}`;
}

// ---- token and writes ----------------------------------------------------------------

function storedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

function keepToken(token) {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch { /* storage off: asked again next time */ }
  $("token-button").textContent = token ? "Change API token" : "Enter API token";
}

// Resolves with the token typed (possibly empty) or null when the dialog is cancelled.
function askToken() {
  const dialog = $("token-dialog");
  return new Promise((resolve) => {
    $("token-input").value = "";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "ok") {
        const token = $("token-input").value.trim();
        keepToken(token);
        resolve(token);
      } else {
        resolve(null);
      }
    }, { once: true });
    dialog.showModal();
    $("token-input").focus();
  });
}

class WriteRefused extends Error {}

async function write(method, path, body) {
  let token = storedToken();
  if (token === null) {
    token = await askToken();
    if (token === null) {
      throw new WriteRefused("Changing alert rules needs the API token: nothing was changed.");
    }
  }
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new WriteRefused(`The server could not be reached: ${err.message || err}`);
  }
  const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (response.ok) return answer;
  const detail = detailText(answer, response.status);
  if (response.status === 401) {
    keepToken(null);  // wrong or missing: ask again on the next write
    throw new WriteRefused(`Not allowed (401): ${detail}. Enter the API token and try again.`);
  }
  if (response.status === 403) throw new WriteRefused(`Not allowed (403): ${detail}`);
  if (response.status === 400 || response.status === 422) {
    throw new WriteRefused(`The rule was not accepted (${response.status}): ${detail}`);
  }
  throw new WriteRefused(`The request failed (${response.status}): ${detail}`);
}

// ---- the list ------------------------------------------------------------------------

function channelText(channel) {
  switch (channel.type) {
    case "webhook":
      return channel.secret ? `Webhook to ${hostOf(channel.url)}, signed (inline secret, masked)`
        : `Webhook to ${hostOf(channel.url)}, signed with secret ` +
          `“${channel.secret_name || "default"}” (not sent if the workers lack it)`;
    case "slack":
      return channel.url_secret ? `Slack, URL from secret “${channel.url_secret}”`
        : "Slack (inline URL, masked)";
    case "email":
      return `E-mail to ${(channel.to || []).join(", ")}`;
    case "file":
      return `File ${channel.path}`;
    case "stdout":
      return "Worker standard output";
    default:
      return String(channel.type || "unknown channel");
  }
}

function filterChips(filters) {
  const chips = [];
  for (const [field, , , label] of FILTERS) {
    for (const value of (filters && filters[field]) || []) chips.push(`${label}: ${value}`);
  }
  if (filters && filters.min_casualties != null) {
    chips.push(`casualties ≥ ${filters.min_casualties}`);
  }
  if (filters && filters.min_killed != null) chips.push(`killed ≥ ${filters.min_killed}`);
  return chips;
}

function term(list, name, value) {
  list.append(el("dt", {}, name));
  const dd = el("dd");
  if (value instanceof Node) dd.append(value); else dd.textContent = value;
  list.append(dd);
}

function renderAlert(alert) {
  const item = el("li", { class: "alert" });
  const first = alert.first || {};
  const title = first.title || first.url || alert.story_id;
  const href = safeHref(first.url);
  item.append(href ? el("a", { href, rel: "noopener noreferrer nofollow", dir: "auto" }, title)
    : el("span", { dir: "auto" }, title));
  const meta = el("span", { class: "meta" });
  const seen = formatDate(alert.first_seen);
  meta.textContent = [first.source, seen, alert.status].filter(Boolean).join(" · ");
  item.append(" ", meta);
  const others = [...new Set((alert.also_reported_by || []).map((r) => r.source || r.url)
    .filter(Boolean))];
  if (others.length) {
    item.append(el("div", { class: "also" }, `Also reported by ${others.join(", ")}`));
  }
  return item;
}

function renderRule(rule, alerts) {
  const item = el("li", { class: "rule", "data-id": rule.id });
  const head = el("div", { class: "rule-head" });
  head.append(el("h3", { dir: "auto" }, rule.name));
  head.append(el("span", { class: `badge ${rule.paused ? "paused" : "active"}` },
    rule.paused ? "paused" : "active"));
  item.append(head);

  const facts = el("dl", { class: "facts" });
  term(facts, "Query", rule.query ? el("code", { dir: "auto" }, rule.query)
    : "(every article)");
  const chips = filterChips(rule.filters);
  if (chips.length) {
    const box = el("span");
    for (const chip of chips) box.append(el("span", { class: "chip" }, chip), " ");
    term(facts, "Filters", box);
  } else {
    term(facts, "Filters", "none");
  }
  const channels = rule.channels || [];
  if (channels.length) {
    const list = el("ul", { class: "channels" });
    for (const c of channels) list.append(el("li", {}, channelText(c)));
    term(facts, "Channels", list);
  } else {
    term(facts, "Channels", "none (alerts are recorded, not sent)");
  }
  term(facts, "Throttle", rule.throttle ? `${rule.throttle} s between alerts` : "none");
  term(facts, "Digest", rule.digest || "none");
  item.append(facts);

  const actions = el("div", { class: "rule-actions" });
  const toggle = el("button", { type: "button", class: "secondary toggle",
    "aria-label": `${rule.paused ? "Resume" : "Pause"} rule ${rule.name}` },
  rule.paused ? "Resume" : "Pause");
  toggle.addEventListener("click", () => setPaused(rule, !rule.paused));
  const remove = el("button", { type: "button", class: "danger delete",
    "aria-label": `Delete rule ${rule.name}` }, "Delete");
  remove.addEventListener("click", () => confirmDelete(rule, remove));
  actions.append(toggle, remove);
  item.append(actions);

  const latest = el("section", { class: "latest", "aria-label": `Latest alerts of ${rule.name}` });
  latest.append(el("h4", {}, "Latest alerts"));
  if (alerts.length) {
    const list = el("ol", { class: "alerts" });
    for (const a of alerts) list.append(renderAlert(a));
    latest.append(list);
  } else {
    latest.append(el("p", { class: "empty" }, "No alert yet."));
  }
  item.append(latest);
  return item;
}

let loading = null;

async function loadRules() {
  if (loading) loading.abort();
  loading = new AbortController();
  document.body.dataset.alerts = "loading";
  $("rules").setAttribute("aria-busy", "true");
  try {
    const response = await fetch(`/api/alerts?alerts=${LATEST}`, {
      signal: loading.signal, headers: { Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(`Alert rules cannot be listed (${response.status}): ` +
        detailText(body, response.status));
    }
    const rules = Array.isArray(body.rules) ? body.rules : [];
    const latest = body.alerts && typeof body.alerts === "object" ? body.alerts : {};
    $("rules").replaceChildren(...rules.map((r) => renderRule(r,
      Array.isArray(latest[r.id]) ? latest[r.id] : [])));
    const active = rules.filter((r) => !r.paused).length;
    say(rules.length
      ? `${rules.length} rule${rules.length === 1 ? "" : "s"}, ${active} active.`
      : "No alert rules yet.");
    document.body.dataset.alerts = "ready";
  } catch (err) {
    if (err.name === "AbortError") return;
    fail(err.message || String(err));
    document.body.dataset.alerts = "error";
  } finally {
    $("rules").removeAttribute("aria-busy");
  }
}

async function act(work, done) {
  fail("");
  try {
    await work();
    await loadRules();
    say(done);
  } catch (err) {
    fail(err.message || String(err));
    document.body.dataset.alerts = "error";
  }
}

function setPaused(rule, paused) {
  const path = `/api/alerts/${encodeURIComponent(rule.id)}/${paused ? "pause" : "resume"}`;
  act(() => write("POST", path), `Rule “${rule.name}” ${paused ? "paused" : "resumed"}.`);
}

function confirmDelete(rule, opener) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent =
    `Delete the alert rule “${rule.name}”? It stops alerting; this cannot be undone.`;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok") {
      act(() => write("DELETE", `/api/alerts/${encodeURIComponent(rule.id)}`),
        `Rule “${rule.name}” deleted.`).then(() => $("new-rule").focus());
    } else {
      opener.focus();
    }
  }, { once: true });
  dialog.showModal();
  $("confirm-cancel").focus();  // the safe choice is the default
}

// ---- the form ------------------------------------------------------------------------

function openForm(prefill = {}) {
  const form = $("rule-form");
  form.reset();
  fail("", "rule-form-error");
  $("rule-name").value = prefill.name || "";
  $("rule-query").value = prefill.query || "";
  for (const [field, , id] of FILTERS) $(id).value = (prefill[field] || []).join(", ");
  $("rule-dialog").showModal();
  $("rule-name").focus();
}

function numberOrNull(id) {
  const text = $(id).value.trim();
  if (!text) return null;
  const n = Number(text);
  return Number.isInteger(n) ? n : text;  // let the API explain a bad number
}

function ruleFromForm() {
  const filters = {};
  for (const [field, , id] of FILTERS) filters[field] = splitList($(id).value);
  filters.min_casualties = numberOrNull("rule-min-casualties");
  filters.min_killed = numberOrNull("rule-min-killed");
  const channels = [];
  const webhook = $("rule-webhook").value.trim();
  if (webhook) {
    channels.push({ type: "webhook", url: webhook,
      secret_name: $("rule-webhook-secret").value.trim() || null });
  }
  const slack = $("rule-slack").value.trim();
  if (slack) channels.push({ type: "slack", url_secret: slack });
  const email = splitList($("rule-email").value);
  if (email.length) channels.push({ type: "email", to: email });
  const file = $("rule-file").value.trim();
  if (file) channels.push({ type: "file", path: file });
  const throttle = $("rule-throttle").value.trim();
  return {
    name: $("rule-name").value.trim(),
    query: $("rule-query").value.trim(),
    filters,
    channels,
    throttle: throttle ? Number(throttle) : 0,
    digest: $("rule-digest").value || null,
  };
}

async function submitRule(event) {
  event.preventDefault();
  const rule = ruleFromForm();
  if (!rule.name) {
    fail("Give the rule a name.", "rule-form-error");
    $("rule-name").focus();
    return;
  }
  const button = $("rule-save");
  button.disabled = true;
  fail("", "rule-form-error");
  try {
    const answer = await write("POST", "/api/alerts", rule);
    $("rule-dialog").close("saved");
    fail("");
    await loadRules();
    // e.g. which secret signs the webhook, and a secret this server does not have
    const notes = (answer && Array.isArray(answer.notes)) ? answer.notes : [];
    say([`Rule “${rule.name}” created.`, ...notes].join(" "));
    $("new-rule").focus();
  } catch (err) {
    fail(err.message || String(err), "rule-form-error");
    $("rule-form-error").focus();
  } finally {
    button.disabled = false;
  }
}

// The search as it stands: the query typed and the facet filters of the URL.
function currentSearch() {
  const params = new URLSearchParams(window.location.search);
  const query = $("q").value.trim() || params.get("q") || "";
  const prefill = { name: query ? query.slice(0, 200) : "Saved search", query };
  for (const [field, param] of FILTERS) prefill[field] = params.getAll(param).filter(Boolean);
  return prefill;
}

async function loadConflictNames() {
  try {
    const response = await fetch("/api/labels");
    if (!response.ok) return;
    const labels = await response.json();
    const list = $("conflict-ids");
    for (const [id, name] of Object.entries(labels.conflicts || {})) {
      list.append(el("option", { value: id, label: name }));
    }
  } catch { /* ids are typed by hand then */ }
}

function init() {
  $("rule-form-error").setAttribute("tabindex", "-1");
  keepToken(storedToken());
  $("new-rule").addEventListener("click", () => openForm());
  $("rule-form").addEventListener("submit", submitRule);
  $("rule-cancel").addEventListener("click", () => $("rule-dialog").close("cancel"));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("token-dialog").close("ok");
  });
  $("token-cancel").addEventListener("click", () => $("token-dialog").close("cancel"));
  $("token-button").addEventListener("click", async () => {
    const token = await askToken();
    if (token !== null) say(token ? "API token kept for this tab." : "API token cleared.");
  });
  $("confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("confirm-dialog").close("ok");
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close("cancel"));
  $("save-alert").addEventListener("click", () => {
    const prefill = currentSearch();
    if (window.location.hash !== "#alerts") {
      history.pushState(null, "", `${window.location.pathname}${window.location.search}#alerts`);
      showView();
    }
    openForm(prefill);
  });
  // A search run from the header goes back to the results.
  // (app.js's own listener has already pushed the new search's URL, without the #alerts)
  $("search-form").addEventListener("submit", () => {
    if (document.body.dataset.view === "alerts") showView();
  });
  window.addEventListener("hashchange", showView);
  window.addEventListener("popstate", showView);
  loadConflictNames();
  showView();
}

init();
