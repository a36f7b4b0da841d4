// node-ws.js - the anchor a user would pick for WebSocket in Node: the `ws`
// package (pinned by bench/compare, installed into the build dir), written
// the way its README shows. Not a measuring stick: a real server.
//
//   node node-ws.js echo   each message sent back as it came (text or binary)
//   node node-ws.js chat   the slice of weft's line protocol that weft-load
//                          chat --ws speaks, one command per text message:
//                          "/join CH" -> "OK join CH N"; "/pub CH TEXT" ->
//                          "OK pub CH RECEIVERS" and "MSG CH NICK TEXT" to
//                          every socket that joined CH
//
// Prints "node-ws ready: port=P pid=N" once listening on 127.0.0.1.
'use strict';
const { WebSocketServer } = require('ws');

const mode = process.argv[2] || 'echo';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, backlog: 4096 });
const channels = new Map(); // name -> Set of sockets
let nextId = 0;

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  if (mode === 'echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  const nick = 'n' + nextId++;
  const joined = new Set();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.send('ERR text only');
    const line = data.toString();
    if (line.startsWith('/join ')) {
      const ch = line.slice(6);
      let subs = channels.get(ch);
      if (!subs) channels.set(ch, (subs = new Set()));
      subs.add(ws);
      joined.add(ch);
      ws.send('OK join ' + ch + ' ' + subs.size);
    } else if (line.startsWith('/pub ')) {
      const sp = line.indexOf(' ', 5);
      if (sp < 0) return ws.send('ERR usage: /pub CHANNEL TEXT');
      const ch = line.slice(5, sp);
      const msg = 'MSG ' + ch + ' ' + nick + ' ' + line.slice(sp + 1);
      const subs = channels.get(ch);
      let n = 0;
      if (subs) for (const s of subs) { s.send(msg); n++; }
      ws.send('OK pub ' + ch + ' ' + n);
    } else {
      ws.send('ERR unknown command');
    }
  });
  ws.on('close', () => {
    for (const ch of joined) {
      const subs = channels.get(ch);
      subs.delete(ws);
      if (!subs.size) channels.delete(ch);
    }
  });
});
wss.on('listening', () => {
  console.log('node-ws ready: port=' + wss.address().port + ' pid=' + process.pid);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
