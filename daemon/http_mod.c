/* http_mod.c - POST /v1/moderations (guardd-http(7)): OpenAI's moderation request, each
 * input a classify request through request_handle as the msgpack front sends them (queued
 * together, so they share the worker's batch), and OpenAI's moderation response with the
 * guard's full verdict in each result's `guardd` object. */
#include "daemon/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "daemon/http.h"
#include "daemon/http_id.h"
#include "policy/policy.h"
#include "proto/oai.h"

struct mod {
	size_t n, pending;
	json_t *verdict[OAI_MAX_INPUTS];
	int image[OAI_MAX_INPUTS];	/* the input had an image: the guard judged it too */
	enum proto_status st;		/* the first error, PROTO_OK if none */
	char msg[512];
	char policy[64];
	char model[128];
};

/* Every answer is in: the results in input order, or the first error. */
static void
mod_reply(struct hreq *h, struct mod *m)
{
	struct server *s = hreq_server(h);
	const char *codes[64];
	size_t nc = 0;
	char id[48];

	if (m->st != PROTO_OK) {
		hreq_error_status(h, m->st, m->msg);
		return;
	}
	/* the codes the guard was shown for a user's message (an excluded code is not
	 * assessed, so it is not reported as false), when the verdicts came from the policy in
	 * place now */
	int k = m->policy[0] ? config_policy(s->cfg, m->policy) : 0;
	const json_t *ph = json_object_get(m->verdict[0], "policy_hash");
	if (k >= 0 && k < s->n_pol && s->pol[k] && json_is_string(ph) &&
	    strcmp(json_string_value(ph), policy_hash(s->pol[k])) == 0)
		for (size_t i = 0; i < policy_n_categories(s->pol[k]) && nc < 64; i++)
			if (!policy_category(s->pol[k], i)->exclude[ROLE_REQUEST])
				codes[nc++] = policy_category(s->pol[k], i)->code;
	json_t *res = json_array();
	for (size_t i = 0; i < m->n; i++) {
		json_t *r = oai_mod_result(m->verdict[i], codes, nc), *types;
		const char *key;
		json_t *v;
		/* as OpenAI reports it: each category was applied to the image as well */
		if (m->image[i] && (types = json_object_get(r, "category_applied_input_types")))
			json_object_foreach(types, key, v)
				json_array_append_new(v, json_string("image"));
		json_array_append_new(res, r);
	}
	http_random_id(id, sizeof(id), "modr-");
	json_t *o = oai_mod_response(id, m->model, res);
	hreq_reply_json(h, 200, o);
	json_decref(o);
}

/* the input a request's id names (ids are msgpack positive fixints 0..n-1) */
static int
input_of(const struct mod *m, const struct request *r)
{
	return r->id_len == 1 && r->id[0] < m->n ? r->id[0] : -1;
}

static void
mod_done(struct hreq *h, struct mod *m)
{
	if (--m->pending == 0)
		mod_reply(h, m);
}

static void
mod_ok(struct hreq *h, const struct request *r, const char *key, const json_t *body)
{
	struct mod *m = hreq_arg(h);
	int i = input_of(m, r);

	if (i < 0 || m->verdict[i] != NULL || m->pending == 0)
		return;
	if (strcmp(key, "verdict") == 0)
		m->verdict[i] = json_incref((json_t *)body);
	else if (m->st == PROTO_OK) {
		m->st = PROTO_INTERNAL;
		snprintf(m->msg, sizeof(m->msg), "input %d: an answer '%s' instead of a verdict", i,
		    key);
	}
	mod_done(h, m);
}

static void
mod_error(struct hreq *h, const struct request *r, enum proto_status st, const char *msg)
{
	struct mod *m = hreq_arg(h);
	int i = input_of(m, r);

	if (i < 0 || m->pending == 0)
		return;
	if (m->st == PROTO_OK) {
		m->st = st;
		if (m->n > 1)
			snprintf(m->msg, sizeof(m->msg), "input[%d]: %s", i, msg);
		else
			snprintf(m->msg, sizeof(m->msg), "%s", msg);
	}
	mod_done(h, m);
}

static void
mod_free(struct hreq *h)
{
	struct mod *m = hreq_arg(h);

	for (size_t i = 0; i < m->n; i++)
		json_decref(m->verdict[i]);
	free(m);
}

static const struct hreq_ops mod_ops = { mod_ok, mod_error, NULL, mod_free };

/* The guard's name as /v1/models lists it; a request may also name it by its SHA-256. */
static int
model_ok(struct server *s, const char *want, char *id, size_t n)
{
	oai_model_id(s->cfg->model, id, n);
	return want == NULL || strcmp(want, id) == 0 || strcmp(want, model_hash(s->model)) == 0;
}

void
http_route_moderations(struct hreq *h)
{
	struct server *s = hreq_server(h);
	struct proto_limits lim = { s->cfg->max_request_bytes, s->cfg->max_messages,
	    s->cfg->max_image_bytes, s->cfg->max_images };
	struct request *rs;
	struct oai_opts o;
	struct err e;
	size_t n;
	char pol[64], msg[400];
	json_t *body;
	struct mod *m;

	if ((body = hreq_body_json(h)) == NULL)	/* answered; the hreq owns the body */
		return;
	if (hreq_policy(h, body, pol, sizeof(pol)) == -1)
		return;	/* answered */
	enum proto_status st = oai_mod_parse(body, pol, &lim, &rs, &n, &o, &e);
	if (st != PROTO_OK) {
		if (st == PROTO_BAD_REQUEST)
			hreq_error(h, 400, "invalid_request_error", o.code, e.msg);
		else
			hreq_error_status(h, st, e.msg);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		oai_requests_free(rs, n);
		hreq_error_status(h, PROTO_INTERNAL, "out of memory");
		return;
	}
	if (!model_ok(s, o.model, m->model, sizeof(m->model))) {
		snprintf(msg, sizeof(msg), "model: no model '%.128s' here (this guardd's guard is '%s')",
		    o.model, m->model);
		hreq_error(h, 404, "invalid_request_error", "model_not_found", msg);
		oai_requests_free(rs, n);
		free(m);
		return;
	}
	m->n = m->pending = n;
	snprintf(m->policy, sizeof(m->policy), "%s", pol);
	hreq_set_ops(h, &mod_ops, m);
	/* queued together: the worker takes them as one batch (answers may come back at once,
	 * even before the loop ends: the hreq then stays until its last job is done) */
	struct conn *c = hreq_conn(h);
	worker_hold(s, 1);
	for (size_t i = 0; i < n; i++)
		m->image[i] = rs[i].n_img > 0;
	for (size_t i = 0; i < n; i++) {
		request_handle(c, &rs[i]);	/* takes rs[i] */
		memset(&rs[i], 0, sizeof(rs[i]));
	}
	worker_hold(s, 0);
	oai_requests_free(rs, n);
}
