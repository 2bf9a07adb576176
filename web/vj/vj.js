/* Stagecraft VJ control page. Protocol: docs/vj-protocol.md. No dependencies, CSP-safe: no inline
   code, no eval, no innerHTML; text from the server (audience prompts above all) only ever goes
   through textContent or attribute values. */
(() => {
  "use strict";

  const PING_MS = 20000;
  const PONG_MS = 15000;           // a ping with nothing heard since for this long: the socket is dead
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 5000;
  const HANDSHAKE_FAILS = 3;       // refused handshakes in a row before asking whether we are logged out
  const TOAST_MS = 6000;
  const TOAST_MAX = 6;
  const BEAT_FLASH_MS = 120;
  const PARAM_EVERY_MS = 33;       // at most one param message per control per this many ms
  const ECHO_GUARD_MS = 400;       // a control the user touched this recently keeps its own value
  const BAN_CONFIRM_MS = 3000;
  const BUSY_MS = 3000;
  const STALE_MS = 2000;
  const REF_TTL_MS = 60000;
  const LOGGED_OUT = "Logged out - reload the page and log in with the token or a pairing code (P on the show machine)";
  const TRIGGERS = ["next", "blackout", "freeze", "hud", "tap", "resync", "clear_effects"];
  const NUMBER_SETTINGS = ["width", "height", "cfg_scale", "steps", "samples", "strength"];
  const SELECT_SETTINGS = ["aspect_ratio", "model", "style_preset", "img2img"];
  const SETTINGS = [...NUMBER_SETTINGS, ...SELECT_SETTINGS, "negative_prompt"];
  const UNCONTROLLABLE = new Set(["image", "audio", "audioFFT"]);

  const $ = (id) => document.getElementById(id);

  /** A new element: attrs are attributes ("text" sets textContent, "class" the class); children are nodes or strings. */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c);
    return el;
  }

  function setText(el, text) {
    const s = String(text);
    if (el.textContent !== s) el.textContent = s;
  }

  const num = (v, fallback = 0) => (typeof v === "number" && Number.isFinite(v) ? v : fallback);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const round4 = (v) => Math.round(v * 10000) / 10000;

  function fmtNum(v) {
    const a = Math.abs(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 100) return v.toFixed(1);
    if (a >= 10) return v.toFixed(2);
    return v.toFixed(3);
  }

  function fmtAge(sec) {
    const s = Math.max(0, Math.floor(sec));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    return !["button", "checkbox", "radio", "range", "color", "submit", "reset"].includes(el.type);
  }

  /* ---------- state: the latest of each state message ---------- */
  const state = {
    hello: null, show: null, tempo: null, shaders: null, queue: null,
    gallery: null, generation: null, backend: null, midi: null,
  };

  /* ---------- toasts ---------- */
  // Server errors go to #toasts; the page's own notes (sent, applied, not connected) to #notes beside it.
  const toasts = $("toasts");
  const notes = $("notes");

  function toast(text, kind = "error", code = "") {
    const list = kind === "error" ? toasts : notes;
    const li = h("li", { class: "toast toast-" + kind, "data-code": code || null, text });
    list.append(li);
    while (list.children.length > TOAST_MAX) list.firstElementChild.remove();
    setTimeout(() => li.remove(), TOAST_MS);
  }

  /* ---------- connection ---------- */
  const connEl = $("conn");
  const connText = $("conn-text");
  const banner = $("banner");

  let ws = null;
  let backoff = BACKOFF_MIN;
  let handshakeFails = 0;
  let reconnectTimer = 0;
  let pingTimer = 0;
  let lastHeard = 0;
  let lastPingAt = 0;
  let loggedOut = false;
  let refSeq = 0;
  const waiting = new Map();       // ref -> {onAck, onError, at}

  function setConn(open, text) {
    connEl.setAttribute("data-state", open ? "open" : "closed");
    setText(connText, text);
    document.body.classList.toggle("offline", !open);
  }

  function showBanner(text) {
    if (text) setText(banner, text);
    banner.hidden = !text;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (loggedOut) return;
    let sock;
    try {
      sock = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/vj/ws");
    } catch (e) {
      scheduleReconnect();
      return;
    }
    sock.binaryType = "blob";
    let opened = false;
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      handshakeFails = 0;
      backoff = BACKOFF_MIN;
      lastHeard = Date.now();
      lastPingAt = 0;
      lastBeats = null;  // a restarted engine counts beats from 0 again
      setConn(true, "Live");
      showBanner("");
      sendPreviewWish();
      clearInterval(pingTimer);
      pingTimer = setInterval(keepAlive, PING_MS);
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      lastHeard = Date.now();
      if (typeof ev.data === "string") onText(ev.data);
      else onFrame(ev.data);
    };
    sock.onerror = () => { /* a close event follows */ };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      lost(ev.code, opened);
    };
  }

  function lost(code, opened) {
    ws = null;
    clearInterval(pingTimer);
    waiting.clear();
    previewLost();
    if (code === 1008) {
      logOut();
      return;
    }
    setConn(false, "Reconnecting…");
    if (!opened) handshakeFails++;
    if (handshakeFails >= HANDSHAKE_FAILS) checkLogin();
    else scheduleReconnect();
  }

  function scheduleReconnect() {
    if (loggedOut || reconnectTimer) return;
    const delay = backoff;
    backoff = Math.min(BACKOFF_MAX, backoff * 2);
    reconnectTimer = setTimeout(connect, delay);
  }

  /* A refused handshake looks like any other failed connection to the page (the browser hides the
     401), so after a few in a row ask the server over plain HTTP: an HTTP answer means the server is
     up and refuses this socket (the cookie is gone or stale: logged out); no answer means it is
     down or restarting, and we keep trying. */
  function checkLogin() {
    fetch("/vj/vj.css", { cache: "no-store", credentials: "same-origin" })
      .then((res) => {
        if (res.status === 401 || res.status === 403 || res.status === 429) {
          logOut();
        } else {
          // The page's files load but the socket is refused: tell the VJ, and keep trying slowly.
          setConn(false, "Refused");
          showBanner(LOGGED_OUT);
          backoff = BACKOFF_MAX;
          scheduleReconnect();
        }
      })
      .catch(() => {
        setConn(false, "Server unreachable");
        scheduleReconnect();
      });
  }

  /* Stop retrying: with a stale cookie every retry would count as a wrong token against this address. */
  function logOut() {
    loggedOut = true;
    clearTimeout(reconnectTimer);
    setConn(false, "Logged out");
    showBanner(LOGGED_OUT);
  }

  /* The server ends the login (the cookie is worthless from then on) and closes the socket; the login
     form is one reload away. */
  function logOutNow(everywhere) {
    send({ type: "logout", everywhere }, {
      onAck: () => {
        logOut();
        location.replace("/vj");
      },
    });
  }
  $("logout").addEventListener("click", () => logOutNow(false));
  confirmTwice($("logout-all"), "Log out all", () => logOutNow(true));  // it closes the other VJs' pages too

  /** A button for what cannot be undone: the first click asks "Sure?", a second within BAN_CONFIRM_MS acts. */
  function confirmTwice(btn, label, act) {
    let timer = 0;
    const disarm = () => {
      clearTimeout(timer);
      timer = 0;
      setText(btn, label);
      btn.classList.remove("armed");
    };
    btn.addEventListener("click", () => {
      if (timer) {
        disarm();
        act();
        return;
      }
      setText(btn, "Sure?");
      btn.classList.add("armed");
      timer = setTimeout(disarm, BAN_CONFIRM_MS);
    });
  }

  function keepAlive() {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    for (const [ref, w] of waiting) if (now - w.at > REF_TTL_MS) waiting.delete(ref);
    // Judged from our own last ping, not from a fixed silence: a hidden tab's timers may run once a minute.
    if (lastPingAt && lastHeard < lastPingAt && now - lastPingAt > PONG_MS) {
      const sock = ws;
      sock.onclose = null;
      try { sock.close(); } catch (e) { /* already gone */ }
      lost(1006, true);
      return;
    }
    lastPingAt = now;
    rawSend({ type: "ping" });
  }

  function rawSend(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Send a message; with handlers it gets a ref and they hear the matching ack or error. */
  function send(msg, handlers) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      toast("Not connected: nothing was sent", "local");
      return null;
    }
    let ref = null;
    if (handlers) {
      ref = "r" + (++refSeq);
      msg.ref = ref;
      waiting.set(ref, { onAck: handlers.onAck, onError: handlers.onError, at: Date.now() });
    }
    ws.send(JSON.stringify(msg));
    return ref || true;
  }

  const command = (action, extra) => send(Object.assign({ type: "command", action }, extra));

  function sendPreviewWish() {
    rawSend({ type: "preview", on: !document.hidden });
  }
  document.addEventListener("visibilitychange", sendPreviewWish);

  /* ---------- incoming ---------- */
  const handlers = {
    hello: onHello, show: onShow, tempo: onTempo, shaders: onShaders, queue: onQueue,
    gallery: onGallery, generation: onGeneration, backend: onBackend, midi: onMidi,
    ack: onAck, error: onError, pong: () => {},
  };

  function onText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    const fn = handlers[msg.type];
    if (!fn) return;
    if (msg.type in state) state[msg.type] = msg;
    try {
      fn(msg);
    } catch (e) {
      // One bad message must not stop the page; the console has the details for a bug report.
      console.warn("vj: could not show a " + msg.type + " message", e);
    }
  }

  function onAck(msg) {
    const w = waiting.get(msg.ref);
    if (!w) return;
    waiting.delete(msg.ref);
    if (w.onAck) w.onAck(msg);
  }

  function onError(msg) {
    const message = typeof msg.message === "string" && msg.message ? msg.message : "Error: " + (msg.code || "unknown");
    toast(message, "error", typeof msg.code === "string" ? msg.code : "");
    const w = msg.ref ? waiting.get(msg.ref) : null;
    if (!w) return;
    waiting.delete(msg.ref);
    if (w.onError) w.onError(msg);
  }

  function onHello(msg) {
    const auto = msg.moderation === "auto";
    setText($("moderation-mode"), auto ? "automatic" : msg.moderation === "approve" ? "approve each" : "—");
    $("moderation-note").hidden = !auto;
    setText($("join-url"), typeof msg.join_url === "string" && msg.join_url ? msg.join_url : "—");
    if (msg.version !== 1) toast("This page speaks protocol version 1; the engine says " + msg.version, "warn");
  }

  /* ---------- preview ---------- */
  const preview = $("preview");
  const previewWrap = $("preview-wrap");
  const previewNote = $("preview-note");
  let frameUrl = null;
  let lastFrameAt = 0;

  function onFrame(blob) {
    const url = URL.createObjectURL(blob);
    preview.src = url;
    // The old picture is already decoded and stays on screen until the new one is, so its URL can go now.
    if (frameUrl) URL.revokeObjectURL(frameUrl);
    frameUrl = url;
    lastFrameAt = Date.now();
    previewWrap.classList.add("has-frame");
    previewWrap.classList.remove("stale");
  }

  function previewLost() {
    previewWrap.classList.add("stale");
    setText(previewNote, "No connection");
  }

  setInterval(() => {
    if (!ws || document.hidden) return;
    const stale = Date.now() - lastFrameAt > STALE_MS;
    previewWrap.classList.toggle("stale", stale);
    if (stale) setText(previewNote, lastFrameAt ? "Preview paused" : "No preview yet");
  }, 1000);

  /* ---------- show ---------- */
  const btnBlackout = $("blackout");
  const btnFreeze = $("freeze");
  const btnHud = $("hud");

  function fillList(list, empty, items, make) {
    list.replaceChildren(...items.map(make));
    if (empty) empty.hidden = items.length > 0;
  }

  function onShow(msg) {
    setText($("current"), msg.current === null || msg.current === undefined || msg.current === "" ? "idle" : msg.current);
    setText($("fps"), num(msg.fps).toFixed(0));
    const fm = num(msg.frame_ms, NaN);
    const p99 = num(msg.frame_p99_ms, NaN);
    setText($("frame-ms"), Number.isNaN(fm) ? "—" : fm.toFixed(1) + " ms" + (Number.isNaN(p99) ? "" : " · p99 " + p99.toFixed(1)));
    setText($("queue-len"), num(msg.queue_len));
    const chain = (Array.isArray(msg.effects) ? msg.effects : []).filter((n) => n);
    setText($("effects-chain"), chain.length ? chain.join(" > ") : "none");
    $("effects-chain").title = chain.join(" > ");

    btnBlackout.setAttribute("aria-pressed", msg.blackout ? "true" : "false");
    btnFreeze.setAttribute("aria-pressed", msg.frozen ? "true" : "false");
    btnHud.setAttribute("aria-pressed", msg.hud ? "true" : "false");
    $("tag-blackout").hidden = !msg.blackout;
    $("tag-frozen").hidden = !msg.frozen;
    $("tag-incoming").hidden = msg.incoming === null || msg.incoming === undefined;
    previewWrap.classList.toggle("blackout", !!msg.blackout);

    if (Array.isArray(msg.size) && msg.size.length === 2 && msg.size[0] > 0 && msg.size[1] > 0) {
      previewWrap.style.aspectRatio = msg.size[0] + " / " + msg.size[1];
      setText($("preview-size"), msg.size[0] + "×" + msg.size[1]);
    }

    const errors = Array.isArray(msg.errors) ? msg.errors : [];
    fillList($("show-errors"), $("show-errors-empty"), errors, (e) => h("li", { text: e }));

    showDream(msg);
    showOutputs(msg);
    showCaption(msg);
    showMapping(msg);
    syncEffectPickers();
    renderParams();
    markOnAir();
    showScenes(msg);
  }

  /* Outputs (NDI, virtual camera, Syphon/Spout, recording) and the live inputs: state from the show, one line each. */
  const btnRecord = $("record");
  function megabytes(n) { return (num(n) / 1e6).toFixed(1) + " MB"; }
  function clock(seconds) {
    const s = Math.floor(num(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function outputText(o) {
    if (o.state !== "on") return o.name + ": " + o.state + (o.detail ? " — " + o.detail : "");
    if (o.name === "record") return "REC " + clock(o.seconds) + " · " + megabytes(o.bytes) + " · " + o.file + " · dropped " + num(o.dropped);
    const receivers = num(o.receivers, -1) >= 0 ? " · receivers " + num(o.receivers) : "";
    return o.name + ": " + o.detail + receivers + " · dropped " + num(o.dropped);
  }
  function showOutputs(msg) {
    const outputs = Array.isArray(msg.outputs) ? msg.outputs : [];
    const rec = outputs.find((o) => o && o.name === "record");
    const recording = !!rec && rec.state === "on";
    btnRecord.setAttribute("aria-pressed", recording ? "true" : "false");
    btnRecord.classList.toggle("recording", recording);
    setText($("record-info"), rec ? (recording ? "REC " + clock(rec.seconds) + " · " + megabytes(rec.bytes) : rec.state === "off" ? "not recording" : rec.state + ": " + rec.detail) : "not recording");
    const shown = outputs.filter((o) => o && (o.name !== "record" || o.state !== "off"));
    fillList($("output-list"), null, shown, (o) => h("li", { text: outputText(o), class: "output output-" + o.state }));
    const inputs = Array.isArray(msg.inputs) ? msg.inputs : [];
    const group = $("live-inputs");
    const names = [""].concat(inputs.map((i) => String(i.name).split(":")[0]));
    if (group.children.length !== names.length) {
      group.replaceChildren(...names.map((n, k) => {
        const b = h("button", { class: "btn btn-small btn-input", type: "button", text: n ? n[0].toUpperCase() + n.slice(1) : "Images" });
        b.dataset.input = n;
        if (k > 0) b.title = inputs[k - 1].name;
        b.addEventListener("click", () => command("input", { name: n }));
        return b;
      }));
    }
    for (const b of group.children) {
      const i = inputs.find((x) => String(x.name).split(":")[0] === b.dataset.input);
      b.setAttribute("aria-pressed", (msg.live_input || "") === b.dataset.input ? "true" : "false");
      if (i) b.title = i.name + ": " + i.state + (i.detail ? " — " + i.detail : "");
      b.classList.toggle("input-down", !!i && i.state !== "on");
    }
  }
  btnRecord.addEventListener("click", () => command("record"));

  /* The caption on the projector: its words, and a button to hide it (or show it again). */
  const btnCaption = $("caption-hide");
  let captionHidden = false;
  function showCaption(msg) {
    const text = typeof msg.caption === "string" ? msg.caption : "";
    captionHidden = !!msg.caption_hidden;
    const el = $("caption-text");
    setText(el, text ? (captionHidden ? "Hidden: " : "") + "“" + text + "”" : "none");
    el.title = text;
    el.classList.toggle("muted", !text);
    el.classList.toggle("caption-hidden", captionHidden);
    btnCaption.disabled = !text;
    btnCaption.setAttribute("aria-pressed", captionHidden ? "true" : "false");
    setText(btnCaption, captionHidden ? "Show caption" : "Hide caption");
  }
  btnCaption.addEventListener("click", () => command("caption", { value: captionHidden ? 1 : 0 }));

  /* Projection mapping: Map shows handles over the preview for one output of the venue profile (a selector
     picks it when there are several), at output coordinates (0..1 of the preview box), in one of three modes.
     Corners: the four corners. Mesh: one handle per control point, drawn where it lands on the output: a point
     p lives in the corner-pinned square, so it shows at H(p), H the homography of the output's corners, and a
     drag inverts H; lines join neighbouring points. Masks: the polygons (translucent black) and a handle per
     vertex; a polygon drags whole, Add mask puts a quad in the middle, a double-click on a mask adds a vertex
     on its nearest edge. A drag sends the mapping command throttled (a mesh point alone, as key "point") and
     the whole value once at its end; Undo puts back the value from before the last edit, whatever the output
     and the mode (a history on this page). Like the sliders, the engine's echo does not fight a drag in
     progress, nor one that just ended. */
  const MAP_EVERY_MS = 100;
  const MAP_HISTORY = 50;
  const MAP_MOST = 514;            // the most numbers one mapping command may carry: a whole 16x16 mesh
  const MASKS_MAX = 32;
  const MASK_VERTICES_MAX = 256;
  const MESH_SIZES = ["2x2", "3x3", "4x4", "5x5", "6x6", "8x8", "16x16"];
  const NEW_MASK = [0.375, 0.375, 0.625, 0.375, 0.625, 0.625, 0.375, 0.625];
  const CORNER_NAMES = ["top-left", "top-right", "bottom-right", "bottom-left"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MODE_OF_KEY = { corners: "corners", mesh: "mesh", masks: "masks" };
  const btnMap = $("map");
  const btnGrid = $("grid");
  const btnUndo = $("map-undo");
  const mapOverlay = $("map-overlay");
  const mapQuad = $("map-quad");
  const mapTools = $("map-tools");
  const mapOutput = $("map-output");
  const meshSize = $("map-mesh");
  const meshLines = $("map-mesh-lines");
  const maskLayer = $("map-masks");
  const btnMaskAdd = $("map-mask-add");
  const btnMaskDelete = $("map-mask-delete");
  const modeButtons = Array.from(document.querySelectorAll(".map-mode"));
  // corners: [x0, y0, .. x3, y3]; mesh: {cols, rows, pts: [x0, y0, ..]} or null; masks: [[x0, y0, ..], ..]: the
  // selected output's, as the engine last told them or as edited here since.
  const mapping = {
    on: false, mode: "corners", outputs: [], name: "", seen: "", corners: null, mesh: null, masks: [], H: null,
    selected: -1, drag: null, touched: -Infinity, timer: 0, last: 0, queued: null, history: [], built: null,
    extra: [],
  };
  const mapHandles = CORNER_NAMES.map((label, i) => {
    const el = h("button", { class: "map-handle", type: "button", "data-corner": i, "aria-label": "Corner " + label });
    mapOverlay.append(el);
    return el;
  });

  function svg(tag, attrs = {}) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  const finite = (v) => typeof v === "number" && Number.isFinite(v);

  function validCorners(v) {
    return Array.isArray(v) && v.length === 8 && v.every(finite);
  }

  function parseMesh(v) {
    if (!Array.isArray(v) || v.length < 2 || !v.every(finite)) return null;
    const [cols, rows] = v;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 2 || rows < 2 || cols > 16 || rows > 16) return null;
    return v.length === 2 + 2 * cols * rows ? { cols, rows, pts: v.slice(2) } : null;
  }

  function identityMesh(cols, rows) {
    const pts = [];
    for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) pts.push(round4(i / (cols - 1)), round4(j / (rows - 1)));
    return { cols, rows, pts };
  }

  function parseMasks(v) {
    const out = [];
    if (!Array.isArray(v) || !v.every(finite)) return out;
    for (let i = 0; i < v.length;) {
      const n = v[i];
      if (!Number.isInteger(n) || n < 3 || i + 1 + 2 * n > v.length) return [];
      out.push(v.slice(i + 1, i + 1 + 2 * n));
      i += 1 + 2 * n;
    }
    return out;
  }

  /** Every output of the venue, from the show message (an older engine tells only the first one's corners). */
  function parseOutputs(msg) {
    const list = Array.isArray(msg.mapping_outputs) ? msg.mapping_outputs : [];
    const outputs = list.filter((o) => o && typeof o.name === "string" && validCorners(o.corners)).map((o) => ({
      name: o.name, corners: o.corners.map(Number), mesh: parseMesh(o.mesh), masks: parseMasks(o.masks),
    }));
    if (!outputs.length && validCorners(msg.mapping_corners)) {
      const name = typeof msg.mapping_name === "string" ? msg.mapping_name : "";
      outputs.push({ name, corners: msg.mapping_corners.map(Number), mesh: null, masks: [] });
    }
    return outputs;
  }

  // The values as the mapping command takes them (and the history keeps them).
  const meshValue = (m) => (m ? [m.cols, m.rows, ...m.pts.map(round4)] : []);
  const masksValue = (list) => list.flatMap((p) => [p.length / 2, ...p.map(round4)]);

  function valueOf(key) {
    if (key === "corners") return mapping.corners.map(round4);
    return key === "mesh" ? meshValue(mapping.mesh) : masksValue(mapping.masks);
  }

  function setValue(key, value) {
    if (key === "corners") mapping.corners = value.slice();
    else if (key === "mesh") mapping.mesh = parseMesh(value);
    else mapping.masks = parseMasks(value);
  }

  /* The corner pin: H takes the unit square onto the corners (Heckbert's square-to-quad, as engine/render/venue.py),
     a row-major 3x3 with H[8] = 1; null for a degenerate quad. */
  function homography(c) {
    const [x0, y0, x1, y1, x2, y2, x3, y3] = c;
    const sx = x0 - x1 + x2 - x3;
    const sy = y0 - y1 + y2 - y3;
    let g = 0;
    let k = 0;
    if (Math.abs(sx) > 1e-9 || Math.abs(sy) > 1e-9) {
      const dx1 = x1 - x2, dx2 = x3 - x2, dy1 = y1 - y2, dy2 = y3 - y2;
      const den = dx1 * dy2 - dx2 * dy1;
      if (Math.abs(den) < 1e-12) return null;
      g = (sx * dy2 - dx2 * sy) / den;
      k = (dx1 * sy - sx * dy1) / den;
    }
    return [x1 - x0 + g * x1, x3 - x0 + k * x3, x0, y1 - y0 + g * y1, y3 - y0 + k * y3, y0, g, k, 1];
  }

  function applyH(m, x, y) {
    const w = m[6] * x + m[7] * y + m[8];
    return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
  }

  function invert3(m) {
    const [a, b, c, d, e, f, g, k, i] = m;
    const A = e * i - f * k, B = f * g - d * i, C = d * k - e * g;
    const det = a * A + b * B + c * C;
    if (Math.abs(det) < 1e-12) return null;
    return [A / det, (c * k - b * i) / det, (b * f - c * e) / det,
      B / det, (a * i - c * g) / det, (c * d - a * f) / det,
      C / det, (b * g - a * k) / det, (a * e - b * d) / det];
  }

  /* A handle's target: {key: "corners" | "mesh" | "masks", i: the corner, point or vertex (-1: a whole mask), m}. */
  function targetOf(el) {
    if (el.dataset.corner !== undefined) return { key: "corners", i: Number(el.dataset.corner) };
    if (el.dataset.point !== undefined) return { key: "mesh", i: Number(el.dataset.point) };
    return { key: "masks", m: Number(el.dataset.mask), i: el.dataset.vertex === undefined ? -1 : Number(el.dataset.vertex) };
  }

  /** Where a target shows, in output coordinates. */
  function posOf(t) {
    if (t.key === "corners") return [mapping.corners[2 * t.i], mapping.corners[2 * t.i + 1]];
    if (t.key === "mesh") return applyH(mapping.H, mapping.mesh.pts[2 * t.i], mapping.mesh.pts[2 * t.i + 1]);
    const p = mapping.masks[t.m];
    return [p[2 * t.i], p[2 * t.i + 1]];
  }

  /** Put a target at output point (x, y), kept on the output; a mesh point goes through H's inverse. */
  function moveTo(t, x, y) {
    x = clamp(x, 0, 1);
    y = clamp(y, 0, 1);
    let p = mapping.corners;
    if (t.key === "mesh") {
      const inv = mapping.H && invert3(mapping.H);
      if (!inv) return;
      [x, y] = applyH(inv, x, y);
      x = clamp(x, 0, 1);
      y = clamp(y, 0, 1);
      p = mapping.mesh.pts;
    } else if (t.key === "masks") {
      p = mapping.masks[t.m];
    }
    p[2 * t.i] = round4(x);
    p[2 * t.i + 1] = round4(y);
  }

  /** A whole mask moved by (dx, dy) from its vertices ``from``, as far as it stays on the output. */
  function shiftMask(m, from, dx, dy) {
    const xs = from.filter((_, k) => k % 2 === 0);
    const ys = from.filter((_, k) => k % 2 === 1);
    dx = clamp(dx, Math.min(0, -Math.min(...xs)), Math.max(0, 1 - Math.max(...xs)));
    dy = clamp(dy, Math.min(0, -Math.min(...ys)), Math.max(0, 1 - Math.max(...ys)));
    mapping.masks[m] = from.map((v, k) => round4(v + (k % 2 === 0 ? dx : dy)));
  }

  /** The handles and polygons that depend on the mesh's size and the masks' vertex counts, made when those change. */
  function buildHandles() {
    const built = [mapping.mode, mapping.mesh ? mapping.mesh.cols + "x" + mapping.mesh.rows : "",
      mapping.masks.map((p) => p.length / 2).join(",")].join("|");
    if (built === mapping.built) return;
    mapping.built = built;
    for (const el of mapping.extra) el.remove();
    mapping.extra = [];
    const add = (el) => { mapOverlay.append(el); mapping.extra.push(el); };
    if (mapping.mode === "mesh" && mapping.mesh) {
      const { cols, rows } = mapping.mesh;
      for (let k = 0; k < cols * rows; k++) {
        add(h("button", { class: "map-handle map-point", type: "button", "data-point": k,
          "aria-label": "Mesh point, column " + (k % cols + 1) + " of " + cols + ", row " + (Math.floor(k / cols) + 1) + " of " + rows }));
      }
    }
    maskLayer.replaceChildren(...mapping.masks.map((_, m) => svg("polygon", { class: "map-mask", "data-mask": m })));
    if (mapping.mode === "masks") {
      mapping.masks.forEach((p, m) => {
        for (let k = 0; k < p.length / 2; k++) {
          add(h("button", { class: "map-handle map-vertex", type: "button", "data-mask": m, "data-vertex": k,
            "aria-label": "Mask " + (m + 1) + ", vertex " + (k + 1) + " (Delete removes it)" }));
        }
      });
    }
  }

  const at = (el, x, y) => {
    el.style.left = x * 100 + "%";
    el.style.top = y * 100 + "%";
  };
  const pointList = (flat) => flat.map((v, k) => (k % 2 ? "," : " ") + v).join("").trim();

  function placeHandles() {
    const c = mapping.corners;
    if (!c) return;
    buildHandles();
    mapping.H = homography(c);
    mapOverlay.dataset.mode = mapping.mode;
    mapHandles.forEach((el, i) => {
      el.hidden = mapping.mode !== "corners";
      at(el, c[2 * i], c[2 * i + 1]);
    });
    mapQuad.setAttribute("points", pointList(c));
    let lines = "";
    const mesh = mapping.mesh;
    if (mapping.mode === "mesh" && mesh && mapping.H) {
      const shown = [];
      for (let k = 0; k < mesh.cols * mesh.rows; k++) shown.push(applyH(mapping.H, mesh.pts[2 * k], mesh.pts[2 * k + 1]));
      const seg = (a, b) => "M" + shown[a][0].toFixed(5) + " " + shown[a][1].toFixed(5) + "L" + shown[b][0].toFixed(5) + " " + shown[b][1].toFixed(5);
      for (let k = 0; k < shown.length; k++) {
        if (k % mesh.cols < mesh.cols - 1) lines += seg(k, k + 1);
        if (k + mesh.cols < shown.length) lines += seg(k, k + mesh.cols);
      }
      for (const el of mapping.extra) if (el.dataset.point !== undefined) at(el, ...shown[Number(el.dataset.point)]);
    }
    meshLines.setAttribute("d", lines);
    Array.from(maskLayer.children).forEach((el, m) => {
      el.setAttribute("points", pointList(mapping.masks[m]));
      el.classList.toggle("selected", m === mapping.selected);
    });
    for (const el of mapping.extra) {
      if (el.dataset.vertex === undefined) continue;
      const m = Number(el.dataset.mask);
      const k = Number(el.dataset.vertex);
      at(el, mapping.masks[m][2 * k], mapping.masks[m][2 * k + 1]);
      el.classList.toggle("selected", m === mapping.selected);
    }
    const masksMode = mapping.mode === "masks";
    meshSize.hidden = mapping.mode !== "mesh";
    btnMaskAdd.hidden = btnMaskDelete.hidden = !masksMode;
    btnMaskDelete.disabled = mapping.selected < 0;
    setText($("map-info"), mapping.on ? mapping.name : "");
  }

  function fillMeshSizes() {
    const current = mapping.mesh ? mapping.mesh.cols + "x" + mapping.mesh.rows : "";
    const sizes = ["", ...MESH_SIZES];
    if (current && !sizes.includes(current)) sizes.push(current);
    if (Array.from(meshSize.options).map((o) => o.value).join(" ") !== sizes.join(" ")) {
      meshSize.replaceChildren(...sizes.map((s) => h("option", { value: s, text: s ? s.replace("x", " × ") : "off" })));
    }
    meshSize.value = current;
  }

  function fillOutputs() {
    const names = mapping.outputs.map((o) => o.name);
    if (Array.from(mapOutput.options).map((o) => o.value).join("\n") !== names.join("\n")) {
      mapOutput.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    }
    mapOutput.hidden = names.length < 2;
    mapOutput.value = mapping.name;
  }

  /** The selected output's geometry as the engine last told it. */
  function loadSelected() {
    const o = mapping.outputs.find((x) => x.name === mapping.name) || mapping.outputs[0];
    mapping.name = o.name;
    mapping.corners = o.corners.slice();
    mapping.mesh = o.mesh ? { cols: o.mesh.cols, rows: o.mesh.rows, pts: o.mesh.pts.slice() } : null;
    mapping.masks = o.masks.map((p) => p.slice());
    if (mapping.selected >= mapping.masks.length) mapping.selected = -1;
    fillOutputs();
    fillMeshSizes();
  }

  function setMapOn(on) {
    mapping.on = on && !!mapping.corners;
    btnMap.setAttribute("aria-pressed", mapping.on ? "true" : "false");
    mapOverlay.hidden = !mapping.on;
    mapTools.hidden = !mapping.on;
    previewWrap.classList.toggle("mapping", mapping.on);
    placeHandles();
  }

  function setMode(mode) {
    mapping.mode = mode;
    modeButtons.forEach((b) => b.setAttribute("aria-pressed", b.dataset.mode === mode ? "true" : "false"));
    placeHandles();
  }

  function showMapping(msg) {
    btnGrid.setAttribute("aria-pressed", msg.mapping_grid ? "true" : "false");
    const outputs = parseOutputs(msg);
    btnMap.disabled = !outputs.length;
    if (!outputs.length) {
      Object.assign(mapping, { outputs: [], corners: null, mesh: null, masks: [], history: [], seen: "" });
      btnUndo.disabled = true;
      if (mapping.on) setMapOn(false);
      return;
    }
    if (mapping.drag || performance.now() - mapping.touched < ECHO_GUARD_MS) return;
    // Every show message carries the venue: take it only when it changed, or when this page edited since.
    const seen = JSON.stringify(outputs);
    if (seen === mapping.seen) return;
    mapping.seen = seen;
    mapping.outputs = outputs;
    loadSelected();
    placeHandles();
  }

  function sendMapping(name, key, value) {
    clearTimeout(mapping.timer);
    mapping.timer = 0;
    mapping.queued = null;
    mapping.last = performance.now();
    command("mapping", { name, key, value });
  }

  /** Send at most one mapping command per MAP_EVERY_MS; ``value()`` is called when it goes, so it is the newest. */
  function queueMapping(key, value) {
    mapping.queued = { name: mapping.name, key, value };
    if (mapping.timer) return;
    const fire = () => {
      const q = mapping.queued;
      const v = q && q.value();
      if (v) sendMapping(q.name, q.key, v);
    };
    const wait = mapping.last + MAP_EVERY_MS - performance.now();
    if (wait <= 0) fire();
    else mapping.timer = setTimeout(fire, wait);
  }

  /** While a target moves: a mesh point alone (key "point"), else the whole value of its key. */
  function sendLive(t) {
    if (t.key !== "mesh") {
      queueMapping(t.key, () => valueOf(t.key));
      return;
    }
    const i = t.i;
    queueMapping("point", () => (mapping.mesh ? [i, round4(mapping.mesh.pts[2 * i]), round4(mapping.mesh.pts[2 * i + 1])] : null));
  }

  function remember(name, key, value) {
    mapping.history.push({ name, key, value });
    if (mapping.history.length > MAP_HISTORY) mapping.history.shift();
    btnUndo.disabled = false;
  }

  /** This page changed the selected output's ``key``: show it, keep the echo off it, send it. */
  function edited(key, before, live) {
    remember(mapping.name, key, before);
    mapping.touched = performance.now();
    mapping.seen = "";
    placeHandles();
    if (live) sendLive(live);
    else sendMapping(mapping.name, key, valueOf(key));
  }

  function fits(masks) {
    if (masksValue(masks).length <= MAP_MOST) return true;
    toast("Too many mask vertices for one edit from this page (" + MAP_MOST + " numbers): edit the venue file", "local");
    return false;
  }

  mapOverlay.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !mapping.corners || mapping.drag) return;
    const el = e.target.closest(".map-handle, .map-mask");
    if (!el) {
      if (mapping.selected >= 0) {
        mapping.selected = -1;
        placeHandles();
      }
      return;
    }
    const t = targetOf(el);
    if (t.key === "mesh" && !mapping.H) return;
    e.preventDefault();
    try { el.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
    if (t.key === "masks") mapping.selected = t.m;
    // A target moves by the pointer's travel, so grabbing a handle off its centre does not make it jump.
    mapping.drag = { t, el, name: mapping.name, id: e.pointerId, x: e.clientX, y: e.clientY, before: valueOf(t.key),
      from: t.i < 0 ? mapping.masks[t.m].slice() : posOf(t) };
    el.classList.add("active");
    placeHandles();
  });
  mapOverlay.addEventListener("pointermove", (e) => {
    const d = mapping.drag;
    if (!d || d.id !== e.pointerId) return;
    const r = mapOverlay.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return;
    const dx = (e.clientX - d.x) / r.width;
    const dy = (e.clientY - d.y) / r.height;
    if (d.t.i < 0) shiftMask(d.t.m, d.from, dx, dy);
    else moveTo(d.t, d.from[0] + dx, d.from[1] + dy);
    mapping.touched = performance.now();
    mapping.seen = "";
    placeHandles();
    sendLive(d.t);
  });
  const endDrag = (e) => {
    const d = mapping.drag;
    if (!d || d.id !== e.pointerId) return;
    mapping.drag = null;
    mapping.touched = performance.now();
    d.el.classList.remove("active");
    const now = valueOf(d.t.key);
    if (JSON.stringify(now) !== JSON.stringify(d.before)) {
      remember(d.name, d.t.key, d.before);
      sendMapping(d.name, d.t.key, now);
    }
  };
  mapOverlay.addEventListener("pointerup", endDrag);
  mapOverlay.addEventListener("pointercancel", endDrag);
  mapOverlay.addEventListener("lostpointercapture", endDrag);
  mapOverlay.addEventListener("keydown", (e) => {
    const el = e.target.closest(".map-handle");
    if (!el || !mapping.corners || mapping.drag) return;
    const t = targetOf(el);
    if (t.key === "mesh" && !mapping.H) return;
    if ((e.key === "Delete" || e.key === "Backspace") && t.key === "masks") {
      e.preventDefault();
      const before = valueOf("masks");
      const p = mapping.masks[t.m];
      if (p.length > 6) p.splice(2 * t.i, 2);  // a mask keeps 3 vertices; the Delete mask button removes it
      else mapping.masks.splice(t.m, 1);
      mapping.selected = -1;
      edited("masks", before);
      return;
    }
    const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
    if (!step) return;
    e.preventDefault();
    const f = e.shiftKey ? 0.01 : 0.001;
    const before = valueOf(t.key);
    const p = posOf(t);
    moveTo(t, p[0] + step[0] * f, p[1] + step[1] * f);
    edited(t.key, before, t);
  });
  // A double-click on a mask adds a vertex where the click is, on the mask's edge nearest to it.
  maskLayer.addEventListener("dblclick", (e) => {
    const el = e.target.closest(".map-mask");
    if (!el || mapping.mode !== "masks") return;
    const m = Number(el.dataset.mask);
    const p = mapping.masks[m];
    if (!p || p.length / 2 >= MASK_VERTICES_MAX) return;
    const r = mapOverlay.getBoundingClientRect();
    const x = (e.clientX - r.left) / r.width;
    const y = (e.clientY - r.top) / r.height;
    let best = 0;
    let bestD = Infinity;
    const n = p.length / 2;
    for (let k = 0; k < n; k++) {
      // Distance in pixels from the click to edge k (vertex k to k + 1).
      const ax = p[2 * k] * r.width, ay = p[2 * k + 1] * r.height;
      const bx = p[2 * ((k + 1) % n)] * r.width, by = p[2 * ((k + 1) % n) + 1] * r.height;
      const px = x * r.width, py = y * r.height;
      const len = (bx - ax) ** 2 + (by - ay) ** 2;
      const u = len > 0 ? clamp(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len, 0, 1) : 0;
      const dist = Math.hypot(ax + u * (bx - ax) - px, ay + u * (by - ay) - py);
      if (dist < bestD) {
        bestD = dist;
        best = k;
      }
    }
    const before = valueOf("masks");
    const next = mapping.masks.map((q) => q.slice());
    next[m].splice(2 * best + 2, 0, round4(clamp(x, 0, 1)), round4(clamp(y, 0, 1)));
    if (!fits(next)) return;
    mapping.masks = next;
    mapping.selected = m;
    edited("masks", before);
  });

  btnMap.addEventListener("click", () => setMapOn(!mapping.on));
  btnGrid.addEventListener("click", () => command("grid"));
  modeButtons.forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  mapOutput.addEventListener("change", () => {
    if (mapping.drag) return;
    mapping.name = mapOutput.value;
    mapping.selected = -1;
    loadSelected();
    placeHandles();
  });
  meshSize.addEventListener("change", () => {
    if (mapping.drag || !mapping.corners) return;
    const m = /^(\d+)x(\d+)$/.exec(meshSize.value);
    const before = valueOf("mesh");
    mapping.mesh = m ? identityMesh(Number(m[1]), Number(m[2])) : null;
    remember(mapping.name, "mesh", before);
    mapping.touched = performance.now();
    mapping.seen = "";
    fillMeshSizes();
    placeHandles();
    sendMapping(mapping.name, "mesh", m ? [Number(m[1]), Number(m[2])] : []);
  });
  btnMaskAdd.addEventListener("click", () => {
    if (mapping.drag || !mapping.corners) return;
    if (mapping.masks.length >= MASKS_MAX) {
      toast("At most " + MASKS_MAX + " masks per output", "local");
      return;
    }
    const next = [...mapping.masks.map((q) => q.slice()), NEW_MASK.slice()];
    if (!fits(next)) return;
    const before = valueOf("masks");
    mapping.masks = next;
    mapping.selected = next.length - 1;
    edited("masks", before);
  });
  btnMaskDelete.addEventListener("click", () => {
    if (mapping.drag || mapping.selected < 0 || mapping.selected >= mapping.masks.length) return;
    const before = valueOf("masks");
    mapping.masks.splice(mapping.selected, 1);
    mapping.selected = -1;
    edited("masks", before);
  });
  btnUndo.addEventListener("click", () => {
    if (mapping.drag || !mapping.history.length) return;
    const last = mapping.history.pop();
    btnUndo.disabled = mapping.history.length === 0;
    if (last.name !== mapping.name && mapping.outputs.some((o) => o.name === last.name)) {
      mapping.name = last.name;
      mapping.selected = -1;
      loadSelected();
    }
    if (mapping.on && mapping.mode !== MODE_OF_KEY[last.key]) setMode(MODE_OF_KEY[last.key]);
    setValue(last.key, last.value);
    if (mapping.selected >= mapping.masks.length) mapping.selected = -1;
    mapping.touched = performance.now();
    mapping.seen = "";
    fillMeshSizes();
    placeHandles();
    sendMapping(last.name, last.key, last.value);
  });

  /* The dream layer's mix: a slider like a parameter's (throttled, and the engine's echo does not fight a drag). */
  // touched starts at -Infinity: performance.now() counts from the page's load, so 0 would ignore the engine for
  // the page's first ECHO_GUARD_MS, and a change in that window would never be shown (nothing re-sends it).
  const dreamMix = $("dream-mix");
  const dream = { dragging: false, touched: -Infinity, timer: 0, last: 0, value: 0 };

  function showDream(msg) {
    const mix = clamp(num(msg.dream_mix), 0, 1);
    const fps = num(msg.dream_fps);
    setText($("dream-fps"), mix > 0 ? (fps > 0 ? fps.toFixed(1) + " fps" : "no frames") : "off");
    if (dream.dragging || performance.now() - dream.touched < ECHO_GUARD_MS) return;
    dreamMix.value = String(mix);
    setText($("dream-mix-out"), mix.toFixed(2));
  }

  function sendDream() {
    dream.timer = 0;
    dream.last = performance.now();
    command("dream_mix", { value: dream.value });
  }

  dreamMix.addEventListener("input", () => {
    dream.touched = performance.now();
    dream.value = round4(Number(dreamMix.value));
    setText($("dream-mix-out"), dream.value.toFixed(2));
    if (dream.timer) return;
    const wait = dream.last + PARAM_EVERY_MS - performance.now();
    if (wait <= 0) sendDream();
    else dream.timer = setTimeout(sendDream, wait);
  });
  dreamMix.addEventListener("pointerdown", () => { dream.dragging = true; });
  const endDreamDrag = () => {
    if (!dream.dragging) return;
    dream.dragging = false;
    dream.touched = performance.now();
  };
  window.addEventListener("pointerup", endDreamDrag);
  window.addEventListener("pointercancel", endDreamDrag);
  $("dream-learn").addEventListener("click", () => {
    const target = { action: "dream_mix" };
    send({ type: "midi_learn", target: learningMatches(target) ? null : target });
  });

  $("next").addEventListener("click", () => command("next"));
  btnBlackout.addEventListener("click", () => command("blackout"));
  btnFreeze.addEventListener("click", () => command("freeze"));
  btnHud.addEventListener("click", () => command("hud"));

  /* ---------- tempo ---------- */
  const beatEl = $("beat");
  const barDots = Array.from(document.querySelectorAll(".bar-dots span"));
  let lastBeats = null;
  let beatTimer = 0;

  function onTempo(msg) {
    const bpm = num(msg.bpm);
    setText($("bpm"), bpm > 0 ? bpm.toFixed(1) : "—");
    $("bpm-input").placeholder = bpm > 0 ? bpm.toFixed(1) : "BPM";
    setText($("bpm-locked"), msg.locked ? "locked" : "");
    document.querySelector(".area-tempo").classList.toggle("is-locked", !!msg.locked);

    const beats = num(msg.beats, 0);
    if (lastBeats !== null && beats > lastBeats) {
      beatEl.classList.add("on");
      clearTimeout(beatTimer);
      beatTimer = setTimeout(() => beatEl.classList.remove("on"), BEAT_FLASH_MS);
    }
    lastBeats = beats;
    beatEl.setAttribute("data-beats", String(beats));

    const bar = num(msg.bar_beat, 0);
    setText($("bar-beat"), bar >= 1 && bar <= 4 ? String(bar) : "");
    for (const dot of barDots) dot.classList.toggle("on", Number(dot.dataset.n) === bar);

    $("confidence-bar").style.width = Math.round(clamp(num(msg.confidence), 0, 1) * 100) + "%";
    setText($("tempo-source"), msg.source && msg.source !== "none" ? "source: " + msg.source : "no source");
    setText($("tempo-audio"), typeof msg.audio === "string" && msg.audio ? msg.audio : "—");
  }

  const tapBtn = $("tap");
  // Taps are timing: send on pointerdown (no click delay); keyboard activation arrives as a bare click.
  tapBtn.addEventListener("pointerdown", (e) => {
    if (e.button === 0) command("tap");
  });
  tapBtn.addEventListener("click", (e) => {
    if (e.detail === 0) command("tap");
  });
  document.addEventListener("keydown", (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    if ((e.key === "t" || e.key === "T") && !isTyping(document.activeElement)) {
      e.preventDefault();
      command("tap");
      tapBtn.classList.add("flash");
      setTimeout(() => tapBtn.classList.remove("flash"), BEAT_FLASH_MS);
    }
  });

  function lockBpm() {
    const input = $("bpm-input");
    const v = Number(input.value);
    if (input.value === "" || !Number.isFinite(v) || v < 20 || v > 300) {
      toast("BPM must be a number from 20 to 300", "local");
      input.focus();
      return;
    }
    command("bpm", { value: v });
  }
  $("bpm-lock").addEventListener("click", lockBpm);
  $("bpm-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      lockBpm();
    }
  });
  $("bpm-unlock").addEventListener("click", () => command("bpm", { value: 0 }));
  $("resync").addEventListener("click", () => command("resync"));
  $("nudge-back").addEventListener("click", () => command("nudge", { value: -0.02 }));
  $("nudge-fwd").addEventListener("click", () => command("nudge", { value: 0.02 }));

  /* ---------- effects and transition pickers ---------- */
  const slotSelects = [0, 1, 2].map((i) => document.querySelector('select[data-slot="' + i + '"]'));
  const transitionSelect = $("transition");

  /** Make a select's options exactly [value, label] pairs (rebuilt only when they change). */
  function setOptions(select, pairs) {
    const key = JSON.stringify(pairs);
    if (select.dataset.options === key) return;
    const keep = select.value;
    select.replaceChildren(...pairs.map(([v, label]) => h("option", { value: v, text: label })));
    select.dataset.options = key;
    select.value = keep;
  }

  function selectValue(select, value) {
    if (document.activeElement === select) return;  // do not fight the VJ
    if (select.value !== value) select.value = value;
  }

  function syncEffectPickers() {
    const lib = state.shaders && Array.isArray(state.shaders.effects) ? state.shaders.effects : [];
    const chain = state.show && Array.isArray(state.show.effects) ? state.show.effects : [];
    const names = lib.map((s) => s.name);
    slotSelects.forEach((select, i) => {
      const cur = typeof chain[i] === "string" ? chain[i] : "";
      const pairs = [["", "— none —"]].concat(names.map((n) => [n, n]));
      if (cur && !names.includes(cur)) pairs.push([cur, cur]);
      setOptions(select, pairs);
      selectValue(select, cur);
    });
    const tlib = state.shaders && Array.isArray(state.shaders.transitions) ? state.shaders.transitions : [];
    const tnames = tlib.map((s) => s.name).filter((n) => n !== "crossfade");
    const tcur = state.show && typeof state.show.transition === "string" ? state.show.transition : "crossfade";
    const tpairs = [["crossfade", "crossfade"]].concat(tnames.map((n) => [n, n]));
    if (tcur !== "crossfade" && !tnames.includes(tcur)) tpairs.push([tcur, tcur]);
    setOptions(transitionSelect, tpairs);
    selectValue(transitionSelect, tcur);
  }

  slotSelects.forEach((select, i) => {
    select.addEventListener("change", () => command("set_effect", { slot: i, name: select.value }));
    // Back to what the show says once the VJ is done with it (a refused change must not linger).
    select.addEventListener("blur", syncEffectPickers);
  });
  transitionSelect.addEventListener("change", () => command("transition", { name: transitionSelect.value }));
  transitionSelect.addEventListener("blur", syncEffectPickers);
  $("clear-effects").addEventListener("click", () => command("clear_effects"));

  /* ---------- parameter controls ---------- */
  const paramsEl = $("params");
  const controls = new Map();      // "shader\0param" -> control record
  let paramsSig = "";
  let controlSeq = 0;

  function onShaders(msg) {
    const errors = Array.isArray(msg.errors) ? msg.errors : [];
    const list = $("shader-errors");
    if (errors.length === 0) {
      list.replaceChildren(h("li", { class: "none", text: "none" }));
    } else {
      list.replaceChildren(...errors.map((e) => {
        const where = String(e.file || "?") + (e.line === null || e.line === undefined ? "" : ":" + e.line);
        return h("li", {}, h("span", { class: "where", text: where }), " ", h("span", { class: "msg", text: e.message || "" }));
      }));
    }
    syncEffectPickers();
    renderParams();
  }

  /** The shaders whose parameters are shown: the chain, in order, then the current transition. */
  function shownShaders() {
    if (!state.shaders || !state.show) return [];
    const effects = Array.isArray(state.shaders.effects) ? state.shaders.effects : [];
    const transitions = Array.isArray(state.shaders.transitions) ? state.shaders.transitions : [];
    const out = [];
    const seen = new Set();
    for (const name of Array.isArray(state.show.effects) ? state.show.effects : []) {
      if (!name || seen.has(name)) continue;
      const s = effects.find((x) => x.name === name);
      if (s) {
        out.push({ kind: "effect", s });
        seen.add(name);
      }
    }
    const t = state.show.transition;
    if (t && t !== "crossfade" && !seen.has(t)) {
      const s = transitions.find((x) => x.name === t);
      if (s) out.push({ kind: "transition", s });
    }
    return out;
  }

  // A transition's progress is driven by the engine while it runs; a slider for it would do nothing.
  const controllable = (p, kind) => p && typeof p.name === "string" && !UNCONTROLLABLE.has(p.type)
    && !(kind === "transition" && p.name === "progress");

  function paramsSignature(shown) {
    return JSON.stringify(shown.map(({ kind, s }) => [kind, s.name,
      (Array.isArray(s.params) ? s.params : []).filter((p) => controllable(p, kind)).map((p) =>
        [p.name, p.type, p.label, p.default, p.min, p.max, p.values, p.labels])]));
  }

  function renderParams() {
    const shown = shownShaders();
    const sig = paramsSignature(shown);
    if (sig !== paramsSig) {
      paramsSig = sig;
      controls.clear();
      paramsEl.replaceChildren(...shown.map(({ kind, s }) => buildFieldset(kind, s)));
    }
    $("params-empty").hidden = shown.length > 0;
    for (const { s } of shown) {
      const fs = paramsEl.querySelector('fieldset[data-shader="' + CSS.escape(s.name) + '"]');
      if (fs) {
        const legend = fs.querySelector("legend");
        for (const el of [fs, legend]) {
          if (typeof s.description === "string" && s.description) el.title = s.description;
          else el.removeAttribute("title");
        }
        const err = fs.querySelector(".shader-error");
        err.hidden = !s.error;
        setText(err, s.error || "");
      }
      for (const p of Array.isArray(s.params) ? s.params : []) {
        const ctl = controls.get(s.name + "\0" + p.name);
        if (ctl && !ctl.busy()) ctl.set(p.value);
      }
    }
    markLearning();
  }

  function buildFieldset(kind, s) {
    const fs = h("fieldset", { class: "shader", "data-shader": s.name, "data-kind": kind });
    fs.append(h("legend", { text: s.name }));
    fs.append(h("p", { class: "shader-error", hidden: true }));
    const params = (Array.isArray(s.params) ? s.params : []).filter((p) => controllable(p, kind));
    for (const p of params) {
      const row = buildParam(s.name, p);
      if (row) fs.append(row);
    }
    if (params.length === 0) fs.append(h("p", { class: "empty", text: "No parameters." }));
    return fs;
  }

  /** Sends at most one param message per PARAM_EVERY_MS, and always the last value. */
  function paramSender(shader, param) {
    let last = -Infinity;
    let timer = 0;
    let value;
    const flush = () => {
      timer = 0;
      last = performance.now();
      command("param", { name: shader, key: param, value });
    };
    return (v) => {
      value = v;
      if (timer) return;
      const wait = last + PARAM_EVERY_MS - performance.now();
      if (wait <= 0) flush();
      else timer = setTimeout(flush, wait);
    };
  }

  function buildParam(shader, p) {
    const id = "param-" + (++controlSeq);
    const label = typeof p.label === "string" && p.label ? p.label : p.name;
    const sendValue = paramSender(shader, p.name);
    const data = { "data-shader": shader, "data-param": p.name };
    const ctl = { dragging: false, touched: -Infinity, el: null, set: () => {}, busy: null };
    ctl.busy = () => ctl.dragging || performance.now() - ctl.touched < ECHO_GUARD_MS;
    const changed = (v) => {
      ctl.touched = performance.now();
      sendValue(v);
    };
    let control;
    let readout = null;

    if (p.type === "float" || (p.type === "long" && !(Array.isArray(p.values) && p.values.length))) {
      const isLong = p.type === "long";
      const min = num(p.min, 0);
      let max = num(p.max, isLong ? Math.max(min + 10, num(p.value, 0)) : 1);
      if (max <= min) max = min + 1;
      const step = isLong ? 1 : (max - min) / 1000;
      control = h("input", Object.assign({ type: "range", id, min, max, step }, data));
      readout = h("output", { class: "readout", for: id });
      ctl.set = (v) => {
        const n = num(v, num(p.default, min));
        control.value = String(n);
        setText(readout, isLong ? String(Math.round(n)) : fmtNum(n));
      };
      control.addEventListener("input", () => {
        const n = isLong ? Math.round(Number(control.value)) : round4(Number(control.value));
        setText(readout, isLong ? String(n) : fmtNum(n));
        changed(n);
      });
      control.addEventListener("pointerdown", () => { ctl.dragging = true; });
    } else if (p.type === "long") {
      control = h("select", Object.assign({ id }, data));
      p.values.forEach((v, i) => {
        const l = Array.isArray(p.labels) && p.labels[i] !== undefined ? p.labels[i] : v;
        control.append(h("option", { value: String(v), text: l }));
      });
      ctl.set = (v) => {
        if (document.activeElement !== control && v !== null && v !== undefined) control.value = String(v);
      };
      control.addEventListener("change", () => changed(Number(control.value)));
    } else if (p.type === "bool") {
      control = h("input", Object.assign({ type: "checkbox", id }, data));
      ctl.set = (v) => { control.checked = v === true || (typeof v === "number" && v >= 0.5); };
      control.addEventListener("change", () => changed(control.checked ? 1 : 0));
    } else if (p.type === "event") {
      control = h("button", Object.assign({ type: "button", id, class: "btn btn-small btn-event", text: "Fire" }, data));
      control.addEventListener("click", () => sendValue(1));
    } else if (p.type === "color") {
      control = h("input", Object.assign({ type: "color", id }, data));
      let alpha = 1;
      ctl.set = (v) => {
        if (!Array.isArray(v)) return;
        alpha = num(v[3], 1);
        if (document.activeElement !== control) control.value = rgbToHex(v);
      };
      control.addEventListener("input", () => changed(hexToRgba(control.value, alpha)));
    } else if (p.type === "point2D") {
      const built = buildXY(p, data, label, changed, ctl);
      control = built.pad;
      readout = built.readout;
    } else {
      return null;  // a type this page does not know: leave it to the HUD/OSC
    }
    ctl.el = control;
    ctl.set(p.value);
    controls.set(shader + "\0" + p.name, ctl);

    const learn = h("button", {
      type: "button", class: "learn", "data-learn": p.name, title: "MIDI learn: " + shader + " › " + p.name, text: "L",
    });
    learn.addEventListener("click", () => {
      const target = { action: "param", shader, param: p.name };
      const on = learningMatches(target);
      send({ type: "midi_learn", target: on ? null : target });
    });
    const row = h("div", { class: "param param-" + p.type },
      h("label", { class: "param-label", for: p.type === "point2D" ? null : id, title: p.name, text: label }),
      control, readout || h("span", { class: "readout" }), learn);
    return row;
  }

  function rgbToHex(v) {
    return "#" + [0, 1, 2].map((i) => Math.round(clamp(num(v[i]), 0, 1) * 255).toString(16).padStart(2, "0")).join("");
  }

  function hexToRgba(hex, alpha) {
    const c = [1, 3, 5].map((i) => round4(parseInt(hex.slice(i, i + 2), 16) / 255));
    return c.concat([alpha]);
  }

  /** An XY pad for point2D: drag (or arrow keys) sets [x, y] within min..max, y up. */
  function buildXY(p, data, label, changed, ctl) {
    const pair = (v, d) => (Array.isArray(v) && v.length >= 2 ? [num(v[0], d), num(v[1], d)] : typeof v === "number" ? [v, v] : [d, d]);
    const min = pair(p.min, 0);
    const max = pair(p.max, 1);
    for (const i of [0, 1]) if (max[i] <= min[i]) max[i] = min[i] + 1;
    const dot = h("span", { class: "xy-dot" });
    const pad = h("div", Object.assign({
      class: "xy", tabindex: 0, role: "group", "aria-label": label + " (x, y)",
    }, data), h("span", { class: "xy-h" }), h("span", { class: "xy-v" }), dot);
    const readout = h("output", { class: "readout" });
    let cur = [(min[0] + max[0]) / 2, (min[1] + max[1]) / 2];

    const place = (v) => {
      cur = [clamp(v[0], min[0], max[0]), clamp(v[1], min[1], max[1])];
      const fx = (cur[0] - min[0]) / (max[0] - min[0]);
      const fy = (cur[1] - min[1]) / (max[1] - min[1]);
      dot.style.left = fx * 100 + "%";
      dot.style.top = (1 - fy) * 100 + "%";
      pad.style.setProperty("--x", fx * 100 + "%");
      pad.style.setProperty("--y", (1 - fy) * 100 + "%");
      setText(readout, fmtNum(cur[0]) + ", " + fmtNum(cur[1]));
    };
    ctl.set = (v) => { if (Array.isArray(v) && v.length >= 2) place([num(v[0]), num(v[1])]); };

    const fromPointer = (e) => {
      const r = pad.getBoundingClientRect();
      const fx = clamp((e.clientX - r.left) / r.width, 0, 1);
      const fy = clamp(1 - (e.clientY - r.top) / r.height, 0, 1);
      const v = [round4(min[0] + fx * (max[0] - min[0])), round4(min[1] + fy * (max[1] - min[1]))];
      place(v);
      changed(cur.slice());
    };
    pad.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      pad.focus();
      ctl.dragging = true;
      pad.classList.add("active");
      try { pad.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
      fromPointer(e);
    });
    pad.addEventListener("pointermove", (e) => { if (ctl.dragging) fromPointer(e); });
    const end = () => {
      ctl.dragging = false;
      ctl.touched = performance.now();
      pad.classList.remove("active");
    };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
    pad.addEventListener("lostpointercapture", end);
    pad.addEventListener("keydown", (e) => {
      const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
      if (!d) return;
      e.preventDefault();
      const f = e.shiftKey ? 0.1 : 0.01;
      place([cur[0] + d[0] * f * (max[0] - min[0]), cur[1] + d[1] * f * (max[1] - min[1])]);
      cur = [round4(cur[0]), round4(cur[1])];
      changed(cur.slice());
    });
    return { pad, readout };
  }

  // A drag that ends anywhere ends every range drag (pointerup may land outside the slider).
  const endDrags = () => {
    for (const ctl of controls.values()) {
      if (ctl.dragging && ctl.el && ctl.el.tagName === "INPUT") {
        ctl.dragging = false;
        ctl.touched = performance.now();
      }
    }
  };
  window.addEventListener("pointerup", endDrags);
  window.addEventListener("pointercancel", endDrags);

  /* ---------- scenes: whole looks saved as files, recalled with a blend ---------- */
  const SCENE_NAME = /^[\p{L}\p{N}_][\p{L}\p{N} _-]{0,39}$/u;  // as engine/scenes/scene.py check_name
  const sceneList = $("scene-list");
  const sceneName = $("scene-name");
  let scenesSig = "";

  function sceneNames() {
    const s = state.show;
    return s && Array.isArray(s.scenes) ? s.scenes.map((x) => x.name) : [];
  }

  function showScenes(msg) {
    const scenes = Array.isArray(msg.scenes) ? msg.scenes.filter((s) => s && typeof s.name === "string") : [];
    const current = typeof msg.scene === "string" ? msg.scene : "";
    setText($("scene-current"), current || "—");
    const sig = JSON.stringify([scenes, current]);
    if (sig === scenesSig) return;   // the show message comes ten times a second: rebuild on change only
    scenesSig = sig;
    fillList(sceneList, $("scene-empty"), scenes, (s) => makeScene(s, s.name === current));
    markLearning();
  }

  function makeScene(s, current) {
    const n = num(s.index);
    const recall = h("button", {
      type: "button", class: "btn scene-recall", "data-act": "recall", text: s.name, disabled: !!s.error,
      title: "Recall " + s.name + (n >= 1 && n <= 9 ? " (Shift+" + n + ")" : "") + (s.style ? " · style " + s.style : ""),
    });
    recall.addEventListener("click", () => command("scene", { name: s.name }));
    const learn = h("button", { type: "button", class: "learn", "data-learn-scene": s.name, "aria-pressed": "false",
      title: "MIDI learn: press a pad to recall " + s.name, text: "L" });
    learn.addEventListener("click", () => {
      const target = { action: "scene", name: s.name };
      send({ type: "midi_learn", target: learningMatches(target) ? null : target });
    });
    const del = h("button", { type: "button", class: "btn btn-small scene-delete", "data-act": "delete",
      title: "Delete the file of " + s.name, text: "✕" });
    confirmTwice(del, "✕", () => command("scene_delete", { name: s.name }));
    return h("li", { class: "scene" + (s.error ? " scene-bad" : ""), "data-scene": s.name,
                     "aria-current": current ? "true" : null },
      h("span", { class: "scene-index", text: String(n) }), recall, learn, del,
      s.error ? h("span", { class: "scene-error", text: s.error }) : null);
  }

  function saveScene() {
    const name = sceneName.value.trim();
    if (!SCENE_NAME.test(name)) {
      toast("A scene name is 1 to 40 letters, digits, spaces, _ or - (not starting with a space or -)", "local");
      sceneName.focus();
      return;
    }
    const btn = $("scene-save");
    if (sceneNames().includes(name) && !btn.classList.contains("armed")) {
      setText(btn, "Overwrite?");
      btn.classList.add("armed");
      setTimeout(() => { setText(btn, "Save"); btn.classList.remove("armed"); }, BAN_CONFIRM_MS);
      return;
    }
    setText(btn, "Save");
    btn.classList.remove("armed");
    // The style preset the generator uses now (not an unapplied edit of the form); "none" keeps "no preset".
    const style = serverValue("style_preset");
    const extra = { name };
    if (state.generation) extra.key = typeof style === "string" && style ? style : "none";
    send({ type: "command", action: "scene_save", ...extra }, {
      onAck: () => toast("Scene " + name + " saved", "ok"),
    });
  }
  $("scene-save-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveScene();
  });
  // Shift+1..9 recall scenes 1..9, as on the show machine (by key position: any keyboard layout).
  document.addEventListener("keydown", (e) => {
    if (e.repeat || !e.shiftKey || e.ctrlKey || e.metaKey || e.altKey || isTyping(document.activeElement)) return;
    const m = /^Digit([1-9])$/.exec(e.code);
    if (!m) return;
    e.preventDefault();
    command("scene", { value: Number(m[1]) });
  });

  /* ---------- MIDI ---------- */
  function sameTarget(a, b) {
    if (!a || !b || a.action !== b.action) return false;
    if (a.action === "scene") return a.name === b.name;
    if (a.action !== "param") return true;
    return a.shader === b.shader && a.param === b.param;
  }

  function learningMatches(target) {
    return !!(state.midi && state.midi.learning && sameTarget(state.midi.learning, target));
  }

  function describeTarget(t) {
    if (!t || typeof t !== "object") return "";
    if (t.action === "param") {
      let s = String(t.shader || "?") + " › " + String(t.param || "?");
      if (typeof t.low === "number" && typeof t.high === "number") s += " (" + fmtNum(t.low) + "…" + fmtNum(t.high) + ")";
      return s;
    }
    if (t.action === "scene") return "scene › " + String(t.name || "?");
    return String(t.action || "?");
  }

  function describeControl(c) {
    if (!c || typeof c !== "object") return "?";
    const kind = c.kind === "cc" ? "CC" : c.kind === "note" ? "Note" : String(c.kind || "?");
    // Channels travel 0-based (as mido has them); players count them from 1.
    return kind + " " + num(c.number) + " · ch " + (num(c.channel) + 1);
  }

  function markLearning() {
    for (const btn of paramsEl.querySelectorAll("button[data-learn]")) {
      const fs = btn.closest("fieldset");
      const on = !!fs && learningMatches({ action: "param", shader: fs.dataset.shader, param: btn.dataset.learn });
      btn.classList.toggle("learning", on);
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    }
    const l = state.midi ? state.midi.learning : null;
    $("midi-learn-trigger").classList.toggle("learning", !!l && TRIGGERS.includes(l.action));
    const dreamOn = learningMatches({ action: "dream_mix" });
    $("dream-learn").classList.toggle("learning", dreamOn);
    $("dream-learn").setAttribute("aria-pressed", dreamOn ? "true" : "false");
    for (const btn of sceneList.querySelectorAll("button[data-learn-scene]")) {
      const on = learningMatches({ action: "scene", name: btn.dataset.learnScene });
      btn.classList.toggle("learning", on);
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  function onMidi(msg) {
    const ports = Array.isArray(msg.ports) ? msg.ports.filter((p) => typeof p === "string") : [];
    setText($("midi-status"), msg.available ? (ports.length ? ports.join(", ") : "MIDI input") : "no MIDI input");
    $("midi-status").classList.toggle("ok", !!msg.available);
    const learning = msg.learning && typeof msg.learning === "object" ? msg.learning : null;
    setText($("midi-learning"), learning ? "Move a control…" : "");
    setText($("midi-learning-target"), learning ? describeTarget(learning) : "");
    $("midi-cancel").disabled = !learning;
    document.querySelector(".area-midi").classList.toggle("is-learning", !!learning);
    const mappings = Array.isArray(msg.mappings) ? msg.mappings : [];
    fillList($("midi-mappings"), $("midi-mappings-empty"), mappings, (m) => {
      const forget = h("button", { type: "button", class: "btn btn-small", "data-act": "forget", text: "Forget" });
      forget.addEventListener("click", () => {
        const c = m.control || {};
        send({ type: "midi_forget", control: { kind: c.kind, channel: c.channel, number: c.number } });
      });
      return h("li", {},
        h("span", { class: "ctl", text: describeControl(m.control) }),
        h("span", { class: "arrow", text: "→" }),
        h("span", { class: "tgt", text: describeTarget(m.target), title: describeTarget(m.target) }),
        forget);
    });
    markLearning();
  }

  $("midi-learn-trigger").addEventListener("click", () => {
    const action = $("midi-trigger").value;
    if (TRIGGERS.includes(action)) send({ type: "midi_learn", target: { action } });
  });
  $("midi-cancel").addEventListener("click", () => send({ type: "midi_learn", target: null }));

  /* ---------- queue: moderation, line, generating ---------- */
  const pendingList = $("pending");
  const lineList = $("line");
  const itemOf = new WeakMap();    // li -> latest queue item (the id keeps its JSON type)
  let queueAt = 0;

  /** Keyed update of a list: existing children (and what the VJ typed in them) survive, and stay in
      place when their order does not change, so a focused field keeps its focus. */
  function reconcile(list, attr, items, make, update) {
    const keys = new Set(items.map((it) => String(it.id)));
    const old = new Map();
    for (const el of Array.from(list.children)) {
      const key = el.getAttribute(attr);
      if (key === null || !keys.has(key) || old.has(key)) el.remove();
      else old.set(key, el);
    }
    let prev = null;
    items.forEach((item, i) => {
      const key = String(item.id);
      let el = old.get(key);
      if (el) old.delete(key);
      else el = make(item);
      itemOf.set(el, item);
      update(el, item, i, items.length);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (el !== want) list.insertBefore(el, want);
      prev = el;
    });
  }

  const validItems = (v) => (Array.isArray(v) ? v.filter((x) => x && (typeof x.id === "string" || typeof x.id === "number")) : []);

  function onQueue(msg) {
    queueAt = performance.now();
    const pending = validItems(msg.pending);
    const line = validItems(msg.line);
    const generating = validItems(msg.generating);

    reconcile(pendingList, "data-prompt-id", pending, makePending, updateItem);
    $("pending-empty").hidden = pending.length > 0;
    const badge = $("pending-count");
    setText(badge, pending.length);
    badge.setAttribute("data-count", String(pending.length));

    reconcile(lineList, "data-prompt-id", line, makeLineItem, updateLineItem);
    $("line-empty").hidden = line.length > 0;
    setText($("line-count"), line.length);

    fillList($("generating"), null, generating, (g) => {
      const li = h("li", { "data-id": String(g.id) },
        h("span", { class: "spinner", "aria-hidden": "true" }),
        h("span", { class: "text", text: g.text || "" }),
        h("span", { class: "age", "data-age": num(g.age) }));
      return li;
    });
    tickAges();
  }

  function updateItem(li, item) {
    setText(li.querySelector(".text"), item.text || "");
    li.querySelector(".age").setAttribute("data-age", String(num(item.age)));
    const client = li.querySelector(".client");
    if (client) {  // a short handle for the phone, never its id (whoever has the id can send as that phone)
      const from = typeof item.from === "string" ? item.from : "";
      setText(client, from ? "from " + from : "");
      client.title = from ? "Phone " + from + " (the same handle for all its prompts this show)" : "";
    }
    li.classList.remove("busy");
  }

  function tickAges() {
    const extra = (performance.now() - queueAt) / 1000;
    for (const el of document.querySelectorAll(".area-mod .age, .area-queue .age")) {
      setText(el, fmtAge(Number(el.getAttribute("data-age")) + extra));
    }
  }
  setInterval(tickAges, 1000);

  /** Send a queue action for an item; the item dims until the next queue message (or an error). */
  function itemAction(li, msg) {
    li.classList.add("busy");
    const ok = send(msg, { onError: () => li.classList.remove("busy") });
    if (!ok) li.classList.remove("busy");
    else setTimeout(() => li.classList.remove("busy"), BUSY_MS);  // never stuck if no queue message follows
  }

  function makePending(item) {
    const li = h("li", { class: "item", "data-prompt-id": String(item.id) });
    const approve = h("button", { type: "button", class: "btn btn-small btn-ok", "data-act": "approve", text: "Approve" });
    const reject = h("button", { type: "button", class: "btn btn-small btn-warn", "data-act": "reject", text: "Reject" });
    const ban = h("button", { type: "button", class: "btn btn-small btn-bad", "data-act": "ban", text: "Ban" });
    const banAddress = h("button", {
      type: "button", class: "btn btn-small btn-bad", "data-act": "ban-address", text: "Ban address",
      title: "Ban every phone on this phone's network address",
    });
    const addressWarning = h("p", {
      class: "ban-warning", role: "alert", hidden: true,
      text: "This bans every phone on that network address. A venue's Wi-Fi behind one NAT can share one " +
        "address among many phones: all of them would be banned. Click again to ban the address.",
    });
    const reason = h("input", {
      type: "text", class: "reason", maxlength: 200, placeholder: "Reason (optional), Enter to reject",
      "aria-label": "Reason (optional)", autocomplete: "off",
    });
    const cancel = h("button", { type: "button", class: "btn btn-small", text: "Cancel" });
    const rejectRow = h("div", { class: "reject-row", hidden: true }, reason, cancel);
    li.append(
      h("p", { class: "text" }),
      h("div", { class: "meta" }, h("span", { class: "age" }), h("span", { class: "client" })),
      h("div", { class: "actions" }, approve, reject, ban, banAddress),
      addressWarning,
      rejectRow);

    const id = () => itemOf.get(li).id;
    const closeReject = () => {
      rejectRow.hidden = true;
      reason.value = "";
      setText(reject, "Reject");
      reject.classList.remove("armed");
    };
    const doReject = () => {
      const msg = { type: "reject", id: id() };
      const r = reason.value.trim();
      if (r) msg.reason = r.slice(0, 200);
      closeReject();
      itemAction(li, msg);
    };
    approve.addEventListener("click", () => itemAction(li, { type: "approve", id: id() }));
    reject.addEventListener("click", () => {
      if (rejectRow.hidden) {
        rejectRow.hidden = false;
        setText(reject, "Confirm");
        reject.classList.add("armed");
        reason.focus();
      } else {
        doReject();
      }
    });
    reason.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        doReject();
      } else if (e.key === "Escape") {
        closeReject();
      }
    });
    cancel.addEventListener("click", closeReject);

    confirmTwice(ban, "Ban", () => itemAction(li, { type: "ban", id: id() }));
    confirmTwice(banAddress, "Ban address", () => itemAction(li, { type: "ban_address", id: id() }));
    // The warning shows while the button asks "Sure?", however it stops asking (acted or timed out).
    new MutationObserver(() => { addressWarning.hidden = !banAddress.classList.contains("armed"); })
      .observe(banAddress, { attributes: true, attributeFilter: ["class"] });
    return li;
  }

  function makeLineItem(item) {
    const li = h("li", { class: "item", "data-prompt-id": String(item.id), draggable: "true" });
    const up = h("button", { type: "button", class: "btn btn-icon", "data-act": "up", title: "Earlier", "aria-label": "Move up", text: "▲" });
    const down = h("button", { type: "button", class: "btn btn-icon", "data-act": "down", title: "Later", "aria-label": "Move down", text: "▼" });
    const remove = h("button", { type: "button", class: "btn btn-icon btn-bad", "data-act": "remove", title: "Take out of the line", "aria-label": "Remove", text: "✕" });
    li.append(
      h("span", { class: "pos" }),
      h("div", { class: "body" }, h("p", { class: "text" }), h("div", { class: "meta" }, h("span", { class: "age" }), h("span", { class: "client" }))),
      h("div", { class: "actions" }, up, down, remove));
    const here = () => Array.prototype.indexOf.call(lineList.children, li);
    up.addEventListener("click", () => itemAction(li, { type: "move", id: itemOf.get(li).id, to: here() - 1 }));
    down.addEventListener("click", () => itemAction(li, { type: "move", id: itemOf.get(li).id, to: here() + 1 }));
    remove.addEventListener("click", () => itemAction(li, { type: "remove", id: itemOf.get(li).id }));
    return li;
  }

  function updateLineItem(li, item, i, n) {
    updateItem(li, item);
    setText(li.querySelector(".pos"), i + 1);
    li.querySelector('[data-act="up"]').disabled = i === 0;
    li.querySelector('[data-act="down"]').disabled = i === n - 1;
  }

  // Drag-and-drop reordering of the line.
  let dragLi = null;
  const clearDrop = () => {
    for (const el of lineList.querySelectorAll(".drop-before, .drop-after")) el.classList.remove("drop-before", "drop-after");
  };
  const dropSpot = (e) => {
    const over = e.target instanceof Element ? e.target.closest("li[data-prompt-id]") : null;
    if (!over || over === dragLi || over.parentNode !== lineList) return null;
    const r = over.getBoundingClientRect();
    return { over, after: e.clientY > r.top + r.height / 2 };
  };
  lineList.addEventListener("dragstart", (e) => {
    const li = e.target instanceof Element ? e.target.closest("li[data-prompt-id]") : null;
    if (!li) return;
    dragLi = li;
    li.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", li.dataset.promptId);
  });
  lineList.addEventListener("dragover", (e) => {
    if (!dragLi) return;
    e.preventDefault();
    clearDrop();
    const spot = dropSpot(e);
    if (spot) spot.over.classList.add(spot.after ? "drop-after" : "drop-before");
  });
  lineList.addEventListener("drop", (e) => {
    if (!dragLi) return;
    e.preventDefault();
    const spot = dropSpot(e);
    clearDrop();
    if (!spot) return;
    const order = Array.from(lineList.children).filter((li) => li !== dragLi);
    const to = order.indexOf(spot.over) + (spot.after ? 1 : 0);
    const from = Array.prototype.indexOf.call(lineList.children, dragLi);
    if (to !== from) itemAction(dragLi, { type: "move", id: itemOf.get(dragLi).id, to });
  });
  lineList.addEventListener("dragend", () => {
    if (dragLi) dragLi.classList.remove("dragging");
    dragLi = null;
    clearDrop();
  });

  /* ---------- gallery ---------- */
  const galleryEl = $("gallery");

  function onGallery(msg) {
    const images = Array.isArray(msg.images) ? msg.images.filter((im) => im && (typeof im.id === "string" || typeof im.id === "number")) : [];
    reconcile(galleryEl, "data-image-id", images, makeFigure, (fig, im) => {
      const img = fig.querySelector("img");
      const url = typeof im.url === "string" ? im.url : "";
      if (img.getAttribute("src") !== url) img.setAttribute("src", url);
      img.alt = im.text || "";
      const cap = fig.querySelector("figcaption");
      setText(cap, im.text || "");
      cap.title = im.text || "";
      fig.classList.toggle("shown", !!im.shown);
    });
    $("gallery-empty").hidden = images.length > 0;
    setText($("gallery-count"), images.length);
    markOnAir();
  }

  function makeFigure(im) {
    const reshow = h("button", { type: "button", class: "btn btn-small", "data-act": "reshow", title: "Put it back on screen now", text: "Show" });
    const fig = h("figure", { class: "shot", "data-image-id": String(im.id) },
      h("div", { class: "shot-img" }, h("img", { loading: "lazy", decoding: "async", alt: "" })),
      h("figcaption", {}),
      reshow);
    reshow.addEventListener("click", () => {
      const id = itemOf.get(fig).id;
      send({ type: "reshow", image: id });
    });
    return fig;
  }

  function markOnAir() {
    const cur = state.show && state.show.current !== null && state.show.current !== undefined ? String(state.show.current) : null;
    for (const fig of galleryEl.children) fig.classList.toggle("on-air", fig.dataset.imageId === cur);
  }

  /* ---------- manual prompt ---------- */
  const manualText = $("manual-text");
  const manualSend = $("manual-send");

  function updateManualCount() {
    setText($("manual-count"), manualText.value.length + " / 500");
  }

  function sendManual() {
    const text = manualText.value.trim();
    if (!text) {
      manualText.focus();
      return;
    }
    send({ type: "prompt", text }, {
      onAck: () => {
        if (manualText.value.trim() === text) manualText.value = "";  // not if the VJ already typed the next one
        updateManualCount();
        toast("Prompt sent: it is generated next", "ok");
      },
    });
  }
  manualText.addEventListener("input", updateManualCount);
  manualText.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      sendManual();
    }
  });
  manualSend.addEventListener("click", sendManual);

  /* ---------- generation settings ---------- */
  const form = $("settings");
  const typed = new Map();         // select name -> Map(option value -> the value as the server sent it)
  const dirty = new Set();

  function field(name) {
    return form.elements.namedItem(name);
  }

  function serverValue(name) {
    const g = state.generation;
    return g && g.settings ? g.settings[name] : undefined;
  }

  /** What a field holds, typed like the setting (numbers as numbers, select values as sent). */
  function fieldValue(name) {
    const el = field(name);
    if (NUMBER_SETTINGS.includes(name)) return el.value === "" ? NaN : Number(el.value);
    if (SELECT_SETTINGS.includes(name)) {
      const m = typed.get(name);
      return m && m.has(el.value) ? m.get(el.value) : el.value;
    }
    return el.value;
  }

  const same = (a, b) => a === b || ((a === null || a === undefined || a === "") && (b === null || b === undefined || b === ""));

  function showField(name) {
    const el = field(name);
    const v = serverValue(name);
    const s = v === null || v === undefined ? "" : String(v);
    if (el.value !== s) el.value = s;
  }

  function setDirty(name, on) {
    if (on) dirty.add(name);
    else dirty.delete(name);
    const label = field(name).closest(".field");
    if (label) label.classList.toggle("dirty", on);
    $("settings-apply").classList.toggle("armed", dirty.size > 0);
  }

  function onGeneration(msg) {
    const choices = msg.choices && typeof msg.choices === "object" ? msg.choices : {};
    const settings = msg.settings && typeof msg.settings === "object" ? msg.settings : {};
    for (const name of SELECT_SETTINGS) {
      const list = Array.isArray(choices[name]) ? choices[name].slice() : [];
      const cur = settings[name];
      if (name === "style_preset") list.unshift("");
      if (cur !== null && cur !== undefined && !list.some((c) => same(c, cur))) list.push(cur);
      const m = new Map(list.map((c) => [c === null ? "" : String(c), c]));
      typed.set(name, m);
      setOptions(field(name), list.map((c) => [c === null ? "" : String(c), c === "" || c === null ? "(none)" : String(c)]));
    }
    const limits = msg.limits && typeof msg.limits === "object" ? msg.limits : {};
    for (const name of NUMBER_SETTINGS) {
      const el = field(name);
      const lim = limits[name];
      if (Array.isArray(lim) && lim.length === 2) {
        el.min = String(lim[0]);
        el.max = String(lim[1]);
        el.title = "from " + lim[0] + " to " + lim[1];
      }
    }
    for (const name of SETTINGS) if (!dirty.has(name)) showField(name);
    setText($("output-dir"), typeof msg.output_dir === "string" && msg.output_dir ? msg.output_dir : "—");
    $("output-dir").title = typeof msg.output_dir === "string" ? msg.output_dir : "";
  }

  form.addEventListener("input", (e) => {
    const name = e.target && e.target.name;
    if (SETTINGS.includes(name)) setDirty(name, !same(fieldValue(name), serverValue(name)));
  });
  form.addEventListener("change", (e) => {
    const name = e.target && e.target.name;
    if (SETTINGS.includes(name)) setDirty(name, !same(fieldValue(name), serverValue(name)));
  });
  // form-action 'none' blocks real submits; Enter in a field applies instead.
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    applySettings();
  });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target instanceof HTMLInputElement) {
      e.preventDefault();
      applySettings();
    }
  });
  $("settings-apply").addEventListener("click", applySettings);

  function applySettings() {
    const values = {};
    for (const name of SETTINGS) {
      const v = fieldValue(name);
      if (same(v, serverValue(name))) continue;
      const el = field(name);
      if (NUMBER_SETTINGS.includes(name) && (Number.isNaN(v) || !el.checkValidity())) {
        const lo = el.min !== "" ? el.min : "?";
        const hi = el.max !== "" ? el.max : "?";
        toast(name + " must be a number from " + lo + " to " + hi, "local");
        el.focus();
        return;
      }
      values[name] = v;
    }
    const names = Object.keys(values);
    if (names.length === 0) {
      for (const name of SETTINGS) setDirty(name, false);
      toast("Nothing to apply: the settings are as shown", "local");
      return;
    }
    send({ type: "settings", values }, {
      onAck: () => {
        // Accepted: take the values as the server's until its next generation message says more.
        if (state.generation && state.generation.settings) Object.assign(state.generation.settings, values);
        for (const name of names) {
          setDirty(name, false);
          showField(name);
        }
        toast("Settings applied to the next prompts", "ok");
      },
    });
  }

  /* ---------- backend ---------- */
  function onBackend(msg) {
    const status = ["ok", "degraded", "offline"].includes(msg.status) ? msg.status : "offline";
    const el = $("backend");
    el.setAttribute("data-status", status);
    setText(el, typeof msg.line === "string" && msg.line ? msg.line : status);
    setText($("backend-name"), typeof msg.name === "string" ? msg.name : "—");
    const short = $("backend-short");
    short.setAttribute("data-status", status);
    setText(short, (typeof msg.name === "string" ? msg.name + " · " : "") + status);
    setText($("credits"), typeof msg.credits === "number" && Number.isFinite(msg.credits) ? msg.credits.toFixed(1) : "—");
    const errors = Array.isArray(msg.errors) ? msg.errors : [];
    fillList($("backend-errors"), $("backend-errors-empty"), errors, (e) => h("li", { text: e }));
    // The local model while it loads: its progress (the line above says what happens meanwhile).
    const loading = msg.state === "loading" || msg.state === "warming";
    $("backend-loading").hidden = !loading;
    if (loading) {
      $("backend-progress").value = typeof msg.progress === "number" && Number.isFinite(msg.progress) ? msg.progress : 0;
      setText($("backend-progress-line"), typeof msg.progress_line === "string" ? msg.progress_line : "");
    }
    const dream = msg.dream && typeof msg.dream === "object" ? msg.dream : null;
    $("backend-dream").hidden = !dream;
    if (dream) {
      const fps = typeof dream.fps === "number" && Number.isFinite(dream.fps) ? " · " + dream.fps.toFixed(1) + " fps" : "";
      const err = typeof dream.error === "string" && dream.error ? " · " + dream.error : "";
      setText($("backend-dream"), "dream: " + (typeof dream.state === "string" ? dream.state : "?") + fps + err);
    }
  }

  /* ---------- start ---------- */
  setConn(false, "Connecting…");
  connect();
})();
