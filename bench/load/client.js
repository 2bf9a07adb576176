'use strict';
/*
 * Stagecraft audience load client: thousands of phones on loopback, for bench/audience.py.
 *
 * Driven over stdin/stdout, one JSON object a line: commands in ({"cmd": ...}), events out
 * ({"ev": ...}). It never decides a phase by itself; it only opens sockets, answers, times and
 * reports. Every wait here has a deadline, and the process exits when stdin closes, so a dead
 * parent never leaves it behind.
 *
 * Each phone has its own source address (127.0.x.y, like a phone on the venue Wi-Fi), its own
 * client id, and pings like the real page (web/app.js: every 20 s). Arrival times use
 * performance.timeOrigin + performance.now() (wall clock in ms, sub-millisecond); the parent
 * measures this clock's offset against its own with the "clock" command.
 *
 * The same client also drives the same-run baseline: after the engine's phones have closed, the
 * parent sends "connect" again with the URL of the Node relay (relay.js), which speaks enough of
 * the phone protocol that nothing here changes.
 *
 * bench/cluster.py times pushes that reach phones as feed lines instead (an intake relays the
 * show's feed channel to its phones): a feed whose text is "bench-push SEQ SENT_MS" is timed like a
 * stamped status, under the id "feed-SEQ", and counted per phone ("pushes" reports how many phones
 * got how many of them).
 */

const WebSocket = require('ws');
const { clock, emit, nofileLimit, serve } = require('./lines');

const PING_MS = 20000; // the page's application ping (web/app.js PING_MS)
const PING_TICK_MS = 100;


const phones = []; // {ws, i, welcomed, closed}
let welcomed = 0;
let closedAfterWelcome = 0;
const closeCodes = {};
const failures = {};
const counters = { pongs: 0, errors: 0, bad: 0, other: 0, feed: 0, pings: 0 };

// push seq -> arrival - sent (ms, this process's clock minus the engine's stamp)
const pushes = new Map();
const BENCH_FEED = /^bench-push (\d+) (\d+(?:\.\d+)?)$/; // a timed feed line from bench/cluster.py

function notePush(id, lat) {
  let arr = pushes.get(id);
  if (arr === undefined) {
    arr = [];
    pushes.set(id, arr);
  }
  arr.push(lat);
}

// the prompt phase
let prompts = null;

function bump(table, key) {
  table[key] = (table[key] || 0) + 1;
}

// --- addresses and ids ------------------------------------------------------------------------

// Phone i -> 127.a.b.c, perIp phones to an address, skipping .0 and .255 in the last byte.
function addressFor(i, perIp, first) {
  const n = first + Math.floor(i / perIp);
  const c = (n % 254) + 1;
  const rest = Math.floor(n / 254);
  return `127.${Math.floor(rest / 256) % 256}.${rest % 256}.${c}`;
}

function clientId(i) {
  return `bench-${process.pid}-${String(i).padStart(6, '0')}`;
}

// --- incoming frames ----------------------------------------------------------------------------

function onMessage(phone, data) {
  const t = clock();
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch (e) {
    counters.bad++;
    return;
  }
  switch (m.type) {
    case 'welcome':
      if (!phone.welcomed) {
        phone.welcomed = true;
        welcomed++;
      }
      break;
    case 'status':
      if (m.sent !== undefined) {
        notePush(m.id, t - m.sent);
      } else if (prompts !== null && typeof m.ref === 'string' && m.ref.startsWith('q')) {
        const k = Number(m.ref.slice(1));
        if (k >= 0 && k < prompts.count && prompts.ackAt[k] < 0) {
          prompts.ackAt[k] = t;
          prompts.state[k] = m.state === 'queued' ? 1 : m.state === 'rejected' ? 2 : 3;
          if (m.state !== 'queued') bump(prompts.reasons, `${m.state}: ${m.reason || ''}`);
          prompts.outstanding--;
          prompts.acked++;
        }
      }
      break;
    case 'pong':
      counters.pongs++;
      break;
    case 'error':
      counters.errors++;
      if (prompts !== null && typeof m.ref === 'string' && m.ref.startsWith('q')) {
        const k = Number(m.ref.slice(1));
        if (k >= 0 && k < prompts.count && prompts.ackAt[k] < 0) {
          prompts.ackAt[k] = t;
          prompts.state[k] = 3;
          bump(prompts.reasons, `error: ${m.code}`);
          prompts.outstanding--;
          prompts.acked++;
        }
      }
      break;
    case 'feed': {
      counters.feed++;
      const f = typeof m.text === 'string' ? BENCH_FEED.exec(m.text) : null;
      if (f !== null) {
        notePush(`feed-${f[1]}`, t - Number(f[2]));
        phone.benchFeeds = (phone.benchFeeds || 0) + 1;
      }
      break;
    }
    default:
      counters.other++;
  }
}

// --- commands -------------------------------------------------------------------------------------

function openCount() {
  return welcomed - closedAfterWelcome;
}

function connect(cmd) {
  const { url, n, perIp, firstAddress, concurrency, handshakeMs } = cmd;
  // A new crowd (the bench connects twice: to the engine, then to its Node relay): failures and
  // close codes are this crowd's; phones[i] is replaced as phone i opens again.
  for (const table of [failures, closeCodes]) for (const k of Object.keys(table)) delete table[k];
  const t0 = clock();
  let next = 0;
  let inflight = 0;
  let done = false;
  const progress = setInterval(() => emit({ ev: 'progress', open: openCount(), attempted: next }), 1000);
  const deadline = setTimeout(() => finish('deadline'), cmd.deadlineMs);

  function finish(why) {
    if (done) return;
    done = true;
    clearInterval(progress);
    clearTimeout(deadline);
    emit({ ev: 'connected', why, attempted: next, open: openCount(), welcomed, failures, ms: clock() - t0 });
  }

  function launch() {
    while (!done && inflight < concurrency && next < n) openOne(next++);
    if (!done && next >= n && inflight === 0) finish('all attempted');
  }

  function openOne(i) {
    inflight++;
    const ws = new WebSocket(`${url}?client=${clientId(i)}`, {
      localAddress: addressFor(i, perIp, firstAddress),
      perMessageDeflate: false,
      handshakeTimeout: handshakeMs,
      skipUTF8Validation: true,
      followRedirects: false,
    });
    const phone = { ws, i, welcomed: false, closed: false };
    phones[i] = phone;
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        inflight--;
        launch();
      }
    };
    ws.on('message', (data) => {
      onMessage(phone, data);
      if (phone.welcomed) settle();
    });
    ws.on('error', (err) => {
      const m = /Unexpected server response: (\d+)/.exec(err.message);
      bump(failures, m ? `HTTP ${m[1]}` : err.code || err.message);
      settle();
    });
    ws.on('close', (code) => {
      if (phone.welcomed && !phone.closed) {
        phone.closed = true;
        closedAfterWelcome++;
        bump(closeCodes, String(code));
      }
      settle();
    });
  }

  launch();
}

// The page pings every 20 s; spread the phones evenly over that period.
let pingTimer = null;
let pingCursor = 0;
function startPings() {
  if (pingTimer !== null) return;
  pingTimer = setInterval(() => {
    const n = phones.length;
    if (n === 0) return;
    const slice = Math.ceil((n * PING_TICK_MS) / PING_MS);
    for (let k = 0; k < slice; k++) {
      const p = phones[pingCursor];
      pingCursor = (pingCursor + 1) % n;
      if (p && p.welcomed && !p.closed && p.ws.readyState === WebSocket.OPEN) {
        p.ws.send('{"type":"ping"}');
        counters.pings++;
      }
    }
  }, PING_TICK_MS);
}

// cmd.cycle: the phones take turns, each sending again once every phone has sent (bench/cluster.py,
// more prompts than phones); without it each phone sends one prompt at most.
function sendPrompts(cmd) {
  const { rate, maxOutstanding, windowMs, graceMs, texts } = cmd;
  const open = phones.filter((p) => p && p.welcomed && !p.closed);
  const count = cmd.cycle && open.length > 0 ? cmd.count : Math.min(cmd.count, open.length);
  prompts = {
    count,
    sendAt: new Float64Array(count).fill(-1),
    ackAt: new Float64Array(count).fill(-1),
    state: new Uint8Array(count),
    reasons: {},
    outstanding: 0,
    acked: 0,
  };
  const P = prompts;
  const t0 = clock();
  let sent = 0;
  let throttled = 0;
  const timer = setInterval(() => {
    const now = clock();
    const elapsed = now - t0;
    if (sent < count && elapsed < windowMs) {
      const due = Math.min(count, Math.floor((elapsed * rate) / 1000) + 1) - sent;
      for (let k = 0; k < due; k++) {
        if (P.outstanding >= maxOutstanding) {
          throttled++;
          break;
        }
        const phone = open[sent % open.length];
        const text = texts[sent % texts.length];
        P.sendAt[sent] = clock();
        phone.ws.send(JSON.stringify({ type: 'prompt', text, ref: `q${sent}` }));
        P.outstanding++;
        sent++;
      }
    }
    const sendingOver = sent >= count || elapsed >= windowMs;
    if ((sendingOver && P.outstanding === 0) || elapsed >= windowMs + graceMs) {
      clearInterval(timer);
      const sendAt = [];
      const ack = [];
      const state = [];
      for (let k = 0; k < sent; k++) {
        sendAt.push(+(P.sendAt[k] - t0).toFixed(3));
        ack.push(P.ackAt[k] < 0 ? -1 : +(P.ackAt[k] - P.sendAt[k]).toFixed(3));
        state.push(P.state[k]);
      }
      emit({ ev: 'prompts', planned: count, sent, throttled, ms: clock() - t0, t0, sendAt, ack, state, reasons: P.reasons });
      prompts = null;
    }
  }, 2);
}

function closeAll(cmd) {
  const t0 = clock();
  if (pingTimer !== null) clearInterval(pingTimer);
  pingTimer = null;
  for (const p of phones) if (p && p.ws.readyState <= WebSocket.OPEN) p.ws.close(1000, 'bench over');
  const timer = setInterval(() => {
    const left = phones.filter((p) => p && p.ws.readyState !== WebSocket.CLOSED).length;
    if (left === 0 || clock() - t0 > cmd.deadlineMs) {
      clearInterval(timer);
      for (const p of phones) if (p && p.ws.readyState !== WebSocket.CLOSED) p.ws.terminate();
      emit({ ev: 'closed', left, ms: clock() - t0 });
    }
  }, 20);
}

function handle(cmd) {
  switch (cmd.cmd) {
    case 'connect':
      connect(cmd);
      break;
    case 'pings':
      startPings();
      emit({ ev: 'pings' });
      break;
    case 'count':
      emit({ ev: 'count', open: openCount(), welcomed, closeCodes, counters });
      break;
    case 'pushes': {
      const lat = {};
      for (const [id, arr] of pushes) lat[id] = arr.map((x) => +x.toFixed(3));
      // phones still open, by how many timed feed lines each got: {"4": 1998, "3": 2}
      const feedsPerPhone = {};
      for (const p of phones) if (p && p.welcomed && !p.closed) bump(feedsPerPhone, String(p.benchFeeds || 0));
      emit({ ev: 'pushes', lat, feedsPerPhone });
      break;
    }
    case 'prompts':
      sendPrompts(cmd);
      break;
    case 'close':
      closeAll(cmd);
      break;
    default:
      emit({ ev: 'error', message: `unknown command ${cmd.cmd}` });
  }
}

function shutdown(code) {
  for (const p of phones) if (p) p.ws.terminate();
  process.exit(code);
}

serve(handle, shutdown);

emit({ ev: 'ready', node: process.version, ws: require('ws/package.json').version, nofile: nofileLimit(), pid: process.pid });
