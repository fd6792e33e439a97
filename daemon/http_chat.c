/* http_chat.c - POST /v1/chat/completions and GET /v1/models (placeholders until the
 * OpenAI routes land: 501). */
#include "daemon/http.h"

void
http_route_chat(struct hreq *h)
{
	hreq_error(h, 501, "server_error", "not_implemented", "/v1/chat/completions is not "
	    "implemented yet");
}

void
http_route_models(struct hreq *h)
{
	hreq_error(h, 501, "server_error", "not_implemented", "/v1/models is not implemented yet");
}
