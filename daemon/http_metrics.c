/* http_metrics.c - GET /health (for load balancers: no key) and GET /metrics (Prometheus
 * text format 0.0.4) from the child's counters (struct stats) and gauges. */
#include "daemon/http.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "classifier/classifier.h"
#include "classifier/convcache.h"
#include "classifier/imgcache.h"
#include "core/model.h"
#include "daemon/http_int.h"
#include "daemon/server.h"
#include "policy/policy.h"

void
http_route_health(struct hreq *h)
{
	struct server *s = hreq_server(h);
	json_t *pol = json_object();

	for (int i = 0; i < s->n_pol; i++)
		json_object_set_new(pol, s->cfg->policy[i].name, json_string(policy_hash(s->pol[i])));
	/* the child serves only once the model and every policy are loaded; the parent answers
	 * 503 itself while no child is ready */
	int ready = !s->draining && !atomic_load(&s->broken);
	json_t *b = json_pack("{s:s, s:s, s:s?, s:o, s:b}", "status", ready ? "ok" :
	    s->draining ? "draining" : "restarting", "model", model_hash(s->model), "generator",
	    s->gen_model ? model_hash(s->gen_model) : NULL, "policies", pol, "proxy",
	    s->cfg->upstream_url != NULL);
	if (ready)
		hreq_reply_json(h, 200, b);
	else
		http_reply_raw(h, 503, "application/json", NULL, b);
	json_decref(b);
}

/* --- Prometheus text ------------------------------------------------------------------ */

static void
head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metric(struct evbuffer *b, const char *name, const char *type, const char *help, double v)
{
	head(b, name, type, help);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

/* a label value with \, " and newline escaped */
static void
label(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static const char *const decisions[4] = { "allow", "flag", "block", "error" };
static const char *const roles[2] = { "user", "assistant" };

/* the histogram's bounds (seconds); each log-spaced bucket of stats.c (15 % wide) counts
 * under the first bound at or above its upper edge */
static const double le_s[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	5, 10, 30, 60, 120, 300 };
#define N_LE (sizeof(le_s) / sizeof(le_s[0]))

static void
histogram(struct evbuffer *b, const struct stats *st)
{
	uint64_t cum[N_LE] = { 0 };

	head(b, "guardd_request_duration_seconds", "histogram", "Classify and chat requests, from "
	    "arrival to the answer (bucket edges exact to 15 %).");
	for (int k = 0; k < LAT_BUCKETS - 1; k++) {
		double ub = stats_bucket_le(k) / 1000.0;
		for (size_t i = 0; i < N_LE; i++)
			if (ub <= le_s[i] * (1 + 1e-9))
				cum[i] += st->lat[k];
	}
	for (size_t i = 0; i < N_LE; i++)
		evbuffer_add_printf(b, "guardd_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		    le_s[i], (unsigned long long)cum[i]);
	evbuffer_add_printf(b, "guardd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "guardd_request_duration_seconds_sum %.17g\nguardd_request_duration_seconds_count %llu\n",
	    (unsigned long long)st->n_lat, st->lat_sum_ms / 1000.0, (unsigned long long)st->n_lat);
}

static void
verdicts(struct evbuffer *b, struct server *s)
{
	const struct stats *st = &s->st;
	const struct policy *p = s->pol[0];
	size_t nc = policy_n_categories(p);

	head(b, "guardd_verdicts_total", "counter", "Verdicts by decision and by the role checked "
	    "(user: a request, assistant: a response).");
	for (int r = 0; r < 2; r++)
		for (int d = 0; d < 4; d++)
			evbuffer_add_printf(b, "guardd_verdicts_total{decision=\"%s\",role=\"%s\"} %llu\n",
			    decisions[d], roles[r], (unsigned long long)st->verdicts[r][d]);
	head(b, "guardd_verdict_categories_total", "counter", "Categories that triggered, by role "
	    "(the default policy's codes; other: codes it does not have).");
	for (int r = 0; r < 2; r++) {
		for (size_t k = 0; k < nc && k < STATS_MAX_CATS - 1; k++) {
			evbuffer_add_printf(b, "guardd_verdict_categories_total{category=\"");
			label(b, policy_category(p, k)->code);
			evbuffer_add_printf(b, "\",role=\"%s\"} %llu\n", roles[r],
			    (unsigned long long)st->categories[r][k]);
		}
		evbuffer_add_printf(b, "guardd_verdict_categories_total{category=\"other\",role=\"%s\"} "
		    "%llu\n", roles[r], (unsigned long long)st->categories[r][STATS_MAX_CATS - 1]);
	}
}

/* the image cache of a vision guard (cache.images*); all zero for a text guard or with
 * the cache off, so that dashboards need no special case */
static void
image_cache(struct evbuffer *b, struct server *s)
{
	struct imgcache_stats is;

	classifier_image_cache_stats(s->cls, &is);
	metric(b, "guardd_image_cache_lookups_total", "counter", "Image cache lookups (a vision "
	    "guard's image prompts).", (double)is.lookups);
	metric(b, "guardd_image_cache_hits_total", "counter", "Lookups that found the image with "
	    "its whole policy prefix.", (double)is.hits);
	metric(b, "guardd_image_cache_partial_hits_total", "counter", "Lookups that found the "
	    "image with part of the prefix (another policy or role).", (double)is.partial);
	metric(b, "guardd_image_cache_misses_total", "counter", "Lookups that ran the vision tower "
	    "and the whole prefix.", (double)is.misses);
	metric(b, "guardd_image_cache_evictions_total", "counter", "Entries dropped for the count "
	    "or byte budget (cache.images, cache.images_mb).", (double)is.evictions);
	metric(b, "guardd_image_cache_entries", "gauge", "Entries the image cache holds.",
	    (double)is.entries);
	metric(b, "guardd_image_cache_bytes", "gauge", "Bytes the image cache holds.",
	    (double)is.bytes);
}

void
http_route_metrics(struct hreq *h)
{
	struct server *s = hreq_server(h);
	const struct stats *st = &s->st;
	struct evbuffer *b = evbuffer_new();
	int depth, working;
	static const char *const ops[OP_N] = { "classify", "ping", "stats", "reload", "chat" };
	static const char *const finishes[4] = { "none", "stop", "length", "content_filter" };

	if (b == NULL) {
		hreq_error(h, 500, NULL, "internal", "out of memory");
		return;
	}
	pthread_mutex_lock(&s->mu);
	depth = s->queued;
	working = s->working;
	pthread_mutex_unlock(&s->mu);

	head(b, "guardd_info", "gauge", "The models and the process serving.");
	evbuffer_add_printf(b, "guardd_info{model=\"%s\",generator=\"%s\",proxy=\"%s\"} 1\n",
	    model_hash(s->model), s->gen_model ? model_hash(s->gen_model) : "",
	    s->cfg->upstream_url ? "true" : "false");
	head(b, "guardd_policy_info", "gauge", "The policies loaded, by name and hash.");
	for (int i = 0; i < s->n_pol; i++) {
		evbuffer_add_printf(b, "guardd_policy_info{name=\"");
		label(b, s->cfg->policy[i].name);
		evbuffer_add_printf(b, "\",hash=\"%s\"} 1\n", policy_hash(s->pol[i]));
	}
	metric(b, "guardd_uptime_seconds", "gauge", "Seconds since the inference process started.",
	    (now_ms() - s->t_start) / 1e3);
	metric(b, "guardd_process_restarts", "gauge", "Inference processes the privileged one "
	    "restarted before this one.", s->restarts);
	verdicts(b, s);
	histogram(b, st);
	metric(b, "guardd_queue_depth", "gauge", "Requests waiting for the model.", depth);
	metric(b, "guardd_queue_working", "gauge", "Requests the model works on now.", working);
	metric(b, "guardd_queue_capacity", "gauge", "limits.max_queue.", s->cfg->max_queue);
	head(b, "guardd_requests_total", "counter", "Requests by op (msgpack and HTTP).");
	for (int i = 0; i < OP_N; i++)
		evbuffer_add_printf(b, "guardd_requests_total{op=\"%s\"} %llu\n", ops[i],
		    (unsigned long long)st->by_op[i]);
	head(b, "guardd_errors_total", "counter", "Errors answered, by kind.");
	evbuffer_add_printf(b, "guardd_errors_total{kind=\"busy\"} %llu\n"
	    "guardd_errors_total{kind=\"timeout\"} %llu\nguardd_errors_total{kind=\"bad_request\"} %llu\n"
	    "guardd_errors_total{kind=\"forbidden\"} %llu\nguardd_errors_total{kind=\"dropped\"} %llu\n",
	    (unsigned long long)st->busy, (unsigned long long)st->timeouts,
	    (unsigned long long)st->bad_requests, (unsigned long long)st->forbidden,
	    (unsigned long long)st->dropped);
	head(b, "guardd_chats_total", "counter", "Chats answered by the co-hosted generator, by "
	    "finish_reason.");
	for (int i = 1; i < 4; i++)
		evbuffer_add_printf(b, "guardd_chats_total{finish_reason=\"%s\"} %llu\n", finishes[i],
		    (unsigned long long)st->chat_finish[i]);
	metric(b, "guardd_chat_blocked_requests_total", "counter", "Chats refused before "
	    "generating (the request check blocked).", (double)st->chat_blocked_request);
	metric(b, "guardd_prompt_tokens_total", "counter", "Prompt tokens of chats.",
	    (double)st->prompt_tokens);
	metric(b, "guardd_tokens_generated_total", "counter", "Tokens the generator produced.",
	    (double)st->tokens_generated);
	metric(b, "guardd_tokens_released_total", "counter", "Generated tokens released to clients "
	    "after the response check passed them.", (double)st->tokens_released);
	metric(b, "guardd_response_checks_total", "counter", "Response checks of streamed text.",
	    (double)st->checks);
	metric(b, "guardd_stream_blocks_total", "counter", "Streams stopped by the response "
	    "check (co-hosted and proxied).", (double)st->stream_blocks);
	metric(b, "guardd_upstream_requests_total", "counter", "Requests forwarded upstream "
	    "(proxy mode).", (double)st->upstream_requests);
	metric(b, "guardd_upstream_errors_total", "counter", "Upstream failures: connection, "
	    "TLS, HTTP status, timeouts, malformed streams.", (double)st->upstream_errors);
	metric(b, "guardd_upstream_blocked_requests_total", "counter", "Proxied requests blocked "
	    "before reaching the upstream.", (double)st->upstream_blocked_requests);
	metric(b, "guardd_http_requests_total", "counter", "HTTP requests received.",
	    (double)st->http_requests);
	metric(b, "guardd_http_errors_total", "counter", "HTTP requests answered with an error "
	    "status.", (double)st->http_errors);
	metric(b, "guardd_http_connections", "gauge", "HTTP connections open.",
	    http_connections(s));
	metric(b, "guardd_http_inflight", "gauge", "HTTP requests not yet answered and written.",
	    http_inflight(s));
	metric(b, "guardd_connections", "gauge", "msgpack connections open.", s->n_conns);
	struct convcache_stats cs;
	classifier_cache_stats(s->cls, &cs);
	metric(b, "guardd_conversation_cache_lookups_total", "counter", "Conversation cache "
	    "lookups.", (double)cs.lookups);
	metric(b, "guardd_conversation_cache_hits_total", "counter", "Lookups that reused cached "
	    "positions.", (double)cs.hits);
	metric(b, "guardd_conversation_cache_bytes", "gauge", "Bytes the conversation cache holds.",
	    (double)cs.bytes);
	image_cache(b, s);
	http_reply_raw(h, 200, "text/plain; version=0.0.4; charset=utf-8", b, NULL);
	evbuffer_free(b);
}
