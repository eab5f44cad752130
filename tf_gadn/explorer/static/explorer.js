// Style explorer (issue 16). Talks only to TF Serving's REST API (/v1/models/<model>:predict and /metadata), which
// the explorer's server passes through. Every picture is one `render_encoded` call on codes the page keeps:
// content v (encode_content or sample), the content's own style, the target style (artists, random, references,
// interpolated, then edited per dimension), strength and keep colours. Moves coalesce: while a request is in
// flight only the latest state is sent next.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_DIM_SLIDERS = 32;
  const STRIP_STEPS = 8;

  const state = {
    content: { kind: "drawing", index: 0, seed: 1 },   // drawing | sample | upload
    styleA: { mode: "artist", artist: "", seed: 1 },    // artist | random | references
    styleB: { mode: "none", artist: "", seed: 2 },      // none | artist | random | references
    mix: 0, strength: 1, keepColors: false, noise: 0, noiseSeed: 1,
    dims: null,   // the target style as edited with the sliders, or null: follow style A/B
  };
  const model = { name: "", method: "", dStyle: 0, dContent: 0, noiseDim: 0, artists: [], drawings: [], sigs: {} };
  const content = { key: "", code: null, ownStyle: null, imageB64: "" };
  let uploadB64 = "";
  let references = [];          // base64 of the uploaded reference drawings
  const styleCache = new Map();
  let notice = "";              // a message about the link itself, shown once the first picture is drawn
  const stats = { latencies: [], renders: 0, strips: 0, errors: [] };
  window.explorer = stats;       // read by the browser test (latency) and handy in the console

  // ---- the REST API ---------------------------------------------------------------------------------------------
  function describe(status, message) {
    message = message || "";
    if (status === 502 || status === 503) return `Server down: ${message || "the serving API does not answer"}`;
    if (status === 413 || /exceeds the limit|larger than|too large/i.test(message)) return `Image too large: ${message}`;
    if (/unknown artist/i.test(message)) return `Unknown artist: ${message.replace(/^.*unknown artist name\(s\):\]?\s*/i, "")}`;
    if (/not a PNG|decode/i.test(message)) return `Not an image the server can read: ${message}`;
    if (status === 404) return `Model not found: ${message}`;
    return `Server error ${status}: ${message}`;
  }

  async function api(path, body) {
    let response;
    try {
      response = await fetch(path, body === undefined ? {} : {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      throw new Error("Server down: the explorer's server does not answer (" + e.message + ")");
    }
    let payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (!response.ok) throw new Error(describe(response.status, payload && payload.error));
    return payload;
  }

  async function predict(signature, inputs) {
    const answer = await api(`/v1/models/${encodeURIComponent(model.name)}:predict`,
                             { signature_name: signature, inputs });
    const out = answer.outputs;   // one output: the tensor itself, else {alias: tensor}
    return (key) => (out !== null && typeof out === "object" && !Array.isArray(out) ? out[key] : out);
  }

  // ---- errors and status ----------------------------------------------------------------------------------------
  function showError(message) {
    stats.errors.push(message);
    $("error").textContent = message;
    $("error").hidden = false;
  }
  function clearError() { $("error").hidden = true; $("error").textContent = ""; }

  // ---- numbers --------------------------------------------------------------------------------------------------
  function seededNormal(seed, n) {   // mulberry32 + Box-Muller: the same seed gives the same vector (shareable links)
    let a = (seed >>> 0) || 1;
    const uniform = () => {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
    return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
  }
  const lerp = (a, b, t) => a.map((x, i) => x + t * (b[i] - x));
  const newSeed = () => 1 + Math.floor(Math.random() * 2147483646);

  // ---- codes ----------------------------------------------------------------------------------------------------
  async function fileB64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
      reader.readAsDataURL(file);
    });
  }
  async function urlB64(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }
  function blankPngB64() {   // render needs an image; a sampled content has none, and keep colours is off for it
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 1;
    return canvas.toDataURL("image/png").split(",", 2)[1];
  }

  async function styleOfImage(b64, artistName) {
    if (model.sigs.encode_style_encoded) return (await predict("encode_style_encoded", { image_bytes: [{ b64 }] }))("style")[0];
    // GADN has no style encoder: the style of the drawing's artist (known for test drawings, else C2's guess)
    let artist = artistName;
    if (!artist && model.sigs.classify_encoded) artist = (await predict("classify_encoded", { image_bytes: [{ b64 }] }))("artist")[0];
    return artist ? artistStyle(artist) : new Array(model.dStyle).fill(0);
  }

  async function loadContent() {
    const c = state.content;
    const key = c.kind === "drawing" ? `d${c.index}` : c.kind === "sample" ? `s${c.seed}` : `u${uploadB64.length}:${uploadB64.slice(-32)}`;
    if (content.key === key) return;
    if (c.kind === "sample") {
      const out = await predict("sample_by_name", { artist: [model.artists[0]], seed: [c.seed] });
      content.code = out("content")[0];
      content.ownStyle = new Array(model.dStyle).fill(0);
      content.imageB64 = blankPngB64();
    } else {
      const b64 = c.kind === "drawing" ? await urlB64(`/explorer/drawings/${c.index}`) : uploadB64;
      if (!b64) throw new Error("No content: pick a drawing, upload one or sample one");
      content.code = (await predict("encode_content_encoded", { image_bytes: [{ b64 }] }))("content_mean")[0];
      const artist = c.kind === "drawing" ? (model.drawings[c.index] || {}).artist : "";
      content.ownStyle = await styleOfImage(b64, artist);
      content.imageB64 = b64;
    }
    content.key = key;
    showContent();
  }

  function showContent() {
    const c = state.content;
    const img = $("content-image");
    if (c.kind === "sample") {
      img.removeAttribute("src");
      $("content-label").textContent = `sampled content, seed ${c.seed}`;
    } else {
      img.src = "data:image/png;base64," + content.imageB64;
      $("content-label").textContent = c.kind === "drawing"
        ? `test drawing ${c.index} by ${(model.drawings[c.index] || {}).artist}` : "uploaded drawing";
    }
    $("keep-colors").disabled = c.kind === "sample";
    document.querySelectorAll("#drawings img").forEach((el, i) =>
      el.setAttribute("aria-selected", String(c.kind === "drawing" && i === c.index)));
  }

  async function artistStyle(name) {
    const key = "artist:" + name;
    if (!styleCache.has(key)) {
      if (!model.artists.includes(name)) throw new Error(`Unknown artist: ${JSON.stringify(name)} (pick one from the list)`);
      styleCache.set(key, (await predict("artist_style_by_name", { artist: [name] }))("style")[0]);
    }
    return styleCache.get(key);
  }

  async function referenceStyle() {
    if (!references.length) throw new Error("No reference drawings: upload one or more first");
    const key = "refs:" + references.map((r) => r.length + r.slice(-16)).join("|");
    if (!styleCache.has(key)) {
      const styles = (await predict("encode_style_encoded", { image_bytes: references.map((b64) => ({ b64 })) }))("style");
      styleCache.set(key, styles[0].map((_, i) => styles.reduce((sum, s) => sum + s[i], 0) / styles.length));
    }
    return styleCache.get(key);
  }

  async function styleOf(source) {
    if (source.mode === "artist") return artistStyle(source.artist);
    if (source.mode === "random") return seededNormal(source.seed, model.dStyle);
    return referenceStyle();
  }

  async function targetStyle() {
    let target = await styleOf(state.styleA);
    if (state.styleB.mode !== "none") target = lerp(target, await styleOf(state.styleB), state.mix);
    return target;
  }

  function finalStyle(target) {   // strength: own style + strength (target - own)
    return lerp(content.ownStyle, target, state.strength);
  }

  async function renderRows(styles) {
    const n = styles.length;
    const inputs = {
      content: Array(n).fill(content.code), style: styles,
      image_bytes: Array(n).fill({ b64: content.imageB64 }),
      keep_colors: Array(n).fill(state.keepColors && state.content.kind !== "sample" ? 1 : 0),
    };
    if (model.noiseDim) {
      const w = seededNormal(state.noiseSeed, model.noiseDim).map((x) => x * state.noise);
      inputs.noise = Array(n).fill(w);
    }
    return (await predict("render_encoded", inputs))("png_bytes").map((p) => p.b64);
  }

  // ---- the render loop: coalesced --------------------------------------------------------------------------------
  let inFlight = false, pending = false, dirtySince = null;

  function schedule() {
    writeUrl();
    if (dirtySince === null) dirtySince = performance.now();
    if (inFlight) { pending = true; return; }
    send();
  }

  async function send() {
    inFlight = true; pending = false;
    const since = dirtySince; dirtySince = null;
    $("busy").textContent = "drawing...";
    try {
      await loadContent();
      let target = await targetStyle();
      if (state.dims) target = target.map((x, i) => (i < state.dims.length ? state.dims[i] : x));
      else showDims(target);
      const [b64] = await renderRows([finalStyle(target)]);
      const picture = $("picture");
      picture.src = "data:image/png;base64," + b64;
      await picture.decode();
      $("download").href = picture.src;
      stats.renders += 1;
      stats.latencies.push(performance.now() - since);
      if (notice) { showError(notice); notice = ""; } else clearError();
    } catch (e) {
      showError(e.message);
    } finally {
      inFlight = false;
      $("busy").textContent = "";
      if (pending) send();
    }
  }

  // ---- dimension sliders -----------------------------------------------------------------------------------------
  function buildDims() {
    const count = Math.min(model.dStyle, MAX_DIM_SLIDERS);
    $("dims-count").textContent = String(count);
    const box = $("dims");
    box.textContent = "";
    for (let i = 0; i < count; i++) {
      const label = document.createElement("label");
      label.innerHTML = `<span>u[${i}]</span><output>0.0</output>`;
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: -5, max: 5, step: 0.1, value: 0, id: `dim-${i}` });
      slider.setAttribute("aria-label", `style dimension ${i}`);
      slider.addEventListener("input", () => {
        if (!state.dims) state.dims = currentDims();
        state.dims[i] = Number(slider.value);
        label.querySelector("output").textContent = Number(slider.value).toFixed(1);
        schedule();
      });
      label.appendChild(slider);
      box.appendChild(label);
    }
  }
  function currentDims() {
    return Array.from(document.querySelectorAll("#dims input"), (s) => Number(s.value));
  }
  function showDims(values) {
    document.querySelectorAll("#dims label").forEach((label, i) => {
      const v = Math.max(-5, Math.min(5, values[i]));
      label.querySelector("input").value = String(v);
      label.querySelector("output").textContent = v.toFixed(1);
    });
  }

  // ---- the URL holds the settings ---------------------------------------------------------------------------------
  const styleText = (s) => (s.mode === "artist" ? `artist:${s.artist}` : s.mode === "random" ? `random:${s.seed}` : s.mode);
  function parseStyle(text, fallback) {
    if (!text) return fallback;
    const [mode, rest] = [text.split(":")[0], text.slice(text.indexOf(":") + 1)];
    if (mode === "artist") return { ...fallback, mode, artist: rest };
    if (mode === "random") return { ...fallback, mode, seed: Number(rest) || 1 };
    if (mode === "none" || mode === "references") return { ...fallback, mode };
    return fallback;
  }
  function writeUrl() {
    const c = state.content;
    const p = new URLSearchParams({
      content: c.kind === "drawing" ? `drawing:${c.index}` : c.kind === "sample" ? `sample:${c.seed}` : "upload",
      a: styleText(state.styleA), b: styleText(state.styleB), mix: String(state.mix),
      strength: String(state.strength), keep: state.keepColors ? "1" : "0", noise: String(state.noise),
      noise_seed: String(state.noiseSeed) });
    if (state.dims) p.set("dims", state.dims.map((x) => x.toFixed(2)).join(","));
    history.replaceState(null, "", "?" + p.toString());
  }
  function readUrl() {
    const p = new URLSearchParams(location.search);
    const [kind, arg] = (p.get("content") || "").split(":");
    if (kind === "drawing" && Number(arg) < model.drawings.length) state.content = { kind, index: Number(arg), seed: 1 };
    else if (kind === "sample") state.content = { kind, index: 0, seed: Number(arg) || 1 };
    else if (!model.drawings.length) state.content = { kind: "sample", index: 0, seed: 1 };
    state.styleA = parseStyle(p.get("a"), { mode: "artist", artist: model.artists[0] || "", seed: 1 });
    state.styleB = parseStyle(p.get("b"), { mode: "none", artist: model.artists[1] || model.artists[0] || "", seed: 2 });
    for (const s of [state.styleA, state.styleB]) if (s.mode === "references") s.mode = "random";   // uploads do not travel in links
    state.mix = Number(p.get("mix") || 0);
    state.strength = Number(p.has("strength") ? p.get("strength") : 1);
    state.keepColors = p.get("keep") === "1";
    state.noise = Number(p.get("noise") || 0);
    state.noiseSeed = Number(p.get("noise_seed") || 1);
    state.dims = p.get("dims") ? p.get("dims").split(",").map(Number) : null;
    if (kind === "upload") notice = "Uploaded drawings are not part of a link: showing a test drawing instead";
    if ([p.get("a"), p.get("b")].includes("references")) notice = "Reference drawings are not part of a link: upload them again";
  }

  function showControls() {
    $("style-a-mode").value = state.styleA.mode;
    $("style-b-mode").value = state.styleB.mode;
    $("artist-a").value = state.styleA.artist;
    $("artist-b").value = state.styleB.artist;
    $("mix").value = state.mix; $("mix-value").textContent = state.mix.toFixed(2);
    $("strength").value = state.strength; $("strength-value").textContent = state.strength.toFixed(2);
    $("keep-colors").checked = state.keepColors;
    $("noise").value = state.noise; $("noise-value").textContent = state.noise.toFixed(2);
    $("mix").disabled = $("strip").disabled = state.styleB.mode === "none";
    if (state.dims) showDims(state.dims);
  }

  // ---- controls -------------------------------------------------------------------------------------------------
  function onFiles(zone, input, handle) {
    input.addEventListener("change", () => { if (input.files.length) handle(Array.from(input.files)); input.value = ""; });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault(); zone.classList.remove("over");
      if (e.dataTransfer.files.length) handle(Array.from(e.dataTransfer.files));
    });
    zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  }

  async function setContentUpload(files) {
    try { uploadB64 = await fileB64(files[0]); } catch (e) { showError(e.message); return; }
    state.content = { ...state.content, kind: "upload" };
    schedule();
  }

  async function setReferences(files) {
    try { references = await Promise.all(files.map(fileB64)); } catch (e) { showError(e.message); return; }
    const box = $("references");
    box.textContent = "";
    for (const b64 of references) {
      const img = document.createElement("img");
      img.src = "data:image/png;base64," + b64;
      img.alt = "reference drawing";
      box.appendChild(img);
    }
    $("reference-label").textContent = `${references.length} reference drawing(s): their mean style`;
    if (state.styleA.mode !== "references" && state.styleB.mode !== "references") state.styleA.mode = "references";
    state.dims = null;
    showControls();
    schedule();
  }

  async function downloadStrip() {
    if (state.styleB.mode === "none") { showError("Choose a style B to interpolate to"); return; }
    try {
      await loadContent();
      const a = await styleOf(state.styleA), b = await styleOf(state.styleB);
      const rows = Array.from({ length: STRIP_STEPS }, (_, k) => finalStyle(lerp(a, b, k / (STRIP_STEPS - 1))));
      const pngs = await renderRows(rows);
      const images = await Promise.all(pngs.map(async (b64) => {
        const img = new Image(); img.src = "data:image/png;base64," + b64; await img.decode(); return img;
      }));
      const size = images[0].naturalWidth;
      const canvas = document.createElement("canvas");
      canvas.width = size * STRIP_STEPS; canvas.height = size;
      images.forEach((img, k) => canvas.getContext("2d").drawImage(img, k * size, 0));
      const link = document.createElement("a");
      link.href = canvas.toDataURL("image/png"); link.download = "explorer_strip.png";
      link.click();
      stats.strips += 1;
    } catch (e) { showError(e.message); }
  }

  function wire() {
    const range = (id, key, fmt) => $(id).addEventListener("input", () => {
      state[key] = Number($(id).value);
      $(id + "-value").textContent = state[key].toFixed(2);
      if (fmt) fmt();
      schedule();
    });
    range("strength", "strength");
    range("noise", "noise");
    range("mix", "mix", () => { state.dims = null; });
    $("keep-colors").addEventListener("change", () => { state.keepColors = $("keep-colors").checked; schedule(); });
    $("noise-seed").addEventListener("click", () => { state.noiseSeed = newSeed(); schedule(); });
    $("sample-content").addEventListener("click", () => { state.content = { kind: "sample", index: 0, seed: newSeed() }; schedule(); });
    for (const [ab, key] of [["a", "styleA"], ["b", "styleB"]]) {
      $(`style-${ab}-mode`).addEventListener("change", () => {
        state[key].mode = $(`style-${ab}-mode`).value; state.dims = null; showControls(); schedule();
      });
      $(`artist-${ab}`).addEventListener("change", () => {
        state[key] = { ...state[key], mode: "artist", artist: $(`artist-${ab}`).value.trim() };
        state.dims = null; showControls(); schedule();
      });
      $(`random-${ab}`).addEventListener("click", () => {
        state[key] = { ...state[key], mode: "random", seed: newSeed() }; state.dims = null; showControls(); schedule();
      });
    }
    $("reset-dims").addEventListener("click", () => { state.dims = null; schedule(); });
    $("strip").addEventListener("click", downloadStrip);
    $("copy-link").addEventListener("click", () => {
      if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(() => {});
      $("busy").textContent = "link in the address bar";
    });
    onFiles($("content-drop"), $("content-file"), setContentUpload);
    onFiles($("reference-drop"), $("reference-files"), setReferences);
    document.body.addEventListener("dragover", (e) => e.preventDefault());   // a missed drop must not open the file
    document.body.addEventListener("drop", (e) => e.preventDefault());
  }

  function buildDrawings() {
    const box = $("drawings");
    model.drawings.forEach((d, i) => {
      const img = document.createElement("img");
      Object.assign(img, { src: `/explorer/drawings/${i}`, alt: `test drawing ${i} by ${d.artist}`, tabIndex: 0 });
      img.setAttribute("role", "option");
      const pick = () => { state.content = { kind: "drawing", index: i, seed: 1 }; schedule(); };
      img.addEventListener("click", pick);
      img.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
      box.appendChild(img);
    });
  }

  function dimOf(signature, alias) {
    const dims = (((signature || {}).inputs || {})[alias] || {}).tensor_shape;
    return dims ? Number(dims.dim[dims.dim.length - 1].size) : 0;
  }

  async function init() {
    try {
      const config = await api("/explorer/config.json");
      model.name = config.model;
      model.drawings = config.drawings;
      const meta = await api(`/v1/models/${encodeURIComponent(model.name)}/metadata`);
      model.sigs = meta.metadata.signature_def.signature_def;
      if (!model.sigs.render_encoded) {
        throw new Error(`Model ${model.name} has no render_encoded signature: export it again with this tf_gadn`);
      }
      model.method = model.sigs.encode_style_encoded ? "style space" : "GADN";
      model.dStyle = dimOf(model.sigs.render_encoded, "style");
      model.dContent = dimOf(model.sigs.render_encoded, "content");
      model.noiseDim = dimOf(model.sigs.render_encoded, "noise");
      model.artists = (await predict("artists", { row: [0] }))("artist")[0];
    } catch (e) {
      showError(e.message);
      $("model-info").textContent = "not connected";
      return;
    }
    $("model-info").textContent = `${model.name} (${model.method}): ${model.artists.length} artists, ` +
      `style ${model.dStyle}, content ${model.dContent}` + (model.noiseDim ? `, noise ${model.noiseDim}` : "");
    $("artist-list").append(...model.artists.map((name) => Object.assign(document.createElement("option"), { value: name })));
    $("noise-row").hidden = $("noise-seed").hidden = !model.noiseDim;
    if (!model.sigs.encode_style_encoded) {   // GADN: no style encoder, so no reference drawings
      document.querySelectorAll('option[value="references"]').forEach((o) => { o.disabled = true; });
      $("reference-files").disabled = true;
      $("reference-label").textContent = "reference drawings need a style encoder (style-space models)";
    }
    buildDims();
    buildDrawings();
    readUrl();
    showControls();
    wire();
    schedule();
  }

  init();
})();
