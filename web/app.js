/* Stagecraft audience page. Protocol: docs/protocol.md. No dependencies, CSP-safe:
   no inline code, no eval, untrusted text only ever goes through textContent. */
(function () {
  "use strict";

  var ID_KEY = "stagecraft.client";
  var RETRY_KEY = "stagecraft.retryUntil";
  var ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
  var PING_MS = 20000, DEAD_MS = 45000, CONNECT_MS = 12000, BACKOFF_MIN = 500, BACKOFF_MAX = 10000;
  var MAX_ITEMS = 50;

  var $ = function (id) { return document.getElementById(id); };
  var field = $("prompt"), sendBtn = $("send"), counter = $("counter"), banner = $("status-banner"),
    bannerText = $("status-text"), list = $("prompts"), feedEl = $("feed"), feedText = $("feed-text"),
    errorEl = $("error"), cooldownEl = $("cooldown"), hintEl = $("hint"), live = $("live"),
    historyTitle = $("history-title");

  var maxLength = 200, cooldown = 0, feedOn = false;
  var ws = null, online = false, attempts = 0, lastMsg = 0, lastPing = 0, startedAt = 0;
  var reconnectTimer = 0, bannerTimer = 0, errorTimer = 0, countdownTimer = 0;
  var retryUntil = 0, refSeq = 0;
  var items = new Map();   // prompt id -> {el, data}
  var pending = [];        // [{ref, text, el}] sent, no reply yet (oldest first)

  /* ---------- storage (may be unavailable in private mode) ---------- */
  function load(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function save(key, v) { try { localStorage.setItem(key, v); } catch (e) { /* memory only */ } }

  function randomId(n) {
    var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    var bytes = new Uint8Array(n), out = "";
    crypto.getRandomValues(bytes);
    for (var i = 0; i < n; i++) out += abc[bytes[i] & 63];
    return out;
  }

  var clientId = load(ID_KEY);
  if (!clientId || !ID_RE.test(clientId)) { clientId = randomId(24); save(ID_KEY, clientId); }
  retryUntil = Number(load(RETRY_KEY)) || 0;

  /* ---------- composer ---------- */
  function textLength(s) { return s.length; }  // code units: matches the textarea's maxlength
  function cleaned() { return field.value.replace(/\s+/g, " ").trim(); }
  function coolingDown() { return retryUntil > Date.now(); }

  function updateComposer() {
    var n = textLength(field.value);
    counter.textContent = n + " / " + maxLength;
    counter.classList.toggle("warn", n >= maxLength - Math.max(10, Math.round(maxLength * 0.1)));
    counter.classList.toggle("over", n > maxLength);
    var t = cleaned();
    sendBtn.disabled = !online || !t || textLength(t) > maxLength || coolingDown();
  }

  field.addEventListener("input", function () {
    if (/[\r\n]/.test(field.value)) {          // one line: pasted newlines become spaces
      var pos = field.selectionStart;
      field.value = field.value.replace(/\r\n?|\n/g, " ");
      field.setSelectionRange(pos, pos);
    }
    updateComposer();
  });
  field.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    e.preventDefault();
    if (!e.shiftKey && !e.isComposing && e.keyCode !== 229) send();
  });
  sendBtn.addEventListener("click", send);

  function send() {
    updateComposer();
    if (sendBtn.disabled) return;
    var text = cleaned();
    var ref = "r" + (++refSeq) + "-" + randomId(6);
    try {
      ws.send(JSON.stringify({ type: "prompt", text: text, ref: ref }));
    } catch (e) { return; }
    var el = makeItem();
    el.setAttribute("data-ref", ref);
    list.insertBefore(el, list.firstChild);
    pending.push({ ref: ref, text: text, el: el });
    render(el, { text: text, state: "sending" });
    field.value = "";
    field.blur();   // phones: close the keyboard so the status is visible
    hideError();
    updateComposer();
    trimList();
    el.scrollIntoView({ block: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
  }
  function reducedMotion() {
    return !!(window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  function showError(msg) {
    errorEl.textContent = msg;
    errorEl.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 7000);
  }
  function hideError() { errorEl.hidden = true; errorEl.textContent = ""; }

  function startCooldown(seconds) {
    var until = Date.now() + Math.max(0, Number(seconds) || 0) * 1000;
    if (until <= retryUntil) return;
    retryUntil = until;
    save(RETRY_KEY, String(until));
    tickCooldown();
    live.textContent += " " + cooldownEl.textContent + ".";
  }
  function tickCooldown() {
    clearTimeout(countdownTimer);
    var left = Math.ceil((retryUntil - Date.now()) / 1000);
    if (left > 0) {
      cooldownEl.textContent = "You can send again in " + left + " s";
      cooldownEl.hidden = false;
      countdownTimer = setTimeout(tickCooldown, 250);
    } else {
      cooldownEl.hidden = true;
      cooldownEl.textContent = "";
    }
    updateComposer();
  }

  /* ---------- prompt list ---------- */
  function makeItem() {
    var li = document.createElement("li");
    li.className = "item";
    var text = document.createElement("p");
    text.className = "item-text";
    var st = document.createElement("p");
    st.className = "item-state";
    var dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    var label = document.createElement("span");
    label.className = "state-label";
    st.appendChild(dot);
    st.appendChild(label);
    li.appendChild(text);
    li.appendChild(st);
    historyTitle.hidden = false;
    return li;
  }

  function waitWords(seconds) {
    if (typeof seconds !== "number" || seconds <= 0) return "";
    if (seconds < 60) return " · on screen in under a minute";
    var minutes = Math.round(seconds / 60);
    return " · about " + minutes + (minutes === 1 ? " minute" : " minutes");
  }

  function stateWords(d) {
    switch (d.state) {
      case "sending": return "Sending…";
      case "queued":
        if (d.position == null) return "Waiting for approval";
        return "In the queue — #" + d.position + waitWords(d.wait);
      case "generating": return "Being painted…";
      case "showing": return "On screen now!";
      case "done": return "Done";
      case "rejected": return d.reason || "Not allowed: this prompt can't be used.";
      case "failed": return "Failed: " + (d.reason || "something went wrong.");
      default: return "Updating…";
    }
  }

  // Only same-origin http(s) image URLs are used (they come from the server, but still).
  function safeUrl(u) {
    if (typeof u !== "string" || !u) return null;
    try {
      var url = new URL(u, location.href);
      if ((url.protocol === "http:" || url.protocol === "https:") && url.origin === location.origin) return url.href;
    } catch (e) { /* ignore */ }
    return null;
  }
  function safeName(id) { return String(id || "image").replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64) || "image"; }

  function render(el, d) {
    el.setAttribute("data-state", d.state);
    el.querySelector(".item-text").textContent = d.text || "";
    el.querySelector(".state-label").textContent = stateWords(d);
    var url = (d.state === "showing" || d.state === "done") ? safeUrl(d.image_url) : null;
    var media = el.querySelector(".item-media");
    if (!url) { if (media) media.remove(); return; }
    if (!media) {
      media = document.createElement("figure");
      media.className = "item-media";
      var img = document.createElement("img");
      img.className = "prompt-image";
      img.loading = "lazy";
      img.decoding = "async";
      img.addEventListener("error", function () { media.classList.add("broken"); });
      img.addEventListener("load", function () { media.classList.remove("broken"); });
      var thumbs = document.createElement("div");
      thumbs.className = "thumbs";
      var row = document.createElement("figcaption");
      row.className = "save-row";
      var a = document.createElement("a");
      a.className = "save-link";
      a.textContent = "Save image";
      var tip = document.createElement("span");
      tip.className = "save-tip";
      tip.textContent = "or press and hold the picture";
      row.appendChild(a);
      row.appendChild(tip);
      media.appendChild(img);
      media.appendChild(thumbs);
      media.appendChild(row);
      el.appendChild(media);
    }
    var name = safeName(d.id);
    setImage(media, url, "stagecraft-" + name + ".png", d.text);
    // Several images made for one prompt: small thumbnails to pick which one to view/save.
    var thumbsEl = media.querySelector(".thumbs");
    var urls = Array.isArray(d.images) ? d.images.map(safeUrl).filter(Boolean) : [];
    var key = urls.join(" ");
    if (thumbsEl.getAttribute("data-key") !== key) {
      thumbsEl.setAttribute("data-key", key);
      thumbsEl.textContent = "";
      if (urls.length > 1) {
        urls.forEach(function (u, i) {
          var b = document.createElement("button");
          b.type = "button";
          b.className = "thumb";
          b.setAttribute("aria-label", "Show image " + (i + 1) + " of " + urls.length);
          var t = document.createElement("img");
          t.src = u;
          t.alt = "";
          t.loading = "lazy";
          b.appendChild(t);
          b.addEventListener("click", function () {
            setImage(media, u, "stagecraft-" + name + "-" + (i + 1) + ".png", d.text);
          });
          thumbsEl.appendChild(b);
        });
      }
    }
  }

  function setImage(media, url, filename, text) {
    var img = media.querySelector("img.prompt-image"), a = media.querySelector("a.save-link");
    if (img.getAttribute("src") !== url) img.src = url;
    img.alt = "Image for: " + (text || "your prompt");
    a.href = url;
    a.setAttribute("download", filename);
    media.querySelectorAll(".thumb").forEach(function (b) {
      b.classList.toggle("current", b.firstChild.src === url);
    });
  }

  function announce(d) {
    var t = d.text || "your prompt";
    if (t.length > 60) t = t.slice(0, 57) + "…";
    live.textContent = "“" + t + "”: " + stateWords(d);
  }

  function trimList() {
    while (list.children.length > MAX_ITEMS) {
      var last = list.lastElementChild;
      items.forEach(function (v, k) { if (v.el === last) items.delete(k); });
      last.remove();
    }
  }

  function norm(s) { return String(s || "").replace(/\s+/g, " ").trim(); }

  function takePending(msg) {
    for (var i = 0; i < pending.length; i++) {
      if (msg.ref != null && pending[i].ref === msg.ref) return pending.splice(i, 1)[0];
    }
    return null;
  }

  function onStatus(msg, quiet) {
    var hasId = typeof msg.id === "string" && msg.id !== "";
    var key = hasId ? msg.id : (typeof msg.ref === "string" ? "ref:" + msg.ref : null);
    if (!key) return;
    var entry = items.get(key), p = takePending(msg);
    if (!entry) {
      var el = p ? p.el : makeItem();
      el.removeAttribute("data-ref");
      if (hasId) el.setAttribute("data-prompt-id", msg.id);
      entry = { el: el, data: {} };
      items.set(key, entry);
      if (!p) list.insertBefore(el, list.firstChild);
    } else if (p) {
      p.el.remove();
    }
    var d = {};
    ["id", "text", "state", "position", "wait", "reason", "retry_after", "image_url", "images"].forEach(function (k) {
      if (msg[k] !== undefined) d[k] = msg[k];
    });
    if (d.text == null) d.text = entry.data.text || (p && p.text) || "";
    var changed = entry.data.state !== d.state || entry.data.position !== d.position || entry.data.wait !== d.wait;
    entry.data = d;
    render(entry.el, d);
    if (!quiet && changed) announce(d);
    if (!quiet && d.state === "rejected" && d.retry_after != null) startCooldown(d.retry_after);
    trimList();
  }

  function onWelcome(msg) {
    if (typeof msg.client_id === "string" && ID_RE.test(msg.client_id) && msg.client_id !== clientId) {
      clientId = msg.client_id;
      save(ID_KEY, clientId);
    }
    if (Number.isInteger(msg.max_length) && msg.max_length > 0) {
      maxLength = msg.max_length;
      field.maxLength = maxLength;
    }
    if (typeof msg.cooldown === "number" && msg.cooldown >= 0) cooldown = msg.cooldown;
    hintEl.textContent = "English prompts work best." +
      (cooldown > 0 ? " One prompt every " + Math.round(cooldown) + " s." : "");
    feedOn = msg.feed === true;
    if (!feedOn) feedEl.hidden = true;

    // Rebuild the list from what the server knows.
    var stale = pending;
    pending = [];
    items.clear();
    list.textContent = "";
    var prompts = Array.isArray(msg.prompts) ? msg.prompts : [];
    prompts.forEach(function (s) { if (s && typeof s === "object") onStatus(s, true); });
    historyTitle.hidden = list.children.length === 0;

    // Prompts sent just before the connection dropped and unknown to the server: back to the field.
    var lost = stale.filter(function (p) {
      return !prompts.some(function (s) { return s && (s.ref === p.ref || norm(s.text) === norm(p.text)); });
    });
    if (lost.length) {
      if (!field.value) field.value = lost[lost.length - 1].text;
      showError("Your last prompt didn't get through. It's back in the box: tap Send to try again.");
    }
    online = true;
    attempts = 0;
    lastPing = Date.now();
    setBanner(false);
    updateComposer();
  }

  function onError(msg) {
    // Errors carry no ref: the server answers in order, so it is about the oldest unanswered prompt.
    // too_fast: the server did not even read the message (too many too quickly): the prompt goes back in the box.
    var prompt = ["too_long", "empty", "missing_field", "wrong_type", "too_fast"].indexOf(msg.code) >= 0;
    if (prompt && pending.length) {
      var p = pending.shift();
      p.el.remove();
      if (!field.value) field.value = p.text;
      historyTitle.hidden = list.children.length === 0;
    }
    var words = {
      too_long: "That prompt is too long: " + maxLength + " characters at most.",
      empty: "Type something first!"
    };
    showError(typeof msg.message === "string" && msg.message ? msg.message : (words[msg.code] || "Something went wrong. Please try again."));
    updateComposer();
  }

  /* ---------- connection ---------- */
  function wsUrl() {
    var u = new URL("ws", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.search = "?client=" + encodeURIComponent(clientId);
    u.hash = "";
    return u.href;
  }

  function setBanner(show, text) {
    clearTimeout(bannerTimer);
    if (text) bannerText.textContent = text;
    banner.hidden = !show;
    document.body.classList.toggle("offline", show);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (ws) return;
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws = sock;
    startedAt = lastMsg = Date.now();
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      lastMsg = Date.now();
      if (typeof ev.data !== "string") return;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      switch (msg.type) {
        case "welcome": onWelcome(msg); break;
        case "status": onStatus(msg, false); break;
        case "error": onError(msg); break;
        case "feed":
          if (feedOn && typeof msg.text === "string" && msg.text) {
            feedText.textContent = msg.text;
            feedEl.hidden = false;
          }
          break;
        default: break;  // pong and anything newer
      }
    };
    sock.onclose = function () { if (ws === sock) dropped(); };
    sock.onerror = function () { /* onclose follows */ };
  }

  function ping() {
    lastPing = Date.now();
    try { ws.send('{"type":"ping"}'); } catch (e) { /* onclose follows */ }
  }

  // Every few seconds: a connection that never got its welcome, or that has been silent
  // for DEAD_MS (pings are answered, so silence means dead), is dropped and made again.
  function tick() {
    if (!ws) return;
    var now = Date.now();
    if (!online) { if (now - startedAt > CONNECT_MS) dropped(); return; }
    if (now - lastMsg > DEAD_MS) { dropped(); return; }
    if (now - lastPing >= PING_MS - 250) ping();
  }

  function dropped() {
    var sock = ws;
    ws = null;
    online = false;
    if (sock) {
      sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
      try { sock.close(); } catch (e) { /* already gone */ }
    }
    setBanner(true, "Offline — reconnecting…");
    updateComposer();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    var base = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempts++));
    var delay = base / 2 + Math.random() * base / 2;   // jitter: 50–100 % of the step
    reconnectTimer = setTimeout(connect, delay);
  }

  function wake() {
    // Back from sleep or the network came back: check at once instead of waiting for the backoff.
    if (ws && online && Date.now() - lastMsg > DEAD_MS) dropped();
    if (!ws) { attempts = 0; connect(); }
    else if (online) ping();
  }
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", function (e) { if (e.persisted) wake(); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) wake(); });

  updateComposer();
  tickCooldown();
  // First connection: only show the banner if it takes a moment.
  bannerTimer = setTimeout(function () { if (!online) setBanner(true, "Connecting…"); }, 1500);
  setInterval(tick, 2500);
  connect();
})();
