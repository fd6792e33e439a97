/* listen.h - the listening socket (socket activation or a bound Unix socket). */
#ifndef GUARDD_LISTEN_H
#define GUARDD_LISTEN_H

#include "daemon/config.h"

/* Returns the non-blocking listening descriptor, or -1 with *code a sysexits status (the
 * reason is logged). *activated: it came from systemd (then the path is not ours). */
int listen_open(const struct config *cfg, int *activated, int *code);

#endif
