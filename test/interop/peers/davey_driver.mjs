// Drives davey (@snazzah/davey, the DAVE library discord.js uses) for
// test_davey.c and bench_mls_davey.c over stdin/stdout, one command a line:
//   <op> <session> [args...]        binary arguments in hex, '-' = empty
// and one answer a line:
//   ok <CPU microseconds spent in the davey call> [results...]  or  err <text>
// Only the davey call itself is timed (not hex or pipe work), in process CPU
// time (user + system, so a loaded machine does not inflate it), so the
// bench can compare it with our own code's CPU time.
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const peers = process.env.DVOICE_NPM_PEERS;
if (!peers) {
  process.stderr.write('davey_driver: DVOICE_NPM_PEERS unset\n');
  process.exit(2);
}
const require = createRequire(path.join(peers, 'package.json'));
const { DAVESession } = require('@snazzah/davey');

const sessions = new Map();
const hex = (b) => (b && b.length ? Buffer.from(b).toString('hex') : '-');
const unhex = (h) => Buffer.from(h === '-' ? '' : h, 'hex');

// Runs fn and returns [CPU microseconds it took, its result].
function timed(fn) {
  const t0 = process.cpuUsage();
  const r = fn();
  const d = process.cpuUsage(t0);
  return [d.user + d.system, r];
}

function session(name) {
  const s = sessions.get(name);
  if (!s) throw new Error('no session ' + name);
  return s;
}

function handle(a) {
  const [op, name] = a;
  switch (op) {
    case 'new': {
      const [us] = timed(() =>
        sessions.set(name, new DAVESession(1, a[2], a[3])));
      return [us];
    }
    case 'free':
      sessions.delete(name);
      return [0];
    case 'es': {
      const s = session(name);
      return [timed(() => s.setExternalSender(unhex(a[2])))[0]];
    }
    case 'kp': {
      const s = session(name);
      const [us, kp] = timed(() => s.getSerializedKeyPackage());
      return [us, hex(kp)];
    }
    case 'props': {
      // props <s> <optype> <vector hex> <recognized ids, comma separated>
      const s = session(name);
      const ids = a[4] && a[4] !== '-' ? a[4].split(',') : undefined;
      const p = unhex(a[3]);
      const [us, r] = timed(() => s.processProposals(Number(a[2]), p, ids));
      return [us, hex(r.commit), hex(r.welcome)];
    }
    case 'welcome': {
      const s = session(name);
      const w = unhex(a[2]);
      return [timed(() => s.processWelcome(w))[0]];
    }
    case 'commit': {
      const s = session(name);
      const c = unhex(a[2]);
      return [timed(() => s.processCommit(c))[0]];
    }
    case 'state': {
      // epoch, own leaf, epoch authenticator, sorted user ids, privacy code
      const s = session(name);
      const ids = s.getUserIds().slice().sort().join(',') || '-';
      const code = s.voicePrivacyCode || '-';
      return [0, String(s.epoch), String(s.ownLeafIndex),
              hex(s.getEpochAuthenticator()), ids, code];
    }
    case 'enc': {
      const s = session(name);
      const f = unhex(a[2]);
      const [us, out] = timed(() => s.encryptOpus(f));
      return [us, hex(out)];
    }
    case 'dec': {
      // dec <s> <sender uid> <frame hex>
      const s = session(name);
      const f = unhex(a[3]);
      const [us, out] = timed(() => s.decrypt(a[2], 0, f));
      return [us, hex(out)];
    }
    default:
      throw new Error('unknown op ' + op);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try {
    out = 'ok ' + handle(line.trim().split(/ +/)).join(' ');
  } catch (e) {
    out = 'err ' + String(e && e.message ? e.message : e).replace(/\s+/g, ' ');
  }
  process.stdout.write(out + '\n');
});
