/* chat_page.c - GET /chat: one small, self-contained chat page for a browser.
 *
 * It connects back to the server it came from (ws:// or wss://, whichever
 * served it) and speaks the line protocol in WebSocket text messages
 * (docs/PROTOCOL.md, WebSocket). Nothing is loaded from anywhere else: the
 * script and the style are inline, and the Content-Security-Policy allows
 * exactly those two (by their SHA-256) and a connection to this origin. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "chat_page.h"

#define STYLE                                                                                               \
	"body{font:15px system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh}"           \
	"header,form{display:flex;gap:.5em;padding:.5em;background:#eee;align-items:center}"                     \
	"#log{flex:1;overflow-y:auto;padding:.5em;font-family:monospace;white-space:pre-wrap}"                   \
	".sys{color:#666}.on{color:#070}.off{color:#b00}input{flex:1}"

#define SCRIPT                                                                                              \
	"const $=id=>document.getElementById(id);let ws,backoff=500,chans=[];"                                   \
	"function show(t,c){const d=document.createElement('div');d.textContent=t;d.className=c;"                \
	"const l=$('log');l.appendChild(d);l.scrollTop=l.scrollHeight}"                                            \
	"function state(t,c){$('status').textContent=t;$('status').className=c}"                                 \
	"function send(t){if(ws&&ws.readyState===1)ws.send(t);else show('not connected: '+t,'off')}"           \
	"function connect(){ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/chat');" \
	"state('connecting','off');"                                                                             \
	"ws.onopen=()=>{state('connected','on');backoff=500;const n=$('nick').value.trim();"                     \
	"if(n)ws.send('/nick '+n);for(const c of chans)ws.send('/join '+c)};"                                     \
	"ws.onmessage=e=>show(e.data,/^P?MSG /.test(e.data)?'msg':'sys');"                                       \
	"ws.onclose=()=>{state('disconnected, reconnecting','off');show('disconnected','off');setTimeout(connect,backoff);"                  \
	"backoff=Math.min(backoff*2,8000)}}"                                                                      \
	"$('nickf').addEventListener('submit',e=>{e.preventDefault();send('/nick '+$('nick').value.trim())});"   \
	"$('joinf').addEventListener('submit',e=>{e.preventDefault();const c=$('chan').value.trim();"            \
	"if(!c)return;if(!chans.includes(c))chans.push(c);send('/join '+c);$('chan').value=''});"                 \
	"$('sendf').addEventListener('submit',e=>{e.preventDefault();const t=$('text').value;"                    \
	"if(!t)return;send(t);$('text').value=''});connect();"

static const char page[] =
	"<!doctype html><html lang=en><head><meta charset=utf-8>"
	"<meta name=viewport content=\"width=device-width,initial-scale=1\"><title>weft chat</title>"
	"<style>" STYLE "</style></head><body>"
	"<header><b>weft chat</b><span id=status class=off>starting</span></header>"
	"<form id=nickf><input id=nick placeholder=nick maxlength=32><button>set nick</button></form>"
	"<form id=joinf><input id=chan placeholder=channel maxlength=200><button>join</button></form>"
	"<div id=log></div>"
	"<form id=sendf><input id=text placeholder=\"message to the channel joined last, or /help\" autocomplete=off>"
	"<button>send</button></form>"
	"<script>" SCRIPT "</script></body></html>\n";

const char *chat_page_body(size_t *n)
{
	*n = sizeof(page) - 1;
	return page;
}

static void sha256_b64(const char *p, char out[64])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!EVP_Digest(p, strlen(p), md, &len, EVP_sha256(), NULL))
		len = 0; /* a policy with a wrong hash blocks the page: it fails closed */
	EVP_EncodeBlock((unsigned char *)out, md, (int)len);
}

int chat_page_headers(char *out, size_t cap)
{
	char script[64], style[64];
	sha256_b64(SCRIPT, script);
	sha256_b64(STYLE, style);
	return snprintf(out, cap,
	                "Content-Security-Policy: default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; "
	                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
	                "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n",
	                script, style);
}
