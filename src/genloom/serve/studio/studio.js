// The studio: one panel per data kind, each a thin form over the server's own API (nothing fetched from elsewhere).
"use strict";

const $ = (id) => document.getElementById(id);
const keyBox = $("key");
keyBox.value = localStorage.getItem("genloom-key") || "";
keyBox.addEventListener("change", () => { localStorage.setItem("genloom-key", keyBox.value); loadRuns(); });

function headers(json = true) {
  const sent = json ? { "Content-Type": "application/json" } : {};
  if (keyBox.value) sent["Authorization"] = "Bearer " + keyBox.value;
  return sent;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// A request to the API; a non-2xx answer is shown as its one-line message and stops the caller.
async function api(path, body) {
  const response = await fetch(path, body === undefined ? { headers: headers(false) }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON: keep the status */ }
    showError(message);
    throw new Error(message);
  }
  showError("");
  return response;
}

function element(tag, attributes = {}, ...children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  made.append(...children);
  return made;
}

function field(label, input) { return element("label", {}, label, input); }
function number(id, value, min = 0) { return element("input", { id, type: "number", value, min }); }
function value(id) { return $(id) ? $(id).value : ""; }
function numberOf(id) { return value(id) === "" ? undefined : Number(value(id)); }

function samplingControls(run) {
  const controls = [];
  const options = run.sampling_options;
  if (options.includes("sampler")) {
    const sampler = element("select", { id: "sampler" });
    for (const name of ["ddpm", "ddim", "dpm-solver", "dpm-solver-sde"]) {
        sampler.append(element("option", { value: name }, name));
    }
    controls.push(field("sampler", sampler), field("steps", number("steps", 50, 1)));
  }
  if (options.includes("guidance") && run.conditional) controls.push(field("guidance", number("guidance", 1)));
  if (run.labels && run.labels.length) {
    const labels = element("select", { id: "label" }, element("option", { value: "" }, "any"));
    for (const label of run.labels) labels.append(element("option", { value: label }, label));
    controls.push(field("label", labels));
  }
  return controls;
}

function samplingRequest(run) {
  const request = { n: numberOf("n"), seed: numberOf("seed") };
  if ($("sampler")) { request.sampler = value("sampler"); request.steps = numberOf("steps"); }
  if ($("guidance")) request.guidance = numberOf("guidance");
  if (value("label")) request.labels = value("label");
  return request;
}

const PANELS = {
  image(run, panel) {
    const grid = element("img", { id: "grid", class: "samples", alt: "samples" });
    const button = element("button", { id: "sample" }, "sample");
    button.onclick = async () => {
      const response = await api(`/v1/runs/${run.name}/samples`, { ...samplingRequest(run), format: "png" });
      grid.src = URL.createObjectURL(await response.blob());
    };
    panel.append(element("div", { class: "controls" }, field("samples", number("n", 16, 1)),
      field("seed", number("seed", 0)), ...samplingControls(run), button), grid);
    if (run.tools.includes("decode")) panel.append(interpolation(run));
  },

  table(run, panel) {
    const preview = element("div", { id: "rows" });
    const button = element("button", { id: "sample" }, "sample");
    button.onclick = async () => {
      const rows = (await (await api(`/v1/runs/${run.name}/samples`, { ...samplingRequest(run), format: "json" }))
        .json()).rows;
      const columns = Object.keys(run.columns);
      const table = element("table", { class: "rows" },
        element("tr", {}, ...columns.map((name) => element("th", {}, name))));
      for (const row of rows.slice(0, 20)) {
        table.append(element("tr", {}, ...columns.map((name) => element("td", {}, String(row[name] ?? "")))));
      }
      preview.replaceChildren(element("p", { class: "metrics" }, `${rows.length} rows (the first 20 shown)`), table);
    };
    const download = element("button", { id: "download" }, "download CSV");
    download.onclick = async () => {
      const response = await api(`/v1/runs/${run.name}/samples`, { ...samplingRequest(run), format: "csv" });
      const link = element("a", { href: URL.createObjectURL(await response.blob()), download: `${run.name}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    };
    const report = element("button", { id: "report" }, "report");
    report.onclick = async () => {
      const page = await (await api(`/v1/runs/${run.name}/report`)).blob();
      window.open(URL.createObjectURL(page), "_blank");
    };
    panel.append(element("div", { class: "controls" }, field("rows", number("n", 100, 1)),
      field("seed", number("seed", 0)), button, download, report), preview);
  },

  text(run, panel) {
    const output = element("pre", { id: "completion", class: "completion" });
    const button = element("button", { id: "generate" }, "generate");
    button.onclick = async () => {
      output.textContent = value("prompt");
      const response = await api("/v1/completions", { model: run.name, prompt: value("prompt"), stream: true,
        max_tokens: numberOf("max_tokens"), temperature: numberOf("temperature"), seed: numberOf("seed") });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      for (;;) {
        const { value: text, done } = await reader.read();
        if (done) break;
        buffered += text;
        const events = buffered.split("\n\n");
        buffered = events.pop();
        for (const event of events) {
          const data = event.replace(/^data: /, "");
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) { showError(chunk.error.message); continue; }
          output.textContent += chunk.choices[0].text;
        }
      }
    };
    panel.append(element("textarea", { id: "prompt", rows: 4 }, "ROMEO:"),
      element("div", { class: "controls" }, field("max tokens", number("max_tokens", 200, 1)),
        field("temperature", element("input", { id: "temperature", type: "number", value: 0.8, min: 0, step: 0.1 })),
        field("seed", number("seed", 0)), button), output);
  },
};

// A VAE's latent path between two seeds; the slider walks along it.
function interpolation(run) {
  const frames = 8;
  const picture = element("img", { id: "frame", class: "samples", alt: "interpolation" });
  const slider = element("input", { id: "slider", type: "range", min: 0, max: frames - 1, value: 0 });
  let images = [];
  const show = () => { if (images.length) picture.src = "data:image/png;base64," + images[Number(slider.value)]; };
  slider.oninput = show;
  const button = element("button", { id: "interpolate" }, "interpolate");
  button.onclick = async () => {
    const request = { from_seed: numberOf("from_seed"), to_seed: numberOf("to_seed"), frames, format: "json" };
    if (value("label")) request.labels = value("label");
    images = (await (await api(`/v1/runs/${run.name}/interpolate`, request)).json()).images;
    show();
  };
  return element("section", {}, element("h3", {}, "interpolate between two seeds"),
    element("div", { class: "controls" }, field("from seed", number("from_seed", 0)),
      field("to seed", number("to_seed", 1)), button, field("along the path", slider)), picture);
}

async function showRun(name) {
  const panel = $("panel");
  const run = await (await api(`/v1/runs/${name}`)).json();
  const metrics = Object.entries(run.final_metrics).map(([key, number]) => `${key} ${number}`).join(" · ");
  panel.replaceChildren(element("h2", {}, `${run.name}: ${run.family} on ${run.kind} data`),
    element("p", { class: "metrics" }, metrics));
  PANELS[run.kind](run, panel);
}

async function loadRuns() {
  const runs = (await (await api("/v1/runs")).json()).runs;
  const select = $("run");
  select.replaceChildren(...runs.map((run) => element("option", { value: run.name },
    `${run.name} (${run.family || "damaged"}, ${run.kind || "?"})`)));
  select.onchange = () => showRun(select.value).catch(() => {});
  const wanted = new URLSearchParams(location.search).get("run");
  if (wanted && runs.some((run) => run.name === wanted)) select.value = wanted;
  if (runs.length) await showRun(select.value);
}

loadRuns().catch(() => {});
