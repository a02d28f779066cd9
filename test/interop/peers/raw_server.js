// A deliberately broken server for dvoice's failure tests, on 127.0.0.1.
// Prints "PORT tls N" and "PORT silent N".
// The TLS port reads one HTTP request and, by path:
//   /403         answers 403 Forbidden
//   /badaccept   answers 101 with a wrong Sec-WebSocket-Accept
//   /midframe    upgrades correctly, sends half a frame, then ends TLS
//                (close_notify, then FIN)
//   /midframe-rst upgrades correctly, sends half a frame, then destroys the
//                socket (FIN without close_notify)
//   /hang        never answers the request
//   /mute        upgrades correctly, then ignores everything (never answers
//                a close frame)
//   /nofin       upgrades correctly, answers the first frame it gets with a
//                close frame (1000), then never closes its side of TCP
//   /drip        upgrades correctly, then sends a text message "hello" and a
//                close frame (1000 "drip done") one byte per TLS record
// The silent port accepts TCP and never sends a byte (the TLS handshake
// never completes).
// Usage: node raw_server.js CERT KEY
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const tls = require('tls');

const [cert, key] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + '\n');
const held = [];

const server = tls.createServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  allowHalfOpen: true, // so that /nofin can ignore the client's FIN
}, (sock) => {
  let req = '';
  sock.on('error', () => {});
  sock.on('end', () => {
    if (!req.startsWith('GET /nofin')) sock.end();
  });
  sock.on('data', (chunk) => {
    if (req.includes('\r\n\r\n')) {
      if (req.startsWith('GET /nofin') && !sock.answered) {
        sock.answered = true;
        sock.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
        held.push(sock);
      }
      return;
    }
    req += chunk.toString('latin1');
    if (!req.includes('\r\n\r\n')) return;
    const path = req.split(' ')[1];
    const m = /sec-websocket-key:\s*(\S+)/i.exec(req);
    const accept = m ? crypto.createHash('sha1')
      .update(m[1] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64') : '';
    const upgrade = (acc) => 'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acc}\r\n\r\n`;
    say(`REQUEST ${path}`);
    switch (path) {
      case '/403':
        sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nForbidden');
        break;
      case '/badaccept':
        sock.write(upgrade('dGhlIHNhbXBsZSBub25jZQ=='));
        break;
      case '/midframe':
      case '/midframe-rst': {
        // A binary frame announcing 256 bytes, of which only 10 arrive.
        const half = Buffer.concat([Buffer.from([0x82, 0x7e, 0x01, 0x00]),
                                    Buffer.alloc(10, 0x55)]);
        sock.write(upgrade(accept));
        sock.write(half, () => {
          setTimeout(() => {
            if (path === '/midframe') sock.end(); else sock.destroy();
          }, 50);
        });
        break;
      }
      case '/drip': {
        const bytes = Buffer.concat([
          Buffer.from(upgrade(accept), 'latin1'),
          Buffer.from([0x81, 0x05]), Buffer.from('hello'),
          Buffer.from([0x88, 0x0b, 0x03, 0xe8]), Buffer.from('drip done'),
        ]);
        let i = 0;
        const next = () => {
          if (i < bytes.length) sock.write(bytes.subarray(i, ++i), next);
        };
        next();
        break;
      }
      case '/mute':
      case '/nofin':
        sock.write(upgrade(accept));
        held.push(sock);
        break;
      case '/hang':
        held.push(sock);
        break;
      default:
        sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    }
  });
});
server.listen(0, '127.0.0.1', () => say(`PORT tls ${server.address().port}`));

const silent = net.createServer((sock) => {
  sock.on('error', () => {});
  held.push(sock);
});
silent.listen(0, '127.0.0.1', () => say(`PORT silent ${silent.address().port}`));

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
