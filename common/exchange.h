/* exchange.h - named channels -> subscribers (chat mode). */
#ifndef WEFT_EXCHANGE_H
#define WEFT_EXCHANGE_H

struct exchange;

struct exchange *exchange_new(void);
void exchange_free(struct exchange *ex);

#endif
