// The page of `quaterion serve`: search, baseline comparison, PCA map and confusions.
// Plain JS, no build step, nothing fetched from outside this service.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"];
const colours = new Map();
const $ = (id) => document.getElementById(id);

function colourOf(group) {
  const key = String(group);
  if (!colours.has(key)) colours.set(key, PALETTE[colours.size % PALETTE.length]);
  return colours.get(key);
}

function headers() {
  const key = sessionStorage.getItem("quaterion-api-key");
  const out = { "Content-Type": "application/json" };
  if (key) out.Authorization = "Bearer " + key;
  return out;
}

async function api(path, body) {
  const init = body === undefined ? { headers: headers() }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (response.status === 401) $("key-box").hidden = false;
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function groupBadge(group) {
  const badge = document.createElement("span");
  badge.className = "group";
  badge.style.background = colourOf(group);
  badge.textContent = group === null || group === undefined ? "?" : String(group);
  return badge;
}

function objectNode(item, pickable = true) {
  const span = document.createElement("span");
  span.className = "object";
  if (pickable && item.ref) {  // a stored object: click to search with it
    span.classList.add("pick");
    span.title = "search with this object";
    span.addEventListener("click", () => searchById(item.ref));
  }
  if (item.kind === "image" && item.object) {
    const img = document.createElement("img");
    img.src = item.object;
    img.alt = "object " + item.id;
    span.append(img);
  } else {
    span.textContent = item.object === null || item.object === undefined ? "#" + item.id : item.object;
  }
  return span;
}

function hitList(title, hits) {
  const column = document.createElement("div");
  column.className = "column";
  const heading = document.createElement("h3");
  heading.textContent = title;
  const list = document.createElement("ol");
  list.className = "hits";
  for (const hit of hits) {
    const li = document.createElement("li");
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    li.append(score);
    if (hit.group !== null && hit.group !== undefined) li.append(groupBadge(hit.group));
    li.append(objectNode(hit));
    list.append(li);
  }
  column.append(heading, list);
  return column;
}

function showQuery(query) {
  const box = $("query-shown");
  if (typeof query === "string" || !query) {  // a typed text: it is in the search box
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  const label = document.createElement("span");
  label.textContent = "query: stored object #" + query.ref;
  box.replaceChildren(label);
  if (query.group !== null && query.group !== undefined) box.append(groupBadge(query.group));
  box.append(objectNode(query, false));
  box.hidden = false;
}

async function runSearch(body) {
  $("search-error").textContent = "";
  try {
    const answer = await api("/search", { ...body, limit: Number($("limit").value), baseline: true });
    showQuery(answer.query);
    const columns = [hitList("trained model", answer.hits)];
    if (answer.baseline) columns.push(hitList("frozen encoder (baseline)", answer.baseline));
    $("results").replaceChildren(...columns);
  } catch (error) {
    $("search-error").textContent = error.message;
  }
}

function search(event) {
  event.preventDefault();
  return runSearch({ query: $("query").value });
}

function searchById(ref) {  // ids exceed 2**53: sent as the decimal string the service gave
  window.scrollTo(0, 0);
  return runSearch({ id: ref });
}

function drawMap(points, grouped) {
  const svg = $("map");
  const ns = "http://www.w3.org/2000/svg";
  const [width, height, pad] = [600, 420, 12];
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const tooltip = $("tooltip");
  svg.replaceChildren();
  for (const point of points) {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", sx(point.x).toFixed(1));
    dot.setAttribute("cy", sy(point.y).toFixed(1));
    dot.setAttribute("r", "4");
    dot.setAttribute("fill", grouped ? colourOf(point.group) : PALETTE[0]);
    dot.addEventListener("click", () => searchById(point.ref));
    dot.addEventListener("mouseenter", () => {
      tooltip.replaceChildren(...(grouped ? [groupBadge(point.group)] : []), objectNode(point, false));
      tooltip.hidden = false;
    });
    dot.addEventListener("mousemove", (event) => {
      const box = $("map-box").getBoundingClientRect();
      tooltip.style.left = (event.clientX - box.left + 12) + "px";
      tooltip.style.top = (event.clientY - box.top + 12) + "px";
    });
    dot.addEventListener("mouseleave", () => { tooltip.hidden = true; });
    svg.append(dot);
  }
  const groups = grouped ? [...new Set(points.map((p) => String(p.group)))] : [];
  const legend = groups.sort().map((group) => {
    const li = document.createElement("li");
    li.append(groupBadge(group));
    return li;
  });
  $("legend").replaceChildren(...legend);
}

function drawConfusions(inspection) {
  if (!inspection.grouped) {  // a store of pairs: no groups, so nothing is confused
    $("confusion-section").hidden = true;
    $("map-title").textContent = "(PCA of the trained embeddings; the store holds pairs, not groups)";
    return;
  }
  const summary = `${inspection.confused} of ${inspection.total} indexed objects have their ` +
    "nearest neighbour in another group" +
    (inspection.baseline_confused === null ? "" : ` (frozen encoder: ${inspection.baseline_confused})`) +
    "; most similar wrong neighbour first";
  $("confusion-summary").textContent = summary;
  const rows = inspection.confusions.map((row) => {
    const tr = document.createElement("tr");
    const cells = [row.score.toFixed(3), objectNode(row), groupBadge(row.group),
      objectNode(row.neighbour), groupBadge(row.neighbour.group)];
    for (const content of cells) {
      const td = document.createElement("td");
      td.append(content);
      tr.append(td);
    }
    tr.firstChild.className = "num";
    return tr;
  });
  $("confusions").querySelector("tbody").replaceChildren(...rows);
}

async function start() {
  try {
    const health = await api("/health");
    $("health").textContent = `${health.model} · ${health.points} points in ${health.store} · ` +
      `${health.embedding_size}-d` + (health.baseline ? " · with frozen baseline" : "");
    const inspection = await api("/inspect");
    drawMap(inspection.points, inspection.grouped);
    drawConfusions(inspection);
  } catch (error) {
    $("health").textContent = error.message;
  }
}

$("search-form").addEventListener("submit", search);
$("key-save").addEventListener("click", () => {
  sessionStorage.setItem("quaterion-api-key", $("api-key").value);
  $("key-box").hidden = true;
  start();
});
start();
