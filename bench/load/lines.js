'use strict';
/*
 * What the load client (client.js) and the relay (relay.js) share: their clock, and the way
 * bench/audience.py drives them, over stdin/stdout, one JSON object a line: commands in
 * ({"cmd": ...}), events out ({"ev": ...}).
 */

const fs = require('fs');
const readline = require('readline');

// Wall clock in ms, sub-millisecond: the parent measures its offset with the "clock" command.
const clock = () => performance.timeOrigin + performance.now();
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function nofileLimit() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const parts = line.trim().split(/\s+/);
    return { soft: Number(parts[3]), hard: Number(parts[4]) };
  } catch (e) {
    return null;
  }
}

// Commands from stdin go to handle(cmd) ("clock" is answered here); shutdown(code) runs on SIGINT,
// SIGTERM, a lost parent (stdout fails) and stdin closing, so a dead parent never leaves us behind.
function serve(handle, shutdown) {
  process.on('SIGINT', () => shutdown(130));
  process.on('SIGTERM', () => shutdown(143));
  process.stdout.on('error', () => shutdown(1)); // the parent is gone

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      emit({ ev: 'error', message: `bad command line: ${e.message}` });
      return;
    }
    if (cmd.cmd === 'clock') emit({ ev: 'clock', t: cmd.t, node: clock() });
    else handle(cmd);
  });
  rl.on('close', () => shutdown(0));
}

module.exports = { clock, emit, nofileLimit, serve };
