// ref_server.js - Node's ws as the reference RFC 6455 echo server that
// tests/conformance/ws_cases.py is proven right against: each message back
// with its own opcode, messages over MAX_MESSAGE refused (1009), like weft.
// Prints its port on the first line of stdout.
const { WebSocketServer } = require('ws');
const maxPayload = parseInt(process.argv[2], 10);
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a case broke the protocol on purpose; ws closes with the code
});
wss.on('listening', () => console.log(wss.address().port));
