/* child.c - the inference process: drops privileges first, then maps the model, computes
 * the policy prefixes and serves the inherited socket until drained. It never sees the
 * policy files or the log file, only what the parent passes it. */
#include "daemon/priv.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "core/pool.h"
#include "daemon/chan.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/sigbus.h"
#include "generator/chat.h"
#include "generator/gen.h"
#include "policy/policy.h"

static int
drop_privileges(const struct config *cfg)
{
	uid_t uid;
	gid_t gid;
	char msg[256];

	if (priv_user(cfg, &uid, &gid, msg, sizeof(msg)) == -1) {
		log_warnx("%s", msg);
		return -1;
	}
	if (uid == (uid_t)-1)
		return 0;
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		log_warn("cannot drop privileges to '%s'", cfg->user);
		return -1;
	}
	/* no way back: a check that fails loudly rather than serve as root */
	if (setuid(0) != -1 || geteuid() == 0) {
		log_warnx("privileges could be regained after dropping them");
		return -1;
	}
	return 0;
}

static void
release(struct server *s)
{
	generator_free(s->gen);
	classifier_free(s->cls);
	model_close(s->gen_model);
	pool_free(s->pool);
	for (int i = 0; i < s->n_pol; i++)
		policy_free(s->pol[i]);
	model_close(s->model);
	vlog_close(&s->vlog);
	chan_free(s->chan);
}

/* a vision model with no preprocessor config preprocesses images with Meta's values: said
 * once, at start */
static void
warn_image_prep(const struct model *m)
{
	struct imgprep_config pc;
	struct err e;
	char note[4600];

	if (model_image_token(m) >= 0 && mllama_prep_config(m, &pc, note, sizeof(note), &e) == 0)
		log_warnx("%s", note);
}

int
child_main(struct priv_start *ps)
{
	struct server s;
	struct err e;

	memset(&s, 0, sizeof(s));
	s.t_start = now_ms();
	s.cfg = (struct config *)ps->cfg;
	s.listen_fd = ps->listen_fd;
	s.activated = ps->activated;
	s.parent_pid = ps->parent_pid;
	s.restarts = ps->restarts;
	s.n_pol = ps->cfg->n_policies;
	s.n_http_fd = ps->n_http_fd;
	for (int i = 0; i < ps->n_http_fd; i++)
		s.http_fd[i] = ps->http_fd[i];
	s.chan = chan_new(ps->chan_fd);
	vlog_init(&s.vlog, ps->cfg->log_path, ps->log_fd, ps->cfg->log_content);
	/* if the parent dies, so do we (gracefully) */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != ps->parent_pid)
		return EX_SOFTWARE;
	if (drop_privileges(ps->cfg) == -1) {
		release(&s);
		return EX_NOPERM;
	}

	/* now, unprivileged: the policies, the model, the classifier (threads start here) */
	for (int i = 0; i < s.n_pol; i++) {
		const char *path = ps->cfg->policy[i].path;
		s.pol[i] = path ? policy_parse(ps->text[i], ps->text_len[i], path, &e) :
		    policy_default();
		if (s.pol[i] == NULL) {
			log_warnx("%s", e.msg);
			release(&s);
			return EX_CONFIG;
		}
	}
	priv_free_policies(ps->text, CONFIG_MAX_POLICIES);
	if ((s.model = model_open(ps->cfg->model, &e)) == NULL) {
		log_warnx("%s", e.msg);
		release(&s);
		return EX_NOINPUT;
	}
	if (sigbus_guard(ps->cfg->model) == -1)
		log_warnx("%s: cannot guard its mapping against truncation", ps->cfg->model);
	warn_image_prep(s.model);
	if (ps->cfg->gen_model != NULL) {
		if ((s.gen_model = model_open(ps->cfg->gen_model, &e)) == NULL) {
			log_warnx("generator: %s", e.msg);
			release(&s);
			return EX_NOINPUT;
		}
		if (sigbus_guard(ps->cfg->gen_model) == -1)
			log_warnx("%s: cannot guard its mapping against truncation", ps->cfg->gen_model);
		warn_image_prep(s.gen_model);
	}
	/* one set of threads for both models: they run on the worker thread in turn */
	if ((s.pool = pool_new(s.cfg->threads > 0 ? s.cfg->threads : pool_default_threads())) ==
	    NULL) {
		log_warnx("cannot start the model threads");
		release(&s);
		return EX_OSERR;
	}
	struct classifier_params cp = classifier_params_default();
	cp.n_threads = s.cfg->threads;
	cp.max_batch = s.cfg->batch;
	cp.n_ctx = s.cfg->context;
	cp.pool = s.pool;
	cp.max_streams = s.gen_model ? s.cfg->gen_max_chats : 0;
	cp.conv_cache_bytes = (size_t)s.cfg->conv_cache_mb << 20;
	cp.image_cache_bytes = (size_t)s.cfg->img_cache_mb << 20;
	cp.image_cache_entries = s.cfg->img_cache_entries;
	if ((s.cls = classifier_new(s.model, &cp, &e)) == NULL) {
		log_warnx("classifier: %s", e.msg);
		release(&s);
		return EX_SOFTWARE;
	}
	for (int i = 0; i < s.n_pol; i++)
		if (classifier_add_policy(s.cls, s.pol[i], &e) != i) {
			log_warnx("policy '%s': %s", s.cfg->policy[i].name, e.msg);
			release(&s);
			return EX_CONFIG;
		}
	if (s.gen_model != NULL) {
		struct generator_params gp = { .n_ctx = s.cfg->gen_context,
			.n_seq = s.cfg->gen_max_chats, .pool = s.pool };
		s.gen_format = s.cfg->gen_format;
		if (s.gen_format == CHAT_FMT_AUTO)
			s.gen_format = chat_format_of(model_tok(s.gen_model));
		if (model_tok(s.gen_model) == NULL) {
			log_warnx("generator: %s has no tokenizer", s.cfg->gen_model);
			release(&s);
			return EX_CONFIG;
		}
		if ((s.gen = generator_new(s.gen_model, &gp, &e)) == NULL) {
			log_warnx("generator: %s", e.msg);
			release(&s);
			return EX_SOFTWARE;
		}
	}

	/* serve */
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	TAILQ_INIT(&s.queue);
	TAILQ_INIT(&s.done);
	TAILQ_INIT(&s.deltas);
	TAILQ_INIT(&s.chats);
	TAILQ_INIT(&s.conns);
	if ((s.base = event_base_new()) == NULL || conn_listen(&s) == -1 ||
	    http_keys_set(&s, ps->keys, ps->keys_len) == -1 || http_start(&s) == -1 ||
	    worker_start(&s) == -1) {
		log_warnx("cannot start serving");
		free(ps->keys);
		http_free(&s);
		release(&s);
		return EX_OSERR;
	}
	free(ps->keys);	/* only the digests are kept */
	ps->keys = NULL;
	control_start(&s);
	if (chan_send(s.chan, CHAN_READY, NULL, 0, -1) == -1)
		log_warn("telling the privileged process we are ready");
	log_info("ready: %s (model %.16s, %d %s, %s%.16s, pid %d)", s.activated ?
	    "socket from systemd" : s.cfg->listen, model_hash(s.model), s.n_pol,
	    s.n_pol == 1 ? "policy" : "policies", s.gen ? "generator " : "no generator",
	    s.gen ? model_hash(s.gen_model) : "", (int)getpid());
	event_base_dispatch(s.base);

	/* drained (or the parent is gone): close everything */
	worker_stop(&s);
	request_completions(&s);
	conn_close_all(&s);
	http_free(&s);
	control_stop(&s);
	if (s.lis)
		evconnlistener_free(s.lis);
	event_base_free(s.base);
	close(s.done_fd);
	release(&s);
	return s.exit_code;
}
