// Session Lab demo page: a client of the public API, like curl or the load test.
// Everything strategy-specific comes from GET /api/strategies (the registry's traits) or from the API's
// answers; user input only ever reaches the page through textContent.
"use strict";

const TIMELINE_MAX = 20;
const LAB_POLL_MS = 3000;
const KEY = "session-lab-demo:"; // localStorage prefix

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
};

const saved = {
  get(name, fallback) {
    try {
      const raw = localStorage.getItem(KEY + name);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      localStorage.setItem(KEY + name, JSON.stringify(value));
    } catch {
      // storage full or disabled: the page still works, it just forgets on reload
    }
  },
};

// A colour per node, from its name: a trailing number steps round the colour wheel by the golden angle
// (app1, app2, app3 come out far apart), any other name by a hash of it.
function nodeHue(name) {
  const digits = /(\d+)$/.exec(name);
  let n = digits ? Number(digits[1]) : 0;
  if (!digits) {
    for (const ch of name) n = (Math.imul(n ^ ch.codePointAt(0), 16777619) >>> 0);
  }
  return (n * 137.508 + 40) % 360;
}
const nodeColour = (name) => (name ? `hsl(${nodeHue(name).toFixed(1)}, 62%, 34%)` : "hsl(210, 10%, 40%)");

function idempotencyKey() {
  // Not crypto.randomUUID: a page on http://<room-ip>:8080 is not a secure context.
  return `demo-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

const page = {
  strategies: [], // from /api/strategies, in registry order
  strategy: null, // its traits
  state: null, // this browser's state for the chosen strategy (persisted)
  busy: false,
  mode: undefined, // X-LB-Mode of the latest answer; null: no balancer in front
};

function blankState() {
  return {
    user: null,
    token: null, // the credential in the answer's JSON field (traits.transport.body_field), if it has one
    credential: null, // {bytes, field}
    last: null, // the latest answer that named a node: {node, status, count}
    timeline: [],
    watch: null, // {node, count, predicted, verdict}
  };
}

function loadState(name) {
  return Object.assign(blankState(), saved.get(`state:${name}`, {}));
}

function saveState() {
  saved.set(`state:${page.strategy.name}`, page.state);
}

// --- talking to the API -----------------------------------------------------------------------------

// How the credential goes back, from the strategy's traits: a cookie the browser sends by itself, else the
// answer's JSON field in the header the transport names (jwt: `Authorization: Bearer <token>`).
function credentialHeaders() {
  const t = page.strategy.transport;
  if (!page.state.token || !t.header || t.cookie) return {};
  return { [t.header]: t.scheme ? `${t.scheme} ${page.state.token}` : page.state.token };
}

async function call(method, action, body) {
  const headers = { Accept: "application/json", ...credentialHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST" && action === "cart") headers["Idempotency-Key"] = idempotencyKey();
  const started = performance.now();
  let response = null;
  let data = null;
  try {
    response = await fetch(`/api/${encodeURIComponent(page.strategy.name)}/${action}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    data = await response.json().catch(() => null);
  } catch {
    response = null; // the balancer itself is unreachable: recorded as status 0 below
  }
  const answer = {
    at: Date.now(),
    method,
    action,
    status: response ? response.status : 0,
    node: response ? response.headers.get("X-Served-By") : null,
    ms: Math.round(performance.now() - started),
    data,
  };
  if (response) noteMode(response);
  return answer;
}

function noteMode(response) {
  page.mode = response.headers.get("X-LB-Mode");
  renderMode();
}

// What one answer means for my cart; the timeline entry it becomes.
function record(answer) {
  const s = page.state;
  const ok = answer.status === 200 && answer.data && Array.isArray(answer.data.items);
  const entry = {
    at: answer.at,
    what: `${answer.method} ${answer.action}`,
    node: answer.node,
    status: answer.status,
    ms: answer.ms,
    count: ok ? answer.data.items.length : null,
  };
  const prev = s.last;
  // Lost: the cart shrank, or the session is gone, on the first answer from another node. A login starts
  // an empty cart on purpose, and a strategy that keeps nothing has nothing to lose.
  if (page.strategy.keeps_state && answer.action !== "login" && prev && prev.status === 200 && answer.node &&
      prev.node && answer.node !== prev.node &&
      (answer.status === 401 || (ok && entry.count < prev.count))) {
    entry.lost = { from: prev.node, to: answer.node, before: prev.count, after: ok ? entry.count : 0 };
  }
  if (ok) {
    s.user = answer.data.user;
    s.items = answer.data.items;
    const field = page.strategy.transport.body_field;
    const carried = field && typeof answer.data[field] === "string";
    if (carried) s.token = answer.data[field];
    if (typeof answer.data.credential_bytes === "number") {
      s.credential = { bytes: answer.data.credential_bytes, field: carried ? field : null };
    }
  } else if (answer.status === 401) {
    s.items = null; // no session here (never had one, lost it, or it expired)
  }
  if (answer.node && answer.status !== 0) {
    s.last = { node: answer.node, status: answer.status, count: entry.count };
  }
  judge(answer, entry);
  s.timeline.push(entry);
  s.timeline.splice(0, Math.max(0, s.timeline.length - TIMELINE_MAX));
  saveState();
  if (answer.node) showNode(answer.node);
  render();
  return answer;
}

// The verdict: the first answer after a prediction that comes from another node than the one watched.
function judge(answer, entry) {
  const w = page.state.watch;
  if (!w || w.verdict || !answer.node || answer.node === w.node || answer.status === 0) return;
  const after = entry.count === null ? 0 : entry.count;
  w.verdict = {
    outcome: answer.status === 200 && after >= w.count ? "survived" : "lost",
    to: answer.node,
    after,
    status: answer.status,
  };
}

function showMessage(answer) {
  const notice = $("notice");
  if (answer.status === 0) {
    notice.textContent = "No answer: the balancer is unreachable.";
  } else if (answer.status === 401) {
    notice.textContent = page.state.timeline.some((e) => e.status === 200)
      ? `No session on ${answer.node}: the cart is not here. Reset to log in again.`
      : "No session yet: press Reset to log in.";
  } else if (answer.status >= 400) {
    const d = answer.data || {};
    notice.textContent = `${answer.status} ${d.error || ""}: ${d.message || "no details"}`;
  } else {
    notice.hidden = true;
    return;
  }
  notice.classList.toggle("bad", answer.status !== 401);
  notice.hidden = false;
}

async function act(method, action, body) {
  if (page.busy) return null;
  page.busy = true;
  setBusy(true);
  try {
    const answer = record(await call(method, action, body));
    showMessage(answer);
    return answer;
  } finally {
    page.busy = false;
    setBusy(false);
  }
}

function setBusy(on) {
  for (const id of ["add-item", "refresh", "reset"]) $(id).disabled = on;
}

const refresh = () => act("GET", "cart");

async function login() {
  const user = `user-${Math.random().toString(36).slice(2, 7)}`;
  page.state = blankState();
  saveState();
  render();
  return act("POST", "login", { user });
}

async function reset() {
  if (page.busy) return;
  if (page.state.user) await call("POST", "logout", {}).catch(() => null); // best effort; the new login starts clean
  await login();
}

async function addItem(event) {
  event.preventDefault();
  const input = $("item-input");
  const item = input.value.trim() || `item-${(page.state.items || []).length + 1}`;
  if (!page.state.user) await login();
  const answer = await act("POST", "cart", { item });
  if (answer && answer.status === 200) input.value = "";
}

function predict(outcome) {
  const s = page.state;
  if (!s.last || s.last.status !== 200) return;
  s.watch = { node: s.last.node, count: s.last.count, predicted: outcome, verdict: null };
  saveState();
  renderKill();
}

// --- rendering --------------------------------------------------------------------------------------

function showNode(node) {
  document.documentElement.style.setProperty("--node", nodeColour(node));
  $("served-by").textContent = node;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="${nodeColour(node)}"/></svg>`;
  $("favicon").href = `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

function whereItLives(t, s) {
  const node = (s.last && s.last.node) || "the node";
  if (!t.keeps_state) return "nowhere: every request is anonymous";
  if (t.dependencies.length) return `${t.dependencies.join(" + ")}: a store every node reaches`;
  if (t.node_replica) return `${node}'s memory, copied to the next node`;
  if (t.needs_sticky) return `${node}'s memory only`;
  const field = s.credential && s.credential.field;
  return field ? `your browser: the ${field} it sends back holds the whole cart`
    : "your browser: the credential holds the whole cart";
}

function traitsOf(t) {
  const found = [];
  if (t.needs_sticky) found.push("needs sticky routing");
  if (t.node_replica) found.push("replica on the next node");
  for (const d of t.dependencies) found.push(`needs ${d}`);
  if (t.confirms_writes) found.push("confirms writes");
  found.push(t.revocable ? "logout revokes" : "logout cannot revoke");
  if (t.concurrent_adds) found.push(`concurrent adds: ${t.concurrent_adds}`);
  return found;
}

function render() {
  const s = page.state;
  const t = page.strategy;
  // No session where the last answer came from: the cart, as far as this node knows, is empty.
  const count = s.items ? s.items.length : s.last ? 0 : null;
  $("cart-count").textContent = count === null ? "–" : String(count);
  $("banner-count").textContent = count === null ? "–" : String(count);
  $("banner-unit").textContent = count === 1 ? "item" : "items";
  $("cart-unit").textContent = count === 1 ? "item" : "items";
  $("banner-strategy").textContent = t.name;
  $("cart-user").textContent = s.user || "nobody";
  const list = $("cart-items");
  list.replaceChildren();
  if (!s.items) list.append(el("li", "empty", s.user ? "no session on this node" : "not logged in"));
  else if (!s.items.length) list.append(el("li", "empty", "empty"));
  for (const item of s.items || []) list.append(el("li", "item", item));
  $("cart-location").textContent = whereItLives(t, s);
  $("credential-kind").textContent = t.credential;
  $("credential-size").textContent = s.credential ? `${s.credential.bytes} bytes` : "–";
  $("strategy-summary").textContent = t.summary;
  $("strategy-traits").replaceChildren(...traitsOf(t).map((x) => el("li", "", x)));
  const node = s.last && s.last.node;
  const items = s.items ? `${count} item${count === 1 ? "" : "s"}` : "no session";
  document.title = node ? `${node} · ${items} · Session Lab` : "Session Lab";
  renderTimeline();
  renderKill();
}

function renderTimeline() {
  const list = $("timeline");
  list.replaceChildren();
  if (!page.state.timeline.length) list.append(el("li", "empty", "no requests yet"));
  for (const e of page.state.timeline) {
    const item = el("li", `entry${e.lost ? " lost" : ""}`);
    item.dataset.testid = "timeline-entry";
    item.dataset.node = e.node || "";
    item.dataset.status = String(e.status);
    item.style.setProperty("--entry-node", nodeColour(e.node));
    item.title = new Date(e.at).toLocaleTimeString();
    item.append(
      el("span", "node", e.node || "no node"),
      el("span", `status${e.status === 200 ? "" : " bad"}`, e.status === 0 ? "down" : String(e.status)),
      el("span", "what", e.what),
      el("span", "ms", `${e.ms} ms`),
      el("span", "count", e.count === null ? "no cart" : `${e.count} item${e.count === 1 ? "" : "s"}`),
    );
    if (e.lost) {
      const marker = el("span", "loss", `✗ cart lost ${e.lost.from}→${e.lost.to}: ${e.lost.before}→${e.lost.after}`);
      marker.dataset.testid = "loss-marker";
      item.append(marker);
    }
    list.append(item);
  }
}

function renderKill() {
  const s = page.state;
  const node = s.last && s.last.node;
  $("kill-command").textContent = `make kill-node NODE=${node || "…"}`;
  const canPredict = page.strategy.keeps_state && s.last && s.last.status === 200;
  for (const id of ["predict-survive", "predict-lose"]) {
    const radio = $(id);
    radio.disabled = !canPredict;
    radio.checked = Boolean(s.watch && s.watch.predicted === radio.value);
  }
  const status = $("prediction-status");
  const verdict = $("verdict");
  const w = s.watch;
  if (!page.strategy.keeps_state) status.textContent = "This strategy keeps nothing: there is no cart to lose.";
  else if (!w) status.textContent = canPredict ? "Predict, kill the node, then refresh." : "Log in first (Reset).";
  else if (!w.verdict) status.textContent = `Watching the cart on ${w.node} (${w.count} items): kill it, then refresh.`;
  else status.textContent = `You predicted: ${w.predicted === "survived" ? "it survives" : "it is lost"}.`;
  if (!w || !w.verdict) {
    verdict.hidden = true;
    verdict.removeAttribute("data-verdict");
    return;
  }
  const v = w.verdict;
  const right = v.outcome === w.predicted;
  verdict.dataset.verdict = v.outcome;
  verdict.replaceChildren(
    document.createTextNode(`${v.outcome === "survived" ? "✓ Cart survived" : "✗ Cart lost"}: ${w.node} → ${v.to}, ` +
      `${w.count} → ${v.after} items`),
    el("small", "", `${v.status === 200 ? "" : `answer ${v.status}. `}Your prediction was ${right ? "right" : "wrong"}.`),
  );
  verdict.hidden = false;
}

function renderMode() {
  const mode = page.mode;
  $("lb-mode").textContent = mode || (mode === null ? "no balancer" : "–");
  const t = page.strategy;
  let command = "";
  if (mode) {
    // Suggest the switch that makes the point for this strategy: sticky for node-held sessions.
    const next = t && t.needs_sticky && mode !== "sticky" ? "sticky" : mode === "round-robin" ? "sticky" : "round-robin";
    command = `make lb MODE=${next}`;
  }
  $("lb-command").textContent = mode === null ? "answers come straight from a node (no X-LB-Mode)" : command;
}

function renderLab(lab, servedBy) {
  const nodes = $("node-states");
  nodes.replaceChildren(...lab.nodes.map((n) => stateChip(n.name, n.state, n.state === "up" ? `${n.ms} ms` : n.detail, n.name)));
  const stores = $("store-states");
  stores.replaceChildren(...lab.stores.map((st) => stateChip(st.name, st.state, st.state === "ok" ? "" : st.detail)));
  $("lab-source").textContent = `as ${servedBy || lab.node} sees it (peers' /healthz, its own store checks, ${lab.took_ms} ms)`;
}

function stateChip(name, state, detail, node) {
  const chip = el("li", `state ${state}`);
  chip.dataset.testid = node ? "node-state" : "store-state";
  chip.dataset.name = name;
  chip.dataset.state = state;
  const dot = el("span", "dot");
  if (node) dot.style.setProperty("--dot-ring", nodeColour(node));
  chip.append(dot, el("b", "", name), el("span", "ms", detail || ""));
  chip.title = detail || state;
  return chip;
}

async function pollLab() {
  try {
    const response = await fetch("/api/lab", { cache: "no-store", headers: { Accept: "application/json" } });
    noteMode(response);
    if (response.ok) renderLab(await response.json(), response.headers.get("X-Served-By"));
  } catch {
    // the balancer is down: the next cart request says so in the timeline
  }
}

// --- start ------------------------------------------------------------------------------------------

function applyProjector(on) {
  document.documentElement.classList.toggle("projector", on);
  document.body.classList.toggle("projector", on);
  $("projector-toggle").checked = on;
}

// On load the page picks up this browser's session for the strategy (a reload keeps the cart); a switch in
// the menu starts over as a new user, so each strategy is seen from an empty cart.
async function choose(name, fresh = false) {
  page.strategy = page.strategies.find((s) => s.name === name) || page.strategies[0];
  saved.set("strategy", page.strategy.name);
  $("strategy-select").value = page.strategy.name;
  page.state = loadState(page.strategy.name);
  $("notice").hidden = true;
  render();
  renderMode();
  if (page.state.user && !fresh) await refresh();
  else await login();
}

async function start() {
  const params = new URLSearchParams(location.search);
  const projector = params.has("projector") ? params.get("projector") !== "0" : saved.get("projector", false);
  applyProjector(projector);
  let listing;
  try {
    const response = await fetch("/api/strategies", { cache: "no-store" });
    listing = (await response.json()).strategies;
  } catch {
    $("notice").textContent = "Could not list the strategies: is the lab up?";
    $("notice").classList.add("bad");
    $("notice").hidden = false;
    return;
  }
  page.strategies = listing;
  const select = $("strategy-select");
  for (const s of listing) {
    const option = new Option(s.name, s.name);
    option.title = s.summary;
    select.append(option);
  }
  // First choice: ?strategy=, then this browser's last one, then the first strategy that keeps a session.
  const wanted = params.get("strategy") || saved.get("strategy", null);
  const first = listing.find((s) => s.keeps_state) || listing[0];
  select.addEventListener("change", () => choose(select.value, true));
  $("add-form").addEventListener("submit", addItem);
  $("refresh").addEventListener("click", refresh);
  $("reset").addEventListener("click", reset);
  $("predict-survive").addEventListener("change", () => predict("survived"));
  $("predict-lose").addEventListener("change", () => predict("lost"));
  $("projector-toggle").addEventListener("change", (e) => {
    applyProjector(e.target.checked);
    saved.set("projector", e.target.checked);
  });
  let timer = null;
  const auto = $("auto-refresh");
  auto.addEventListener("change", () => {
    clearInterval(timer);
    timer = auto.checked ? setInterval(() => page.busy || refresh(), 1000) : null;
  });
  $("copy-kill").addEventListener("click", () => {
    const text = $("kill-command").textContent;
    const selectIt = () => window.getSelection().selectAllChildren($("kill-command"));
    // The clipboard API exists only in a secure context (localhost, https); elsewhere select it for Ctrl-C.
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(selectIt);
    else selectIt();
  });
  await choose(listing.some((s) => s.name === wanted) ? wanted : first.name);
  pollLab();
  setInterval(pollLab, LAB_POLL_MS);
}

start();
