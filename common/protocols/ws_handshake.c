/* ws_handshake.c - the RFC 6455 opening handshake (section 4.2), answered
 * from a complete HTTP request head that http.c parsed.
 *
 * A refusal names what was wrong in its body, so a person with curl sees
 * why: 405 for a method other than GET, 426 (with Sec-WebSocket-Version:
 * 13) for another protocol version, 400 for a missing Connection: Upgrade,
 * a missing or malformed Sec-WebSocket-Key, HTTP/1.0 or a request body.
 * Extensions (permessage-deflate) and subprotocols offered are declined by
 * not answering them (docs/PROTOCOL.md says why). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */
#define WS_KEY_LEN 24                                  /* base64 of 16 bytes */

static bool is_name(const struct http_header *f, const char *lit) { return http_token_eq(f->name, f->name_len, lit); }

/* Is tok one of the comma-separated tokens of [p, p+n)? (case-insensitive) */
static bool has_token(const char *p, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
			i++;
		size_t b = i;
		while (i < n && p[i] != ',')
			i++;
		size_t e = i;
		while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e > b && http_token_eq(p + b, e - b, tok))
			return true;
	}
	return false;
}

/* Does any field called name hold tok? */
static bool field_has(const struct http_request *req, const char *name, const char *tok)
{
	for (size_t i = 0; i < req->num_headers; i++)
		if (is_name(&req->headers[i], name) && has_token(req->headers[i].value, req->headers[i].value_len, tok))
			return true;
	return false;
}

/* The one field called name; NULL if absent or repeated. */
static const struct http_header *field_one(const struct http_request *req, const char *name)
{
	const struct http_header *f = NULL;
	for (size_t i = 0; i < req->num_headers; i++) {
		if (!is_name(&req->headers[i], name))
			continue;
		if (f)
			return NULL;
		f = &req->headers[i];
	}
	return f;
}

bool ws_upgrade_asked(const struct http_request *req) { return field_has(req, "upgrade", "websocket"); }

/* A key is 16 bytes in base64 (RFC 6455 4.1): 22 characters and "==". */
static bool key_valid(const struct http_header *k)
{
	if (!k || k->value_len != WS_KEY_LEN || memcmp(k->value + 22, "==", 2) != 0)
		return false;
	unsigned char out[WS_KEY_LEN];
	return EVP_DecodeBlock(out, (const unsigned char *)k->value, WS_KEY_LEN) == 18; /* 16 + padding */
}

/* --ws-origin: a comma-separated list of origins (RFC 6454: scheme://host[:port],
 * compared case-insensitively, as browsers send them lower-case anyway). No
 * list accepts any. A request without Origin is accepted: browsers always
 * send one, and a browser page on another site is what the list keeps out;
 * any other client can send whatever Origin it likes. A repeated Origin is
 * refused. */
static bool origin_allowed(const char *list, const struct http_request *req, const struct http_header *o)
{
	if (!list)
		return true;
	if (!o) {
		for (size_t i = 0; i < req->num_headers; i++)
			if (is_name(&req->headers[i], "origin"))
				return false; /* repeated */
		return true;
	}
	const char *v = o->value;
	size_t vn = o->value_len;
	while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	for (const char *p = list; *p;) {
		p += strspn(p, " ,");
		size_t n = strcspn(p, ",");
		size_t e = n;
		while (e && p[e - 1] == ' ')
			e--;
		if (e && e == vn && strncasecmp(p, v, vn) == 0)
			return true;
		p += n;
	}
	return false;
}

static int refuse(struct session *s, int status, const char *why, const char *extra)
{
	static const char *const reasons[] = {[0] = "Bad Request", [3] = "Forbidden", [5] = "Method Not Allowed",
	                                      [26] = "Upgrade Required"};
	char b[512];
	int body = (int)strlen(why) + 1;
	int n = snprintf(b, sizeof(b),
	                 "HTTP/1.1 %d %s\r\nServer: weft\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: %d\r\nConnection: close\r\n%s\r\n%s\n",
	                 status, reasons[status - 400], body, extra, why);
	session_write(s, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
	stat_inc(STAT_ws_refused);
	return status;
}

static int accept_101(struct session *s, const struct http_header *key)
{
	char in[WS_KEY_LEN + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	memcpy(in, key->value, WS_KEY_LEN);
	memcpy(in + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	if (!EVP_Digest(in, WS_KEY_LEN + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL))
		return refuse(s, 400, "WebSocket handshake failed: SHA-1 unavailable", "");
	unsigned char acc[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	EVP_EncodeBlock(acc, md, (int)mdlen);
	char b[256];
	int n = snprintf(b, sizeof(b),
	                 "HTTP/1.1 101 Switching Protocols\r\nServer: weft\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                 (const char *)acc);
	session_write(s, b, (size_t)n);
	return 101;
}

int ws_handshake(struct session *s, const struct http_request *req, bool has_body)
{
	if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
		return refuse(s, 405, "WebSocket upgrade needs GET", "Allow: GET\r\n");
	if (req->minor < 1)
		return refuse(s, 400, "WebSocket upgrade needs HTTP/1.1", "");
	if (has_body)
		return refuse(s, 400, "WebSocket upgrade request must not have a body", "");
	if (!field_has(req, "connection", "upgrade"))
		return refuse(s, 400, "WebSocket upgrade needs 'Connection: Upgrade'", "");
	const struct http_header *v = field_one(req, "sec-websocket-version");
	if (!v || v->value_len != 2 || memcmp(v->value, "13", 2) != 0)
		return refuse(s, 426, "WebSocket version not supported: this server speaks Sec-WebSocket-Version 13",
		              "Sec-WebSocket-Version: 13\r\n");
	const struct http_header *k = field_one(req, "sec-websocket-key");
	if (!key_valid(k))
		return refuse(s, 400, "WebSocket upgrade needs one Sec-WebSocket-Key: 16 bytes in base64", "");
	const struct http_header *o = field_one(req, "origin");
	if (!origin_allowed(s->srv->cfg->ws_origin, req, o)) {
		char why[300];
		int n = o ? (int)(o->value_len > 200 ? 200 : o->value_len) : 0;
		for (int i = 0; i < n; i++) /* it goes into the body: no control bytes */
			if ((unsigned char)o->value[i] < 0x20 || o->value[i] == 0x7f)
				n = i;
		snprintf(why, sizeof(why), "WebSocket origin not allowed: %.*s (weft --ws-origin)", n, o ? o->value : "");
		return refuse(s, 403, why, "");
	}
	return accept_101(s, k);
}
