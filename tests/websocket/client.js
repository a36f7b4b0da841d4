// client.js URL COUNT - Node's ws as a client of weft's echo mode: COUNT text
// and binary messages of growing size, each checked when it comes back, then a
// normal close. Exits 0 only if every echo matched and the close was 1000.
const WebSocket = require('ws');
const crypto = require('crypto');
const [url, countArg] = process.argv.slice(2);
const count = parseInt(countArg, 10);
const ws = new WebSocket(url, { rejectUnauthorized: false, perMessageDeflate: false });
const sent = [];
let got = 0;
function next() {
  if (sent.length === count) return ws.close(1000, 'done');
  const i = sent.length;
  const n = (i * 977) % 70000;
  const text = i % 2 === 0;
  const data = text ? 'é'.repeat(n >> 1) + i : crypto.randomBytes(n);
  sent.push({ text, data });
  ws.send(data, { binary: !text });
}
ws.on('open', next);
ws.on('message', (data, isBinary) => {
  const want = sent[got++];
  const ok = isBinary === !want.text && (want.text ? data.toString() === want.data : data.equals(want.data));
  if (!ok) { console.error('echo ' + (got - 1) + ' differs'); process.exit(1); }
  next();
});
ws.on('close', (code) => {
  if (code !== 1000 || got !== count) { console.error('close ' + code + ' after ' + got); process.exit(1); }
  console.log('ok ' + got);
  process.exit(0);
});
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
setTimeout(() => { console.error('timeout after ' + got); process.exit(1); }, 20000);
