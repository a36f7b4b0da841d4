/* sdnotify.h - tell systemd (Type=notify) what the process is doing. */
#ifndef WEFT_SDNOTIFY_H
#define WEFT_SDNOTIFY_H

/* Send state ("READY=1", "STOPPING=1", "RELOADING=1\nMONOTONIC_USEC=...",
 * newline-separated assignments, see sd_notify(3)) to $NOTIFY_SOCKET.
 * Without NOTIFY_SOCKET (not started by systemd) it does nothing and returns
 * 0; else 0 or -errno. Any thread; not signal-safe (getenv). */
int sdnotify_send(const char *state);

#endif
