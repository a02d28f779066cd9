// Node `ws` client peer for dvoice's interop tests: connects to dvoice's
// listener over TLS, runs one scenario, prints one result line per
// observation and "DONE" at the end. The dvoice server under test reads the
// first text message, "scenario <name>", to know what to do.
//   echo        send text and binary messages of many sizes; expect echoes
//   fragment    send one message in three fragments; expect it echoed
//   ping        ping the server; report the pong
//   close1000   ask the server to close with 1000; report code and reason
//   close4015   ask the server to close with 4015; report code and reason
//   big         send a message over the server's limit; report the close
//   clientclose close with 4001 "client bye"; report what comes back
// Usage: node ws_client.js URL CA_FILE SCENARIO
'use strict';
const fs = require('fs');
const WebSocket = require('ws');

const [url, caFile, scenario] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + '\n');

function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const ws = new WebSocket(url, { ca: fs.readFileSync(caFile) });
ws.on('error', (e) => say(`ERROR ${e.message}`));
ws.on('close', (code, reason) => {
  say(`CLOSE ${code} ${reason}`);
  say('DONE');
});

ws.on('open', () => {
  say('OPEN');
  ws.send(`scenario ${scenario}`);
  switch (scenario) {
    case 'echo': {
      const sizes = [0, 1, 125, 126, 127, 65535, 65536, 1048576];
      const want = [];
      for (const n of sizes) {
        want.push({ data: pattern(n, n & 0xff), binary: true });
        want.push({ data: Buffer.from('t'.repeat(n)), binary: false });
      }
      for (const w of want) ws.send(w.data, { binary: w.binary });
      let i = 0;
      ws.on('message', (data, isBinary) => {
        const w = want[i++];
        if (isBinary !== w.binary || Buffer.compare(data, w.data) !== 0) {
          say(`ECHO bad ${i - 1} len ${data.length} binary ${isBinary}`);
        } else if (i === want.length) {
          say(`ECHO ok ${want.length}`);
          ws.close(1000, 'echo done');
        }
      });
      break;
    }
    case 'fragment': {
      const whole = pattern(70000, 7);
      ws.send(whole.subarray(0, 10), { binary: true, fin: false });
      ws.send(whole.subarray(10, 40000), { binary: true, fin: false });
      ws.send(whole.subarray(40000), { binary: true, fin: true });
      ws.on('message', (data) => {
        say(Buffer.compare(data, whole) === 0 ? 'FRAGMENT ok'
                                              : `FRAGMENT bad ${data.length}`);
        ws.close(1000, 'fragment done');
      });
      break;
    }
    case 'ping':
      ws.on('pong', (data) => {
        say(`PONG ${data.toString()}`);
        ws.close(1000, 'ping done');
      });
      ws.ping('dvoice-ping');
      break;
    case 'close1000':
    case 'close4015':
      break;
    case 'big':
      ws.send(pattern(Number(process.argv[5] || 2000000), 1), { binary: true });
      break;
    case 'clientclose':
      ws.close(4001, 'client bye');
      break;
    default:
      say(`ERROR unknown scenario ${scenario}`);
      ws.terminate();
  }
});
