// The page: plain JavaScript against the service's own API, no build step, no CDN.
// Every call has a timeout and shows its state; a slow or failed call never blocks the
// rest of the page (each panel loads on its own).
"use strict";

const API = "..";  // the page is served at /ui/, the API at /
const TIMEOUT_MS = 10000;
const HISTORY_PAGE = 20;
const $ = (id) => document.getElementById(id);
const state = { user: null, history: [], shown: 0, filters: {}, pending: new Map() };

async function call(path, options = {}) {
  // One in-flight call per purpose: a newer one aborts the older (a fast typist, a slow
  // network) so answers never arrive out of order.
  const purpose = options.purpose || path;
  state.pending.get(purpose)?.abort();
  const controller = new AbortController();
  state.pending.set(purpose, controller);
  const timer = setTimeout(() => controller.abort("timeout"), TIMEOUT_MS);
  try {
    const response = await fetch(`${API}${path}`, { ...options, signal: controller.signal });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error?.message || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason === "timeout") {
      throw new Error(`no answer within ${TIMEOUT_MS / 1000} s (${path.split("?")[0]})`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    if (state.pending.get(purpose) === controller) state.pending.delete(purpose);
  }
}

function show(error) {
  if (error.name === "AbortError") return;  // superseded by a newer call: not an error
  const banner = $("banner");
  banner.textContent = error.message;
  banner.hidden = false;
}

function clearBanner() { $("banner").hidden = true; }

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

const isLink = (v) => typeof v === "string" && /^https?:\/\//.test(v);

function describe(item) {
  // The first metadata field is the item's name (MovieLens: title); the rest are shown
  // small, lists (genres) joined, web addresses as a link.
  const fields = Object.entries(item).filter(([k]) => k !== "id" && k !== "score");
  const [name, ...rest] = fields;
  const pretty = (v) => (Array.isArray(v) ? v.join(", ") : v);
  const shown = rest.filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length));
  return {
    title: name ? `${pretty(name[1]) ?? item.id}` : `item ${item.id}`,
    meta: shown.filter(([, v]) => !isLink(v)).map(([k, v]) => `${k}: ${pretty(v)}`).join(" · "),
    link: shown.find(([, v]) => isLink(v))?.[1],
  };
}

function itemRow(item, { like = true, score = true } = {}) {
  const li = document.createElement("li");
  li.dataset.id = item.id;
  const { title, meta, link } = describe(item);
  if (score && typeof item.score === "number") li.append(text("span", item.score.toFixed(3), "score"));
  li.append(text("span", title, "title"), document.createElement("br"));
  li.append(text("span", `#${item.id}${meta ? " · " + meta : ""}`, "meta"));
  if (link) {
    const anchor = text("a", "link", "meta");
    Object.assign(anchor, { href: link, target: "_blank", rel: "noopener" });
    li.append(" ", anchor);
  }
  const row = document.createElement("div");
  row.className = "actions";
  if (like) {
    const button = text("button", "Like", "like");
    button.type = "button";
    button.addEventListener("click", () => likeItem(item.id, button));
    row.append(button);
  }
  const similar = text("button", "Similar", "similar");
  similar.type = "button";
  similar.addEventListener("click", () => loadSimilar(item.id, title));
  row.append(similar);
  li.append(row);
  return li;
}

function filterQuery() {
  const query = new URLSearchParams();
  for (const [field, value] of Object.entries(state.filters)) if (value) query.append(field, value);
  return query;
}

async function loadUser(userId) {
  clearBanner();
  state.user = userId;
  history.replaceState(null, "", `?user=${encodeURIComponent(userId)}`);
  await Promise.allSettled([loadFeatures(userId), loadRecommendations(userId)]);
}

async function loadFeatures(userId) {
  $("attributes").replaceChildren(text("dd", "Loading…", "muted"));
  $("history").replaceChildren();
  try {
    const { feature: [user] } = await call(`/feature/${encodeURIComponent(userId)}`, { purpose: "feature" });
    const { histories, ...attributes } = user;
    $("attributes").replaceChildren(
      ...Object.entries(attributes).flatMap(([k, v]) => [text("dt", k), text("dd", v ?? "—")]));
    state.history = histories;
    state.shown = 0;
    $("history-count").textContent = `(${histories.length}, most recent first)`;
    await showMoreHistory();
  } catch (error) {
    const message = error.status === 404 ? "Not a known user yet: a like creates them." : error.message;
    $("attributes").replaceChildren(text("dd", message, "muted"));
    $("history-count").textContent = "";
    $("more-history").hidden = true;
    if (error.status !== 404) show(error);
  }
}

async function showMoreHistory() {
  // A page at a time: a user with thousands of events costs one small call per page.
  const page = state.history.slice(state.shown, state.shown + HISTORY_PAGE);
  state.shown += page.length;
  $("more-history").hidden = state.shown >= state.history.length;
  if (!page.length) return;
  const query = new URLSearchParams({ ids: page.join(",") });
  const { items } = await call(`/items?${query}`, { purpose: `history-${state.shown}` });
  const byId = new Map(items.map((item) => [item.id, item]));
  $("history").append(...page.map((id) => itemRow(byId.get(id) || { id }, { like: false, score: false })));
}

async function loadRecommendations(userId) {
  const list = $("recommendations");
  list.classList.add("loading");
  $("recs-state").textContent = "loading…";
  try {
    const query = filterQuery();
    query.set("returnMetadata", "true");
    const body = await call(`/recommendations/${encodeURIComponent(userId)}?${query}`,
      { purpose: "recommendations" });
    list.replaceChildren(...body.items.map((item) => itemRow(item)));
    const how = body.fallback ? `popular items (${body.fallback_reason})` : `personalised (${body.ranked_by})`;
    $("recs-state").textContent = `${how}${body.shortfall ? " — " + body.shortfall : ""}`;
  } catch (error) {
    $("recs-state").textContent = "failed";
    show(error);
  } finally {
    list.classList.remove("loading");
  }
}

async function likeItem(itemId, button) {
  button.disabled = true;
  button.textContent = "Liking…";
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  try {
    const event = { user_id: state.user, item_id: itemId, type: "like", event_id: crypto.randomUUID() };
    await call("/events", { method: "POST", headers, body: JSON.stringify(event), purpose: `like-${itemId}` });
    button.replaceWith(text("span", "liked ✓", "liked"));
    await Promise.allSettled([loadRecommendations(state.user), loadFeatures(state.user)]);
  } catch (error) {
    button.disabled = false;
    button.textContent = "Like";
    show(error.status === 401 ? new Error("Writes need the API key: type it at the top right.") : error);
  }
}

async function loadSimilar(itemId, title) {
  const list = $("similar");
  $("similar-hint").hidden = true;
  $("similar-of").textContent = `to ${title} — loading…`;
  list.classList.add("loading");
  try {
    const query = filterQuery();
    query.set("returnMetadata", "true");
    const body = await call(`/items/${encodeURIComponent(itemId)}/similar?${query}`, { purpose: "similar" });
    list.replaceChildren(...body.items.map((item) => itemRow(item)));
    $("similar-of").textContent = `to ${title}${body.shortfall ? " — " + body.shortfall : ""}`;
  } catch (error) {
    $("similar-of").textContent = `to ${title} — failed`;
    show(error);
  } finally {
    list.classList.remove("loading");
  }
}

async function loadFilters() {
  try {
    const fields = await call("/filters", { purpose: "filters" });
    const controls = Object.entries(fields).filter(([, values]) => values.length <= 500).map(([field, values]) => {
      const select = document.createElement("select");
      select.name = field;
      select.append(new Option(`any ${field}`, ""), ...values.map((v) => new Option(v, v)));
      select.addEventListener("change", () => {
        state.filters[field] = select.value;
        if (state.user) loadRecommendations(state.user);
      });
      const label = text("label", "");
      label.append(select);
      return label;
    });
    $("filters").replaceChildren(...controls);
  } catch (error) { show(error); }
}

async function loadHeader() {
  try {
    const health = await call("/healthz", { purpose: "healthz" });
    $("version").textContent = `model ${health.model_version}`;
  } catch (error) { $("version").textContent = "model version unknown"; show(error); }
  try {
    const { users } = await call("/users?limit=20", { purpose: "users" });
    $("user-ids").replaceChildren(...users.map((id) => new Option(id, id)));
  } catch (error) { /* the list is a convenience: typing an id still works */ }
}

$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const userId = $("user-id").value.trim();
  if (userId) loadUser(userId);
});
$("more-history").addEventListener("click", () => showMoreHistory().catch(show));
$("curves").addEventListener("error", () => { $("curves").hidden = true; $("no-curves").hidden = false; });
$("api-key").value = localStorage.getItem("recsys-api-key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("recsys-api-key", $("api-key").value));

loadHeader();
loadFilters();
const initial = new URLSearchParams(location.search).get("user");
if (initial) { $("user-id").value = initial; loadUser(initial); }
