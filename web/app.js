/* Stagecraft audience page. Protocol: docs/protocol.md. No dependencies, CSP-safe:
   no inline code, no eval, untrusted text only ever goes through textContent.
   Every word a person reads comes from web/i18n/<language>.json through t(): the page's language is the
   one stored from the switch, else the browser's first one on offer (i18n/languages.json), else the
   server's default; a key missing from a catalog is read from English. */
(function () {
  "use strict";

  var ID_KEY = "stagecraft.client";
  var RETRY_KEY = "stagecraft.retryUntil";
  var LANG_KEY = "stagecraft.lang";
  var REFERENCE = "en";      // holds every key; the fallback for a key another catalog lacks
  var I18N_WAIT_MS = 1500;   // the page is hidden at most this long waiting for its catalog
  var ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
  var PING_MS = 20000, DEAD_MS = 45000, CONNECT_MS = 12000, BACKOFF_MIN = 500, BACKOFF_MAX = 10000;
  var MAX_ITEMS = 50;

  var $ = function (id) { return document.getElementById(id); };
  var field = $("prompt"), sendBtn = $("send"), counter = $("counter"), banner = $("status-banner"),
    bannerText = $("status-text"), list = $("prompts"), feedEl = $("feed"), feedText = $("feed-text"),
    errorEl = $("error"), cooldownEl = $("cooldown"), hintEl = $("hint"), live = $("live"),
    historyTitle = $("history-title"), langSwitch = $("lang-switch"), captionsRow = $("captions-row");

  var maxLength = 200, cooldown = 0, feedOn = false, bestLanguage = "en";
  var bannerKey = "banner.offline", errorWords = null;
  var ws = null, online = false, attempts = 0, lastMsg = 0, lastPing = 0, startedAt = 0;
  var reconnectTimer = 0, bannerTimer = 0, errorTimer = 0, countdownTimer = 0;
  var retryUntil = 0, refSeq = 0;
  var intakes = [];        // [cluster] intakes, from the welcome: where to go when this one goes away
  var intakeBase = null;   // the intake in use (null: the address this page came from)
  var items = new Map();   // prompt id -> {el, data}
  var pending = [];        // [{ref, text, el}] sent, no reply yet (oldest first)

  /* ---------- storage (may be unavailable in private mode) ---------- */
  function load(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function save(key, v) { try { localStorage.setItem(key, v); } catch (e) { /* memory only */ } }

  /* ---------- words: the catalogs ---------- */
  var lang = REFERENCE, offered = [REFERENCE], defaultLang = REFERENCE, names = {};
  var catalogs = {};   // language -> {key: text}, once loaded

  function own(key, language) {
    var c = catalogs[language];
    return c && typeof c[key] === "string" ? c[key] : null;
  }
  // A text by key in the page's language, else English; "" while no catalog is in (never the raw key).
  function lookup(key) { var s = own(key, lang); return s !== null ? s : own(key, REFERENCE); }
  function fill(s, params) {
    return s.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, function (m, name) {
      return params && params[name] != null ? String(params[name]) : m;
    });
  }
  function t(key, params) { var s = lookup(key); return s === null ? "" : fill(s, params); }
  function plural(key, n) {   // key.one / key.other ...: the language's own plural rule
    var form = "other";
    try { form = new Intl.PluralRules(lang).select(n); } catch (e) { /* "other" */ }
    return lookup(key + "." + form) !== null ? t(key + "." + form, { minutes: n }) : t(key + ".other", { minutes: n });
  }

  function primary(tag) { return String(tag || "").toLowerCase().split(/[-_]/)[0]; }
  function chooseLanguage() {
    var stored = load(LANG_KEY);
    if (stored && offered.indexOf(stored) >= 0) return stored;
    var wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language];
    for (var i = 0; i < wanted.length; i++) {
      if (offered.indexOf(primary(wanted[i])) >= 0) return primary(wanted[i]);
    }
    return offered.indexOf(defaultLang) >= 0 ? defaultLang : offered[0];
  }

  function getJson(path) {
    return fetch(path, { cache: "no-cache", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(path + ": " + r.status);
      return r.json();
    });
  }
  function loadCatalog(language) {
    if (catalogs[language]) return Promise.resolve(catalogs[language]);
    return getJson("i18n/" + language + ".json").then(function (c) {
      if (!c || typeof c !== "object") throw new Error("bad catalog " + language);
      catalogs[language] = c;
      return c;
    });
  }
  // English too, whatever the language: it fills the keys another catalog lacks.
  function useLanguage(language) {
    return Promise.all([loadCatalog(REFERENCE), loadCatalog(language)]).then(function () {
      lang = language;
      applyWords();
    });
  }

  function buildSwitch() {
    langSwitch.textContent = "";
    langSwitch.hidden = offered.length < 2;
    offered.forEach(function (code) {
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("lang", code);
      b.setAttribute("data-lang", code);
      b.textContent = names[code] || code.toUpperCase();
      b.addEventListener("click", function () {
        save(LANG_KEY, code);
        useLanguage(code).catch(function () { /* stays as it is; the next tap tries again */ });
      });
      langSwitch.appendChild(b);
    });
  }

  var wordTries = 0;
  function startWords() {
    var shown = false;
    wordTries++;
    function reveal() { if (!shown) { shown = true; document.documentElement.classList.remove("i18n-wait"); } }
    setTimeout(reveal, I18N_WAIT_MS);
    return getJson("i18n/languages.json").then(function (o) {
      if (o && Array.isArray(o.languages) && o.languages.length) {
        offered = o.languages.filter(function (c) { return typeof c === "string" && /^[a-z]{2}$/.test(c); });
        if (!offered.length) offered = [REFERENCE];
        if (typeof o.default === "string") defaultLang = o.default;
        if (o.names && typeof o.names === "object") names = o.names;
      }
    }, function () { /* an older server: English only */ }).then(function () {
      buildSwitch();
      var choice = chooseLanguage();
      return useLanguage(choice).catch(function (err) {
        if (choice === REFERENCE) throw err;
        return useLanguage(REFERENCE);   // its catalog is broken or gone: English rather than nothing
      });
    }).catch(function () {
      // No catalog: the page keeps index.html's English; try again in a while (the network may be busy).
      if (wordTries < 12) setTimeout(startWords, 5000);
    }).then(reveal);
  }

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
    var text = cleaned();
    sendBtn.disabled = !online || !text || textLength(text) > maxLength || coolingDown();
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

  // words: a function giving the text, called again if the language changes while it shows.
  function showError(words) {
    errorWords = words;
    errorEl.textContent = words();
    errorEl.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 7000);
  }
  function hideError() { errorWords = null; errorEl.hidden = true; errorEl.textContent = ""; }

  function hintWords() {
    var hint = t(bestLanguage === null ? "hint.any_language" : "hint.best_english");
    return cooldown > 0 ? hint + " " + t("hint.cooldown", { seconds: Math.round(cooldown) }) : hint;
  }

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
      cooldownEl.textContent = t("cooldown.left", { seconds: left });
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
    if (seconds < 60) return t("wait.under_minute");
    return plural("wait.minutes", Math.round(seconds / 60));
  }

  // A reason in the page's language, by its code; the server's own words when the code is "custom"
  // (typed by the VJ) or one this page does not know (a newer server).
  function reasonWords(d) {
    var code = d.reason_code;
    if (typeof code === "string" && code !== "custom" && /^[a-z_]+$/.test(code)) {
      var s = lookup("reason." + code);
      if (s !== null) return fill(s, d.reason_params);
    }
    return typeof d.reason === "string" ? d.reason : "";
  }

  function stateWords(d) {
    switch (d.state) {
      case "sending": return t("state.sending");
      case "queued":
        if (d.position == null) return t("state.awaiting_approval");
        var wait = waitWords(d.wait);
        return wait ? t("state.queued_wait", { position: d.position, wait: wait }) : t("state.queued", { position: d.position });
      case "generating": return t("state.generating");
      case "showing": return t("state.showing");
      case "done": return t("state.done");
      case "rejected": return reasonWords(d) || t("state.rejected");
      case "failed":
        var why = reasonWords(d);
        return why ? t("state.failed", { reason: why }) : t("state.failed_unknown");
      default: return t("state.updating");
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
      var tip = document.createElement("span");
      tip.className = "save-tip";
      row.appendChild(a);
      row.appendChild(tip);
      media.appendChild(img);
      media.appendChild(thumbs);
      media.appendChild(row);
      el.appendChild(media);
    }
    media.querySelector(".save-link").textContent = t("image.save");
    media.querySelector(".save-tip").textContent = t("image.save_tip");
    media.querySelector(".save-row").setAttribute("data-broken", t("image.broken"));
    var name = safeName(d.id);
    setImage(media, url, "stagecraft-" + name + ".png", d.text);
    // Several images made for one prompt: small thumbnails to pick which one to view/save.
    var thumbsEl = media.querySelector(".thumbs");
    var urls = Array.isArray(d.images) ? d.images.map(safeUrl).filter(Boolean) : [];
    var key = urls.join(" ");
    if (thumbsEl.getAttribute("data-key") !== key + " " + lang) {
      thumbsEl.setAttribute("data-key", key + " " + lang);
      thumbsEl.textContent = "";
      if (urls.length > 1) {
        urls.forEach(function (u, i) {
          var b = document.createElement("button");
          b.type = "button";
          b.className = "thumb";
          b.setAttribute("aria-label", t("image.pick", { n: i + 1, total: urls.length }));
          var thumb = document.createElement("img");
          thumb.src = u;
          thumb.alt = "";
          thumb.loading = "lazy";
          b.appendChild(thumb);
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
    img.alt = t("image.alt", { text: text || t("prompt.yours") });
    a.href = url;
    a.setAttribute("download", filename);
    media.querySelectorAll(".thumb").forEach(function (b) {
      b.classList.toggle("current", b.firstChild.src === url);
    });
  }

  function announce(d) {
    var text = d.text || t("prompt.yours");
    if (text.length > 60) text = text.slice(0, 57) + "…";
    live.textContent = t("announce", { text: text, state: stateWords(d) });
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
    ["id", "text", "state", "position", "wait", "reason", "reason_code", "reason_params", "retry_after", "image_url",
      "images"].forEach(function (k) {
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
    if (msg.best_language === null || typeof msg.best_language === "string") bestLanguage = msg.best_language;
    hintEl.textContent = hintWords() || hintEl.textContent;
    feedOn = msg.feed === true;
    if (!feedOn) feedEl.hidden = true;
    captionsRow.hidden = msg.captions !== true;   // the prompt's words go on the big screen with its image
    intakes = Array.isArray(msg.intakes) ? msg.intakes.filter(function (u) {
      return typeof u === "string" && /^https?:\/\/[^\s\/]+\/?$/.test(u);
    }) : [];

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
      showError(function () { return t("composer.lost"); });
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
    var params = msg.params && typeof msg.params === "object" ? msg.params : {};
    if (params.max_length == null) params.max_length = maxLength;
    showError(function () {
      var s = typeof msg.code === "string" && /^[a-z_]+$/.test(msg.code) ? lookup("error." + msg.code) : null;
      if (s !== null) return fill(s, params);
      return typeof msg.message === "string" && msg.message ? msg.message : t("error.unknown");
    });
    updateComposer();
  }

  /* ---------- the page in its language ---------- */
  // Everything on the page, again, in the language now chosen: the static words (data-i18n*), then what
  // was drawn from state (the hint, the banner, the countdown, an error showing, every prompt's status).
  function applyWords() {
    document.documentElement.lang = lang;
    document.documentElement.setAttribute("data-words", lang);   // whose words show (and: they have arrived)
    document.title = t("page.title");
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      var s = t(el.getAttribute("data-i18n"));
      if (s) el.textContent = s;
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      var s = t(el.getAttribute("data-i18n-placeholder"));
      if (s) el.setAttribute("placeholder", s);
    });
    document.querySelectorAll("[data-i18n-aria-label]").forEach(function (el) {
      var s = t(el.getAttribute("data-i18n-aria-label"));
      if (s) el.setAttribute("aria-label", s);
    });
    langSwitch.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-lang") === lang ? "true" : "false");
    });
    hintEl.textContent = hintWords() || hintEl.textContent;
    bannerText.textContent = t(bannerKey);
    if (errorWords) errorEl.textContent = errorWords();
    tickCooldown();
    items.forEach(function (entry) { render(entry.el, entry.data); });
  }

  /* ---------- connection ---------- */
  function wsUrl() {
    var u = new URL("ws", intakeBase || location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.search = "?client=" + encodeURIComponent(clientId);
    u.hash = "";
    return u.href;
  }

  function setBanner(show, key) {
    clearTimeout(bannerTimer);
    if (key) { bannerKey = key; bannerText.textContent = t(key); }
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
    setBanner(true, "banner.offline");
    updateComposer();
    moveIntake();
    scheduleReconnect();
  }

  // A cluster's intake went away: try another of those the welcome named (the phone's id and history go
  // with it, kept in Redis). Without a list the same address is tried again (DNS round-robin, a balancer).
  function moveIntake() {
    var here = new URL(intakeBase || location.href).origin;
    var others = intakes.filter(function (u) { return new URL(u).origin !== here; });
    if (others.length) intakeBase = others[Math.floor(Math.random() * others.length)];
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
  startWords();
  // First connection: only show the banner if it takes a moment.
  bannerTimer = setTimeout(function () { if (!online) setBanner(true, "banner.connecting"); }, 1500);
  setInterval(tick, 2500);
  connect();
})();
