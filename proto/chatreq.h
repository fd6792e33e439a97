/* chatreq.h - the chat op's fields of a request (request.c's schema calls it). */
#ifndef GUARDD_CHATREQ_H
#define GUARDD_CHATREQ_H

#include "proto/proto.h"

/* Reads messages (with the generator's chat decoder), the sampling fields and stop strings
 * of a chat request into r->chat and r->copt, and builds r->conv, the guard's view. */
enum proto_status chatreq_parse(const struct json_t *o, const struct proto_limits *l,
    struct request *r, struct err *e);

#endif
