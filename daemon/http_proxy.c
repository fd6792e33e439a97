/* http_proxy.c - /v1/chat/completions forwarded to upstream.url (placeholder until proxy
 * mode lands: 501). */
#include "daemon/http.h"

void
http_route_proxy(struct hreq *h)
{
	hreq_error(h, 501, "server_error", "not_implemented", "proxy mode is not implemented yet");
}
