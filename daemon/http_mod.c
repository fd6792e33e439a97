/* http_mod.c - POST /v1/moderations (placeholder until the OpenAI routes land: 501). */
#include "daemon/http.h"

void
http_route_moderations(struct hreq *h)
{
	hreq_error(h, 501, "server_error", "not_implemented", "/v1/moderations is not "
	    "implemented yet");
}
