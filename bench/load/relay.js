'use strict';
/*
 * Node `ws` relay: the same-run baseline for bench/audience.py's push-to-all latency.
 *
 * A tiny WebSocket server (the seed's stack: Node + ws) that the load client (client.js) connects
 * to exactly as it connects to the engine: ws://127.0.0.1:PORT/ws?client=ID, from 127.0.x.y. It
 * speaks just enough of the phone protocol (docs/protocol.md) for client.js to work unchanged:
 * `welcome` first, `pong` for every `ping`; anything else a phone sends is ignored. On the
 * parent's command it writes one message (stamped by the parent) to every open connection, in
 * one synchronous loop, as the engine's AudienceServer.broadcast_all does with websockets'
 * broadcast(): the text is encoded once and the same buffer goes to every socket.
 *
 * Usage: node relay.js PORT   (listens on 127.0.0.1:PORT only)
 *
 * Driven over stdin/stdout, one JSON object a line, like client.js (lines.js): commands in
 * ({"cmd": ...}), events out ({"ev": ...}). "ready" once listening (or "error" and exit 1 if it cannot listen);
 * "clock" answers with this process's clock (for the parent's offset); "count" gives the open
 * connections; "push" broadcasts {"message"} and answers "pushed" with when the loop started (this
 * process's clock, ms) and how long it took. The process exits when stdin closes, so a dead parent
 * never leaves it behind.
 */

const { WebSocket, WebSocketServer } = require('ws');
const { clock, emit, nofileLimit, serve } = require('./lines');

const HOST = '127.0.0.1';
const PATH = '/ws';
const WELCOME = JSON.stringify({ type: 'welcome', client_id: '', max_length: 200, cooldown: 0, prompts: [], feed: false });
const PONG = Buffer.from('{"type":"pong"}');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  emit({ ev: 'error', message: `usage: node relay.js PORT (got ${process.argv[2]})` });
  process.exit(2);
}

const counters = { connections: 0, pings: 0, other: 0, errors: 0 };

const wss = new WebSocketServer({ host: HOST, port, path: PATH, perMessageDeflate: false, clientTracking: true });

wss.on('connection', (ws, req) => {
  counters.connections++;
  // The client's own id back, as the engine does for a well-formed one.
  const id = new URL(req.url, 'http://relay').searchParams.get('client') || `relay-${counters.connections}`;
  ws.send(WELCOME.replace('"client_id":""', `"client_id":${JSON.stringify(id)}`));
  ws.on('message', (data, isBinary) => {
    let m = null;
    if (!isBinary) {
      try {
        m = JSON.parse(data.toString());
      } catch (e) {
        m = null;
      }
    }
    if (m !== null && m.type === 'ping') {
      counters.pings++;
      ws.send(PONG, { binary: false });
    } else {
      counters.other++;
    }
  });
  ws.on('error', () => counters.errors++);
});

function broadcast(message) {
  const data = Buffer.from(message);
  const start = clock();
  let sent = 0;
  for (const ws of wss.clients) {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(data, { binary: false });
      sent++;
    }
  }
  return { start, ms: clock() - start, sent };
}

function handle(cmd) {
  switch (cmd.cmd) {
    case 'count':
      emit({ ev: 'count', open: wss.clients.size, counters });
      break;
    case 'push':
      emit({ ev: 'pushed', id: cmd.id, ...broadcast(cmd.message) });
      break;
    default:
      emit({ ev: 'error', message: `unknown command ${cmd.cmd}` });
  }
}

function shutdown(code) {
  for (const ws of wss.clients) ws.terminate();
  process.exit(code);
}

wss.on('listening', () => {
  emit({ ev: 'ready', node: process.version, ws: require('ws/package.json').version, nofile: nofileLimit(),
    pid: process.pid, port });
});
wss.on('error', (err) => {
  emit({ ev: 'error', message: `relay on ${HOST}:${port}: ${err.code || err.message}` });
  process.exit(1);
});

serve(handle, shutdown);
