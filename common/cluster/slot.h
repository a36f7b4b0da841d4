/* slot.h - Redis Cluster's key slot: CRC16 (XMODEM: polynomial 0x1021, init 0,
 * no reflection) of the key, or of its hash tag (the bytes between the first
 * '{' and the next '}', when not empty), modulo 16384. Written here from the
 * cluster specification. Sharded pub/sub puts a channel in the slot of its
 * name the same way. */
#ifndef WEFT_CLUSTER_SLOT_H
#define WEFT_CLUSTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS 16384

uint16_t crc16_xmodem(const char *p, size_t n);
unsigned cluster_slot(const char *key, size_t n);

#endif
