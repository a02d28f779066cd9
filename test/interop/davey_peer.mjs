// A davey (@snazzah/davey, openmls) DAVE peer driven over stdin/stdout by
// test_mls_davey.c: one JSON command per line in, one JSON answer per line
// out. Binary values travel as hex. Sessions are named so one peer process
// can hold several members.
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const peers = process.env.DVOICE_NPM_PEERS;
const require = createRequire(path.join(peers, 'package.json'));
const { DAVESession } = require('@snazzah/davey');

const sessions = new Map();
const hex = (b) => (b ? Buffer.from(b).toString('hex') : null);
const buf = (h) => Buffer.from(h, 'hex');

function handle(c) {
  const s = sessions.get(c.name);
  switch (c.op) {
    case 'new':
      sessions.set(c.name, new DAVESession(1, c.uid, c.channel));
      return {};
    case 'es':
      s.setExternalSender(buf(c.hex));
      return {};
    case 'kp':
      return { hex: hex(s.getSerializedKeyPackage()) };
    case 'proposals': {
      const r = s.processProposals(c.type, buf(c.hex), c.recognized);
      return { commit: hex(r.commit), welcome: hex(r.welcome) };
    }
    case 'welcome':
      s.processWelcome(buf(c.hex));
      return {};
    case 'commit':
      s.processCommit(buf(c.hex));
      return {};
    case 'auth':
      return { hex: hex(s.getEpochAuthenticator()), epoch: Number(s.epoch),
               leaf: s.ownLeafIndex };
    default:
      throw new Error('unknown op ' + c.op);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try {
    out = handle(JSON.parse(line));
  } catch (e) {
    out = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
