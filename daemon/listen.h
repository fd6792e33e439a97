/* listen.h - the listening sockets (socket activation, bound Unix sockets, TCP for HTTP). */
#ifndef GUARDD_LISTEN_H
#define GUARDD_LISTEN_H

#include <stddef.h>

#include "daemon/config.h"
#include "util/err.h"

/* Returns the non-blocking listening descriptor, or -1 with *code a sysexits status (the
 * reason is logged). *activated: it came from systemd (then the path is not ours). */
int listen_open(const struct config *cfg, int *activated, int *code);
/* The HTTP front's listener cfg->http_listen[i]: a Unix socket (mode and group as above) or
 * a TCP socket bound to its address. Returns the descriptor or -1 with *code set. */
int listen_http_open(const struct config *cfg, int i, int *code);
/* Splits a TCP listener "host:port", "[v6]:port", ":port" or "port" (the last two mean
 * 127.0.0.1) into host and port (either may be NULL: only checking). -1 with e filled. */
int listen_tcp_parse(const char *addr, char *host, size_t hn, char *port, size_t pn,
    struct err *e);

#endif
