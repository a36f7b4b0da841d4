/* slot.c - CRC16/XMODEM and the key slot (slot.h). Bitwise: the slot of a
 * channel is computed once per publish and per subscription change, so a
 * 512-byte table would buy nothing measurable. */
#include "slot.h"

#include <string.h>

uint16_t crc16_xmodem(const char *p, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)((unsigned char)p[i] << 8);
		for (int k = 0; k < 8; k++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned cluster_slot(const char *key, size_t n)
{
	const char *open = memchr(key, '{', n);
	if (open) {
		size_t at = (size_t)(open - key) + 1;
		const char *close = memchr(key + at, '}', n - at);
		if (close && close > key + at) /* "{}" is no tag: the whole key */
			return crc16_xmodem(key + at, (size_t)(close - (key + at))) & (CLUSTER_SLOTS - 1);
	}
	return crc16_xmodem(key, n) & (CLUSTER_SLOTS - 1);
}
