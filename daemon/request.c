/* request.c - what each decoded request asks: ping, stats and reload are answered on the
 * loop thread (all cheap); classify becomes a job for the worker. Completions come back
 * here to be answered and logged. */
#include "daemon/server.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "core/model.h"
#include "daemon/log.h"
#include "policy/policy.h"
#include "util/sha256.h"

static void
classify(struct conn *c, struct request *r)
{
	struct server *s = c->s;
	int k = r->policy[0] ? config_policy(s->cfg, r->policy) : 0;
	char msg[128];

	if (r->op == OP_CHAT && s->gen == NULL) {
		conn_send_error(c, r, PROTO_UNSUPPORTED, "this guardd hosts no chat model (see "
		    "generator.model in guardd.yaml(5))");
		proto_request_free(r);
		return;
	}

	if (k < 0) {
		snprintf(msg, sizeof(msg), "no policy named '%s'", r->policy);
		conn_send_error(c, r, PROTO_UNKNOWN_POLICY, msg);
		proto_request_free(r);
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		conn_send_error(c, r, PROTO_INTERNAL, "out of memory");
		proto_request_free(r);
		return;
	}
	j->kind = r->op == OP_CHAT ? JOB_CHAT : JOB_CLASSIFY;
	j->conn = c;
	j->req = *r;
	j->pol = k;
	j->t_arrive = now_ms();
	int limit = r->op == OP_CHAT ? s->cfg->gen_deadline_ms : s->cfg->deadline_ms;
	j->deadline = j->t_arrive + (r->deadline_ms && r->deadline_ms < limit ? r->deadline_ms :
	    limit);
	if (worker_submit(s, j, 0) == -1) {
		s->st.busy++;
		conn_send_error(c, r, PROTO_BUSY, "the queue is full, try again later");
		job_free(j);
		return;
	}
	c->refs++;
	c->inflight++;
}

void
request_handle(struct conn *c, struct request *r)
{
	struct server *s = c->s;

	s->st.by_op[r->op]++;
	if (s->draining) {
		conn_send_error(c, r, PROTO_SHUTTING_DOWN, "the daemon is shutting down");
		proto_request_free(r);
		return;
	}
	switch (r->op) {
	case OP_PING: {
		json_t *b = json_pack("{s:i, s:s}", "protocol", PROTO_VERSION, "model",
		    model_hash(s->model));
		conn_send_ok(c, r, "pong", b);
		json_decref(b);
		break;
	}
	case OP_STATS: {
		json_t *b = stats_json(s);
		conn_send_ok(c, r, "stats", b);
		json_decref(b);
		break;
	}
	case OP_RELOAD:
		control_reload_request(s, c, r);	/* takes r */
		return;
	case OP_CLASSIFY:
	case OP_CHAT:
		classify(c, r);	/* takes r */
		return;
	case OP_N:
		break;
	}
	proto_request_free(r);
}

/* the log line of one verdict (classify), or of one chat with both verdicts */
static void
log_verdict(struct server *s, struct job *j, json_t *v)
{
	json_t *o = json_deep_copy(v);
	char ts[64];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "request_id", proto_id_json(&j->req));
	json_object_set_new(o, "peer", json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)j->conn->uid,
	    "gid", (json_int_t)j->conn->gid, "pid", (json_int_t)j->conn->pid));
	json_object_set_new(o, "policy_name", json_string(s->cfg->policy[j->pol].name));
	if (j->kind == JOB_CHAT) {
		json_object_set_new(o, "op", json_string("chat"));
		json_object_set_new(o, "generator_model", json_string(model_hash(s->gen_model)));
		if (s->vlog.content == LOG_CONTENT_FULL)
			json_object_set_new(o, "response", json_stringn(j->out ? j->out : "",
			    j->out_len));
	}
	if (s->vlog.content != LOG_CONTENT_NONE) {
		json_t *msgs = json_array();
		for (size_t i = 0; i < j->req.conv.n; i++) {
			const struct conv_msg *m = &j->req.conv.msg[i];
			json_t *parts = json_array();
			for (size_t k = 0; k < m->n_parts; k++)
				json_array_append_new(parts, json_stringn(m->parts[k], m->part_len[k]));
			json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
			    m->assistant ? "assistant" : "user", "content", parts));
		}
		if (s->vlog.content == LOG_CONTENT_FULL)
			json_object_set_new(o, "messages", msgs);
		else {
			char *txt = json_dumps(msgs, JSON_COMPACT);
			char hex[65];
			sha256_hex(txt, strlen(txt), hex);
			json_object_set_new(o, "content_sha256", json_string(hex));
			free(txt);
			json_decref(msgs);
		}
	}
	vlog_write(&s->vlog, o);
	json_decref(o);
}

/* /metrics: a verdict by role and decision, and its triggered categories (slots as the
 * default policy numbers its categories; codes it lacks share the last slot) */
static void
count_verdict(struct server *s, const struct verdict *v)
{
	int role = v->role == ROLE_RESPONSE ? 1 : 0;

	s->st.verdicts[role][v->decision & 3]++;
	for (int i = 0; i < v->n_codes; i++) {
		int k = policy_find(s->pol[0], v->codes[i]);
		if (k < 0 || k >= STATS_MAX_CATS - 1)
			k = STATS_MAX_CATS - 1;
		s->st.categories[role][k]++;
	}
}

static const char *const finish_name[] = { "none", "stop", "length", "content_filter" };

/* The chat's final answer (and its log line): released text, why it ended, both verdicts. */
static void
answer_chat(struct server *s, struct job *j)
{
	const char *gm = model_hash(s->model);
	json_t *o = json_object();

	json_object_set_new(o, "text", json_stringn(j->out ? j->out : "", j->out_len));
	json_object_set_new(o, "finish_reason", json_string(finish_name[j->finish]));
	if (j->finish == FINISH_CONTENT_FILTER)
		json_object_set_new(o, "refusal", json_string(j->refusal ? j->refusal : ""));
	json_object_set_new(o, "request_verdict", verdict_to_json(&j->v, s->pol[j->pol], gm));
	json_object_set_new(o, "response_verdict", j->have_rverdict ?
	    verdict_to_json(&j->rv, s->pol[j->pol], gm) : json_null());
	json_object_set_new(o, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->n_prompt,
	    "completion_tokens", j->n_generated, "released_tokens", j->n_released));
	json_object_set_new(o, "checks", json_integer(j->n_checks));
	conn_send_ok(j->conn, &j->req, "chat", o);
	json_t *line = json_pack("{s:O, s:O, s:O, s:O, s:i, s:i, s:i, s:i, s:f}", "finish_reason",
	    json_object_get(o, "finish_reason"), "request_verdict",
	    json_object_get(o, "request_verdict"), "response_verdict",
	    json_object_get(o, "response_verdict"), "usage", json_object_get(o, "usage"),
	    "prompt_tokens", j->n_prompt, "tokens_generated", j->n_generated, "tokens_released",
	    j->n_released, "checks", j->n_checks, "check_ms", j->check_ms);
	log_verdict(s, j, line);
	json_decref(line);
	json_decref(o);
	s->st.chats++;
	s->st.chat_finish[j->finish]++;
	if (j->finish == FINISH_CONTENT_FILTER && !j->have_rverdict)
		s->st.chat_blocked_request++;
	s->st.decisions[j->v.decision]++;
	count_verdict(s, &j->v);
	if (j->have_rverdict)
		count_verdict(s, &j->rv);
	s->st.tokens_generated += (uint64_t)j->n_generated;
	s->st.tokens_released += (uint64_t)j->n_released;
	s->st.prompt_tokens += (uint64_t)j->n_prompt;
	s->st.checks += (uint64_t)j->n_checks;
	s->st.check_ms += j->check_ms;
	if (j->t_first > 0) {
		s->st.first_ms += j->t_first - j->t_arrive;
		s->st.n_first++;
	}
	stats_latency(&s->st, now_ms() - j->t_arrive);
}

static void
answer(struct server *s, struct job *j)
{
	struct conn *c = j->conn;

	if (j->dropped) {
		s->st.dropped++;
	} else if (j->status != PROTO_OK) {
		if (j->status == PROTO_TIMEOUT)
			s->st.timeouts++;
		conn_send_error(c, &j->req, j->status, j->err_msg);
	} else if (j->kind == JOB_CHAT) {
		answer_chat(s, j);
	} else {
		json_t *v = verdict_to_json(&j->v, s->pol[j->pol], model_hash(s->model));
		conn_send_ok(c, &j->req, "verdict", v);
		log_verdict(s, j, v);
		json_decref(v);
		s->st.decisions[j->v.decision]++;
		count_verdict(s, &j->v);
		stats_latency(&s->st, now_ms() - j->t_arrive);
	}
	conn_job_done(c);
	conn_release(c);
}

void
request_completions(struct server *s)
{
	struct jobq list;
	struct deltaq deltas;
	struct job *j;
	struct delta *d;

	TAILQ_INIT(&list);
	TAILQ_INIT(&deltas);
	/* both lists at once: a chat's deltas, pushed before its end, are sent before it */
	pthread_mutex_lock(&s->mu);
	TAILQ_CONCAT(&list, &s->done, link);
	TAILQ_CONCAT(&deltas, &s->deltas, link);
	pthread_mutex_unlock(&s->mu);
	while ((d = TAILQ_FIRST(&deltas)) != NULL) {
		TAILQ_REMOVE(&deltas, d, link);
		if (!atomic_load(&d->job->conn->dead)) {
			json_t *b = json_pack("{s:s%}", "text", d->text, d->len);
			conn_send_ok(d->job->conn, &d->job->req, "delta", b);
			json_decref(b);
		}
		free(d);
	}
	while ((j = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, j, link);
		if (j->kind == JOB_RELOAD)
			control_reload_done(s, j);
		else
			answer(s, j);
		job_free(j);
	}
	if (atomic_load(&s->broken))
		control_shutdown(s, EX_TEMPFAIL, "the model file changed under us (SIGBUS), "
		    "restarting on the file as it is now");
	if (s->draining)
		control_check_drained(s);
}
