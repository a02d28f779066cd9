// Node `ws` server peer for dvoice's interop tests. Listens on 127.0.0.1
// over TLS on two ports: one with a certificate valid for localhost and
// 127.0.0.1 ("good"), one with a certificate for another host ("wrong").
// Prints "PORT good N" and "PORT wrong N", then one line per observation.
// The request path picks the behaviour:
//   /echo        echo every message with its type
//   /fragment    send one message in three fragments; expect it echoed back
//   /ping        ping with a payload; report the pong
//   /close1000   close with 1000 "normal bye"
//   /close4015   close with 4015 "voice server crashed"
//   /big?n=N     send a binary message of N bytes (over the client's limit)
// Every connection reports "CLOSE <path> <code> <reason>" when it ends.
// Usage: node ws_server.js CERT KEY WRONG_CERT WRONG_KEY
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const [cert, key, wrongCert, wrongKey] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + '\n');

function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function serve(name, certFile, keyFile) {
  const server = https.createServer({
    cert: fs.readFileSync(certFile),
    key: fs.readFileSync(keyFile),
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url, 'https://x');
    const path = url.pathname;
    say(`OPEN ${path}`);
    ws.on('close', (code, reason) => say(`CLOSE ${path} ${code} ${reason}`));
    ws.on('error', (e) => say(`ERROR ${path} ${e.message}`));
    switch (path) {
      case '/echo':
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        break;
      case '/fragment': {
        const whole = pattern(70000, 7);
        ws.send(whole.subarray(0, 10), { binary: true, fin: false });
        ws.send(whole.subarray(10, 40000), { binary: true, fin: false });
        ws.send(whole.subarray(40000), { binary: true, fin: true });
        ws.on('message', (data) => {
          say(Buffer.compare(data, whole) === 0 ? 'FRAGMENT ok'
                                                : `FRAGMENT bad ${data.length}`);
        });
        break;
      }
      case '/ping':
        ws.on('pong', (data) => say(`PONG ${data.toString()}`));
        ws.ping('dvoice-ping');
        break;
      case '/close1000':
        ws.close(1000, 'normal bye');
        break;
      case '/close4015':
        ws.close(4015, 'voice server crashed');
        break;
      case '/big':
        ws.send(pattern(Number(url.searchParams.get('n')), 1), { binary: true });
        break;
      default:
        ws.close(1008, 'unknown path');
    }
  });
  server.listen(0, '127.0.0.1', () => say(`PORT ${name} ${server.address().port}`));
}

serve('good', cert, key);
serve('wrong', wrongCert, wrongKey);
// The test ends us with SIGTERM; also end when our stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
