// newswire search page. Everything shown comes from untrusted article text, so the DOM is
// built with createElement/textContent only (never innerHTML), links are limited to http(s),
// and highlight marks are rebuilt from the snippet as plain text plus <mark> elements.

const FACETS = [
  { key: "conflicts", param: "conflict", label: "Conflict" },
  { key: "event_types", param: "event_type", label: "Event type" },
  { key: "countries", param: "country", label: "Country" },
  { key: "source", param: "source", label: "Source" },
  { key: "language", param: "language", label: "Language" },
];
const SCALARS = ["q", "since", "until", "sort", "page", "size", "cursor"];
const PAGE_SIZE = 20;  // unless the URL says size=N (1-100)
const SVG_NS = "http://www.w3.org/2000/svg";
const MARK_TAGS = new Set(["MARK", "EM", "B", "STRONG"]);

const $ = (id) => document.getElementById(id);
const regionNames = safeDisplayNames("region");
const languageNames = safeDisplayNames("language");
let inflight = null;
let nextCursor = null;  // the last answer's next_cursor: "Next" continues from it
let labels = { conflicts: {} };  // display names from /api/labels (ids until it answers)

function safeDisplayNames(type) {
  try { return new Intl.DisplayNames(["en"], { type }); } catch { return null; }
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

// ---- state <-> URL -------------------------------------------------------------------

function readState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const state = { q: "", since: "", until: "", sort: "relevance", page: 1, collapse: true,
    size: PAGE_SIZE, cursor: "" };
  for (const name of SCALARS) if (params.has(name)) state[name] = params.get(name);
  state.page = Math.max(1, parseInt(state.page, 10) || 1);
  state.size = Math.min(100, Math.max(1, parseInt(state.size, 10) || PAGE_SIZE));
  if (state.sort !== "date") state.sort = "relevance";
  state.collapse = params.get("collapse") !== "false";
  for (const f of FACETS) state[f.param] = params.getAll(f.param).filter(Boolean);
  return state;
}

function toParams(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const f of FACETS) for (const v of state[f.param]) params.append(f.param, v);
  if (state.since) params.set("since", state.since);
  if (state.until) params.set("until", state.until);
  if (state.sort !== "relevance") params.set("sort", state.sort);
  if (!state.collapse) params.set("collapse", "false");
  if (state.size !== PAGE_SIZE) params.set("size", String(state.size));
  if (state.page > 1) params.set("page", String(state.page));
  // Past page 1 the cursor (search_after) says where the page starts, however deep; any
  // change of search goes back to page 1, which drops it.
  if (state.page > 1 && state.cursor) params.set("cursor", state.cursor);
  return params;
}

function stateFromForm(previous) {
  const state = { ...previous };
  state.q = $("q").value.trim();
  state.since = $("since").value;
  state.until = $("until").value;
  state.sort = $("sort").value === "date" ? "date" : "relevance";
  state.collapse = $("collapse").checked;
  for (const f of FACETS) {
    state[f.param] = [...document.querySelectorAll(`input[data-param="${f.param}"]:checked`)]
      .map((box) => box.value);
  }
  return state;
}

function fillForm(state) {
  $("q").value = state.q;
  $("since").value = state.since;
  $("until").value = state.until;
  $("sort").value = state.sort;
  $("collapse").checked = state.collapse;
}

function navigate(state, historyState = null) {
  const query = toParams(state).toString();
  const url = query ? `/?${query}` : "/";
  if (url !== window.location.pathname + window.location.search) {
    history.pushState(historyState, "", url);
  }
  run(state);
}

// ---- labels --------------------------------------------------------------------------

function tagLabel(value) {
  if (value && typeof value === "object") return value.name || value.event_type || value.id || "";
  return value == null ? "" : String(value);
}

function facetLabel(param, value) {
  try {
    if (param === "country" && /^[A-Za-z]{2}$/.test(value) && regionNames) {
      return `${regionNames.of(value.toUpperCase())} (${value.toUpperCase()})`;
    }
    if (param === "language" && /^[A-Za-z]{2,3}$/.test(value) && languageNames) {
      return languageNames.of(value.toLowerCase());
    }
  } catch { /* unknown code: show it as it is */ }
  if (param === "conflict" && labels.conflicts && typeof labels.conflicts[value] === "string") {
    return labels.conflicts[value];
  }
  if (param === "conflict" || param === "event_type") {
    const words = value.replace(/[_-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }
  return value;
}

// Only absolute http(s) URLs become links: no javascript:/data: URLs, and no relative ones
// (which would point into this site).
function safeHref(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch { return null; }
}

function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

// ---- highlighted snippets ------------------------------------------------------------

// The store marks hits with <mark>/<em>/<b> (and escapes the text around them). The snippet is
// parsed in an inert document (no scripts run, nothing loads) and only its text and mark
// boundaries are copied out; any other markup is flattened to its text.
function appendHighlighted(parent, snippet) {
  if (!snippet) return;
  const doc = new DOMParser().parseFromString(`<body>${snippet}</body>`, "text/html");
  const walk = (node, into) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        into.append(document.createTextNode(child.textContent));
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        if (MARK_TAGS.has(child.tagName)) {
          into.append(el("mark", {}, child.textContent));
        } else if (child.tagName !== "SCRIPT" && child.tagName !== "STYLE") {
          walk(child, into);
        }
      }
    }
  };
  walk(doc.body, parent);
}

// ---- rendering -----------------------------------------------------------------------

function renderFacets(result, state) {
  const holder = $("facet-groups");
  holder.replaceChildren();
  const facets = result.facets || {};
  for (const f of FACETS) {
    const buckets = Array.isArray(facets[f.key]) ? facets[f.key].slice() : [];
    const seen = new Set(buckets.map((b) => String(b.value)));
    for (const v of state[f.param]) if (!seen.has(v)) buckets.push({ value: v, count: 0 });
    const fieldset = el("fieldset", { class: "facet", "data-facet": f.key });
    fieldset.append(el("legend", {}, f.label));
    if (!buckets.length) {
      fieldset.append(el("p", { class: "empty" }, "none"));
    } else {
      const list = el("ul");
      buckets.forEach((bucket, i) => {
        const value = String(bucket.value);
        const id = `facet-${f.param}-${i}`;
        const box = el("input", { type: "checkbox", id, value, "data-param": f.param });
        box.checked = state[f.param].includes(value);
        box.addEventListener("change", () => navigate({ ...stateFromForm(readState()), page: 1 }));
        const label = el("label", { for: id });
        label.append(el("span", { class: "facet-value" }, facetLabel(f.param, value)));
        label.append(el("span", { class: "count" }, Number(bucket.count || 0).toLocaleString("en")));
        const item = el("li");
        item.append(box, label);
        list.append(item);
      });
      fieldset.append(list);
    }
    holder.append(fieldset);
  }
}

function renderHistogram(result) {
  const chart = $("histogram");
  chart.replaceChildren();
  const buckets = (result.histogram || []).filter((b) => b && typeof b.date === "string");
  const day = (iso) => iso.slice(0, 10);
  $("histogram-first").textContent = buckets.length ? day(buckets[0].date) : "";
  $("histogram-last").textContent = buckets.length ? day(buckets[buckets.length - 1].date) : "";
  const max = Math.max(0, ...buckets.map((b) => Number(b.count) || 0));
  $("histogram-max").textContent = buckets.length ? `max ${max.toLocaleString("en")} / bar` : "no dates";
  if (!buckets.length || !max) {
    chart.setAttribute("aria-label", "Articles over time: no dated articles");
    return;
  }
  const peak = buckets.find((b) => Number(b.count) === max);
  chart.setAttribute("aria-label", `Articles over time: ${buckets.length} bars from ` +
    `${day(buckets[0].date)} to ${day(buckets[buckets.length - 1].date)}, ` +
    `most (${max}) at ${day(peak.date)}. Click a bar to search that period.`);
  // Bucket width from the bucket dates (hour, day or week); a lone bucket counts as a day.
  const step = buckets.length > 1
    ? Date.parse(buckets[1].date) - Date.parse(buckets[0].date) : 86400000;
  const width = 400 / buckets.length;
  buckets.forEach((b, i) => {
    const h = (Number(b.count) / max) * 96;
    // A full-height transparent hit area makes short bars easy to click.
    const group = svg("g", { class: "bar", "data-date": b.date, "data-count": b.count });
    group.append(svg("rect", { class: "hit-area", x: (i * width).toFixed(2), y: 0,
      width: width.toFixed(2), height: 100 }));
    group.append(svg("rect", {
      class: "value", x: (i * width + width * 0.1).toFixed(2), y: (100 - h).toFixed(2),
      width: Math.max(width * 0.8, 0.5).toFixed(2), height: h.toFixed(2),
    }));
    const tip = svg("title");
    tip.textContent = `${day(b.date)}: ${b.count}`;
    group.append(tip);
    group.addEventListener("click", () => {
      const start = Date.parse(b.date);
      if (Number.isNaN(start)) return;
      const next = readState();
      next.since = day(b.date);
      next.until = new Date(start + step - 1).toISOString().slice(0, 10);
      next.page = 1;
      navigate(next);
    });
    chart.append(group);
  });
}

function collectLocations(result) {
  // A store may aggregate locations over all matches; else use those of the shown hits.
  const source = Array.isArray(result.locations) ? result.locations
    : (result.hits || []).flatMap((h) => (Array.isArray(h.locations) ? h.locations : []));
  const points = new Map();
  for (const loc of source) {
    const lat = Number(loc.lat), lon = Number(loc.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) continue;
    const key = `${lat.toFixed(1)},${lon.toFixed(1)}`;
    const point = points.get(key) || { lat, lon, name: tagLabel(loc.name) || key, count: 0 };
    point.count += Number(loc.count) || 1;
    points.set(key, point);
  }
  return [...points.values()];
}

function renderMap(result) {
  const layer = $("map-points");
  layer.replaceChildren();
  const points = collectLocations(result);
  const max = Math.max(1, ...points.map((p) => p.count));
  for (const p of points.sort((a, b) => b.count - a.count)) {
    const dot = svg("circle", {
      cx: p.lon.toFixed(2), cy: (-p.lat).toFixed(2),
      r: (1.6 + 3.2 * Math.sqrt(p.count / max)).toFixed(2), "data-name": p.name,
    });
    const tip = svg("title");
    tip.textContent = `${p.name}: ${p.count}`;
    dot.append(tip);
    layer.append(dot);
  }
  $("map").setAttribute("aria-label", points.length
    ? `Map of ${points.length} locations: ${points.slice(0, 5).map((p) => p.name).join(", ")}`
    : "Map: no locations in these results");
}

function outletLink(copy) {
  const href = safeHref(copy.url);
  const text = copy.source || copy.title || copy.url || "copy";
  const item = el("li");
  if (href) {
    const a = el("a", { href, rel: "noopener noreferrer nofollow" }, text);
    item.append(a);
  } else {
    item.append(document.createTextNode(text));
  }
  if (copy.title && copy.source) item.append(document.createTextNode(` — ${copy.title}`));
  return item;
}

const QUALITY = [
  ["paywall", "Paywall teaser", "The publisher shows readers only the start of this story."],
  ["cookie_wall", "Cookie wall", "The page asked for consent before the story; the text is the feed's summary."],
  ["liveblog_index", "Live blog", "A running page of updates, not one story."],
  ["summary_fallback", "Feed summary only", "The page gave no usable text; this is the feed's summary."],
];

function qualityNote(hit) {
  const flags = Array.isArray(hit.flags) ? hit.flags : [];
  for (const [flag, label, why] of QUALITY) {
    if (flags.includes(flag)) return { label, why };
  }
  return hit.partial ? { label: "Partial text", why: "Only part of the story could be extracted." } : null;
}

function renderHit(hit) {
  const item = el("li", { class: "hit", "data-id": hit.id });
  // dir=auto: Arabic, Hebrew or Persian titles and snippets read right to left.
  const heading = el("h3", { dir: "auto" });
  const title = hit.title || hit.url || "(untitled)";
  const href = safeHref(hit.url);
  heading.append(href ? el("a", { href, rel: "noopener noreferrer nofollow" }, title) : el("span", {}, title));
  item.append(heading);

  const meta = el("div", { class: "meta" });
  if (hit.source) meta.append(el("span", { class: "source" }, hit.source));
  if (hit.published) meta.append(el("time", { datetime: hit.published }, formatDate(hit.published)));
  for (const c of hit.conflicts || []) {
    meta.append(el("span", { class: "chip conflict" }, facetLabel("conflict", tagLabel(c))));
  }
  for (const e of hit.event_types || []) {
    meta.append(el("span", { class: "chip event" }, facetLabel("event_type", tagLabel(e))));
  }
  for (const c of hit.countries || []) {
    meta.append(el("span", { class: "chip country", title: facetLabel("country", tagLabel(c)) },
      tagLabel(c)));
  }
  // Not a full story: said before the reader takes the snippet for one.
  const quality = qualityNote(hit);
  if (quality) meta.append(el("span", { class: "badge quality", title: quality.why }, quality.label));
  item.append(meta);

  const snippet = el("p", { class: "snippet", dir: "auto" });
  appendHighlighted(snippet, hit.snippet);
  item.append(snippet);

  const copies = Array.isArray(hit.duplicates) ? hit.duplicates : [];
  const more = Number(hit.more_outlets ?? copies.length) || 0;
  if (more > 0) {
    const details = el("details", { class: "more" });
    details.append(el("summary", {}, `${more} more outlet${more === 1 ? "" : "s"}`));
    if (copies.length) {
      const list = el("ul");
      for (const copy of copies) list.append(outletLink(copy));
      details.append(list);
    }
    item.append(details);
  }
  return item;
}

function render(result, state) {
  const hits = result.hits || [];
  const total = Number(result.total) || 0;
  const first = hits.length ? (state.page - 1) * state.size + 1 : 0;
  const last = (state.page - 1) * state.size + hits.length;
  const unit = state.collapse ? "stor" + (hits.length === 1 ? "y" : "ies") : "articles";
  $("status").textContent = total
    ? `${total.toLocaleString("en")} matching article${total === 1 ? "" : "s"}` +
      (hits.length ? ` — ${unit} ${first}–${last}` : " — no more on this page")
    : "No articles match.";
  renderFacets(result, state);
  renderHistogram(result);
  renderMap(result);
  $("results").replaceChildren(...hits.map(renderHit));
  nextCursor = typeof result.next_cursor === "string" ? result.next_cursor : null;
  $("page-info").textContent = `Page ${state.page}`;
  $("prev-page").disabled = state.page <= 1;
  $("next-page").disabled = !nextCursor;
  document.title = state.q ? `${state.q} — newswire search` : "newswire search";
  $("results").removeAttribute("aria-busy");
  document.body.dataset.state = "ready";
}

async function run(state) {
  fillForm(state);
  const params = toParams(state);
  params.set("size", String(state.size));
  if (params.has("cursor")) params.delete("page");  // the API takes one or the other
  if (inflight) inflight.abort();
  inflight = new AbortController();
  document.body.dataset.state = "loading";
  $("results").setAttribute("aria-busy", "true");
  $("error").hidden = true;
  try {
    const response = await fetch(`/api/search?${params}`, {
      signal: inflight.signal, headers: { Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : `search failed (${response.status})`;
      throw new Error(detail);
    }
    render(body, state);
  } catch (err) {
    if (err.name === "AbortError") return;
    $("error").textContent = err.message || String(err);
    $("error").hidden = false;
    $("status").textContent = "";
    $("results").removeAttribute("aria-busy");
    document.body.dataset.state = "error";
  }
}

async function loadLabels() {
  try {
    const response = await fetch("/api/labels");
    if (response.ok) labels = await response.json();
  } catch { /* ids stay as labels */ }
}

async function loadLand() {
  try {
    const response = await fetch("/static/world-land.json");
    const land = await response.json();
    if (typeof land.path === "string") $("land").setAttribute("d", land.path);
  } catch { /* the points still show on a blank sea */ }
}

function init() {
  let state = readState();
  // On a phone the filters start folded so the results are on the first screens.
  if (window.matchMedia("(max-width: 760px)").matches) $("facet-panel").removeAttribute("open");
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state = { ...stateFromForm(readState()), page: 1 };
    navigate(state);
  });
  for (const id of ["sort", "collapse"]) {
    $(id).addEventListener("change", () => navigate({ ...stateFromForm(readState()), page: 1 }));
  }
  $("clear-filters").addEventListener("click", () => {
    const next = readState();
    for (const f of FACETS) next[f.param] = [];
    next.since = ""; next.until = ""; next.page = 1;
    navigate(next);
  });
  $("prev-page").addEventListener("click", () => {
    // Cursors only go forward: the previous page is the previous entry of the history when
    // we came from there, else that page by number.
    if (history.state && history.state.fromPage === readState().page - 1) {
      history.back();
    } else {
      const next = readState(); next.page = Math.max(1, next.page - 1); next.cursor = "";
      navigate(next);
    }
    $("results").focus();
  });
  $("next-page").addEventListener("click", () => {
    if (!nextCursor) return;
    const next = readState(); next.cursor = nextCursor;
    navigate({ ...next, page: next.page + 1 }, { fromPage: next.page });
    $("results").focus();
  });
  window.addEventListener("popstate", () => run(readState()));
  loadLand();
  // Labels first (one small cached request) so the first render shows names, not ids.
  loadLabels().finally(() => run(state));
}

init();
