/* stats.c - the `stats` answer (and the latency buckets /metrics reads, stats_bucket_le). Latencies go into log-spaced buckets (each 15 % wider than
 * the last, from 0.05 ms), so a percentile costs a walk over 128 counters on the loop
 * thread instead of a sort; it is reported as the bucket's geometric middle (±7 %). */
#include "daemon/server.h"

#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/convcache.h"
#include "classifier/imgcache.h"
#include "core/model.h"
#include "daemon/http.h"
#include "daemon/http_int.h"
#include "generator/chat.h"
#include "policy/policy.h"

#define LAT_MIN 0.05
#define LAT_STEP 1.15

void
stats_latency(struct stats *st, double ms)
{
	int b = ms <= LAT_MIN ? 0 : (int)(log(ms / LAT_MIN) / log(LAT_STEP)) + 1;

	if (b >= LAT_BUCKETS)
		b = LAT_BUCKETS - 1;
	st->lat[b]++;
	st->n_lat++;
	st->lat_sum_ms += ms;
}

double
stats_bucket_le(int b)
{
	return b == 0 ? LAT_MIN : LAT_MIN * pow(LAT_STEP, b);
}

static json_t *
percentile(const struct stats *st, double p)
{
	uint64_t want, seen = 0;

	if (st->n_lat == 0)
		return json_null();
	want = (uint64_t)ceil(p * (double)st->n_lat);
	if (want == 0)
		want = 1;
	for (int b = 0; b < LAT_BUCKETS; b++) {
		seen += st->lat[b];
		if (seen >= want) {
			if (b == 0)
				return json_real(LAT_MIN);
			double lo = LAT_MIN * pow(LAT_STEP, b - 1), hi = lo * LAT_STEP;
			return json_real(sqrt(lo * hi));
		}
	}
	return json_null();
}

json_t *
stats_json(struct server *s)
{
	const struct stats *st = &s->st;
	json_t *o = json_object(), *pol = json_object(), *q = json_object();

	pthread_mutex_lock(&s->mu);
	json_object_set_new(q, "depth", json_integer(s->queued));
	json_object_set_new(q, "working", json_integer(s->working));
	pthread_mutex_unlock(&s->mu);
	json_object_set_new(q, "max", json_integer(s->cfg->max_queue));
	for (int i = 0; i < s->n_pol; i++)
		json_object_set_new(pol, s->cfg->policy[i].name, json_pack("{s:s, s:s, s:b}", "name",
		    policy_name(s->pol[i]), "hash", policy_hash(s->pol[i]), "on_error_blocks",
		    policy_on_error(s->pol[i]) == ACTION_BLOCK));
	json_object_set_new(o, "uptime_s", json_real((now_ms() - s->t_start) / 1e3));
	json_object_set_new(o, "process", json_pack("{s:I, s:I, s:i}", "pid", (json_int_t)getpid(),
	    "parent_pid", (json_int_t)s->parent_pid, "restarts", s->restarts));
	json_object_set_new(o, "connections", json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "current", s->n_conns, "total", (json_int_t)st->conns_total, "rejected",
	    (json_int_t)st->conns_rejected, "idle_closed", (json_int_t)st->idle_closed,
	    "read_timeouts", (json_int_t)st->read_timeouts, "write_timeouts",
	    (json_int_t)st->write_timeouts, "paused", (json_int_t)st->paused));
	json_object_set_new(o, "framing", json_pack("{s:I, s:I}", "bytes_in",
	    (json_int_t)st->bytes_in, "bytes_scanned", (json_int_t)st->bytes_scanned));
	json_object_set_new(o, "requests", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total",
	    (json_int_t)st->requests, "classify", (json_int_t)st->by_op[OP_CLASSIFY],
	    "ping", (json_int_t)st->by_op[OP_PING], "stats", (json_int_t)st->by_op[OP_STATS],
	    "reload", (json_int_t)st->by_op[OP_RELOAD], "chat", (json_int_t)st->by_op[OP_CHAT]));
	if (s->gen != NULL) {
		json_object_set_new(o, "chat", json_pack("{s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
		    "s:I, s:I, s:f, s:o}",
		    "answered", (json_int_t)st->chats, "active", atomic_load(&s->chats_active),
		    "stop", (json_int_t)st->chat_finish[FINISH_STOP],
		    "length", (json_int_t)st->chat_finish[FINISH_LENGTH],
		    "content_filter", (json_int_t)st->chat_finish[FINISH_CONTENT_FILTER],
		    "blocked_request", (json_int_t)st->chat_blocked_request,
		    "prompt_tokens", (json_int_t)st->prompt_tokens,
		    "tokens_generated", (json_int_t)st->tokens_generated,
		    "tokens_released", (json_int_t)st->tokens_released,
		    "checks", (json_int_t)st->checks, "check_ms", st->check_ms,
		    "first_release_ms_mean", st->n_first ? json_real(st->first_ms / (double)st->n_first) :
		    json_null()));
		json_object_set_new(o, "generator", json_pack("{s:s, s:s, s:s, s:s}", "path",
		    model_path(s->gen_model), "hash", model_hash(s->gen_model), "weight_type",
		    model_weight_type(s->gen_model), "format",
		    chat_format_name((enum chat_format)s->gen_format)));
	}
	json_object_set_new(o, "verdicts", json_pack("{s:I, s:I, s:I, s:I}", "allow",
	    (json_int_t)st->decisions[0], "flag", (json_int_t)st->decisions[1], "block",
	    (json_int_t)st->decisions[2], "error", (json_int_t)st->decisions[3]));
	json_object_set_new(o, "errors", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total",
	    (json_int_t)st->errors_total, "busy", (json_int_t)st->busy, "timeout",
	    (json_int_t)st->timeouts, "bad_request", (json_int_t)st->bad_requests, "dropped",
	    (json_int_t)st->dropped, "forbidden", (json_int_t)st->forbidden));
	/* read while the worker may be classifying: the counters are atomic */
	struct convcache_stats cs;
	classifier_cache_stats(s->cls, &cs);
	json_object_set_new(o, "conversation_cache", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I}", "budget_bytes", (json_int_t)cs.budget, "bytes", (json_int_t)cs.bytes,
	    "entries", (json_int_t)cs.entries, "lookups", (json_int_t)cs.lookups, "hits",
	    (json_int_t)cs.hits, "tokens_reused", (json_int_t)cs.tokens_reused, "stores",
	    (json_int_t)cs.stores, "evictions", (json_int_t)cs.evictions));
	struct imgcache_stats is;
	classifier_image_cache_stats(s->cls, &is);
	json_object_set_new(o, "image_cache", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I}", "budget_bytes", (json_int_t)is.budget, "max_entries",
	    (json_int_t)is.max_entries, "bytes", (json_int_t)is.bytes, "entries",
	    (json_int_t)is.entries, "lookups", (json_int_t)is.lookups, "hits", (json_int_t)is.hits,
	    "partial_hits", (json_int_t)is.partial, "misses", (json_int_t)is.misses, "stores",
	    (json_int_t)is.stores, "evictions", (json_int_t)is.evictions));
	json_object_set_new(o, "http", json_pack("{s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:I}",
	    "requests", (json_int_t)st->http_requests, "errors", (json_int_t)st->http_errors,
	    "connections", http_connections(s), "inflight", http_inflight(s), "stream_blocks",
	    (json_int_t)st->stream_blocks, "upstream_requests", (json_int_t)st->upstream_requests,
	    "upstream_errors", (json_int_t)st->upstream_errors, "upstream_blocked_requests",
	    (json_int_t)st->upstream_blocked_requests));
	json_object_set_new(o, "queue", q);
	json_object_set_new(o, "latency_ms", json_pack("{s:I, s:o, s:o, s:o}", "count",
	    (json_int_t)st->n_lat, "p50", percentile(st, 0.5), "p90", percentile(st, 0.9), "p99",
	    percentile(st, 0.99)));
	json_object_set_new(o, "log", json_pack("{s:s?, s:I, s:I, s:I, s:s?}", "path",
	    s->vlog.path, "lines", (json_int_t)s->vlog.lines, "write_errors",
	    (json_int_t)s->vlog.errors, "reopen_errors", (json_int_t)st->log_reopen_errors,
	    "last_error", s->vlog.last_error[0] ? s->vlog.last_error : NULL));
	json_object_set_new(o, "model", json_pack("{s:s, s:s, s:s}", "path", model_path(s->model),
	    "hash", model_hash(s->model), "weight_type", model_weight_type(s->model)));
	json_object_set_new(o, "policies", pol);
	json_object_set_new(o, "reloads", json_pack("{s:I, s:I}", "ok", (json_int_t)st->reloads_ok,
	    "failed", (json_int_t)st->reloads_failed));
	return o;
}
