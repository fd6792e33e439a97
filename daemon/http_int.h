/* http_int.h - what the HTTP front's own files (http.c, http_metrics.c) share beyond the
 * routes' contract in http.h. */
#ifndef GUARDD_HTTP_INT_H
#define GUARDD_HTTP_INT_H

#include <sys/types.h>

struct server;
struct config;
struct hreq;
struct evbuffer;
struct json_t;

/* HTTP connections open now. */
int http_connections(const struct server *s);
/* The allow_uids / allow_gids rule of the msgpack socket (conn.c), for Unix listeners. */
int peer_allowed(const struct config *cfg, uid_t uid, gid_t gid);
/* POST /guardd/request: guardd's own protocol as JSON (http_native.c). */
void http_route_native(struct hreq *h);
/* An answer with its content type: raw's bytes (drained), or else body as JSON. */
void http_reply_raw(struct hreq *h, int status, const char *ctype, struct evbuffer *raw,
    const struct json_t *body);

#endif
