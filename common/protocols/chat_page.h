/* chat_page.h - the browser chat page GET /chat serves (chat_page.c). */
#ifndef WEFT_CHAT_PAGE_H
#define WEFT_CHAT_PAGE_H

#include <stddef.h>

#define CHAT_PAGE_TYPE "text/html; charset=utf-8"
#define CHAT_PAGE_HEADERS_MAX 384 /* what chat_page_headers() writes, with room */

/* The page (HTML, script and style inline). */
const char *chat_page_body(size_t *n);
/* Its extra response header lines (the Content-Security-Policy naming the
 * inline script and style by hash, ...) into out; returns their length. */
int chat_page_headers(char *out, size_t cap);

#endif
