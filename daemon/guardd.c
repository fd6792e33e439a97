/* guardd.c - the moderation daemon: options, configuration, model and policies, socket,
 * privileges, then the event loop until SIGTERM. Reads top to bottom. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "core/model.h"
#include "daemon/guardd.h"
#include "daemon/log.h"
#include "policy/policy.h"

#ifndef GUARDD_CONF
#define GUARDD_CONF "/etc/guardd/guardd.yaml"
#endif

/* what -t and early failures release (so leak checkers see a clean exit) */
static int
release(struct server *s, int code)
{
	for (int i = 0; i < s->n_pol; i++)
		policy_free(s->pol[i]);
	model_close(s->model);
	config_free(s->cfg);
	return code;
}

static void
usage(void)
{
	fprintf(stderr, "usage: guardd [-ft] [-c file]\n");
	exit(EX_USAGE);
}

static void
drop_privileges(const struct config *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		if (cfg->user)
			log_info("not root: staying the current user, not '%s'", cfg->user);
		return;
	}
	if (cfg->user == NULL) {
		log_warnx("running as root: set 'user' in %s", cfg->path);
		return;
	}
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx(EX_NOUSER, "user '%s' does not exist", cfg->user);
	if (setgroups(1, &pw->pw_gid) == -1 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatalx(EX_NOPERM, "cannot drop privileges to '%s': %s", cfg->user, strerror(errno));
	log_info("running as %s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
}

static void
socket_group(const struct config *cfg)
{
	struct group *gr;

	if (cfg->socket_group == NULL)
		return;
	if ((gr = getgrnam(cfg->socket_group)) == NULL)
		fatalx(EX_NOUSER, "group '%s' does not exist", cfg->socket_group);
	if (chown(cfg->listen, (uid_t)-1, gr->gr_gid) == -1)
		fatalx(EX_NOPERM, "chown %s: %s", cfg->listen, strerror(errno));
}

int
main(int argc, char **argv)
{
	const char *conf = GUARDD_CONF;
	int foreground = 0, test = 0, ch, code;
	struct server s;
	struct err e;

	while ((ch = getopt(argc, argv, "c:ft")) != -1)
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'f': foreground = 1; break;
		case 't': test = 1; break;
		default: usage();
		}
	if (optind != argc)
		usage();
	log_init(foreground || test, "guardd");
	memset(&s, 0, sizeof(s));
	s.t_start = now_ms();

	/* configuration, policies, model: -t stops after checking them */
	if ((s.cfg = config_load(conf, &e)) == NULL) {
		log_warnx("%s", e.msg);
		return test ? 1 : EX_CONFIG;
	}
	s.n_pol = s.cfg->n_policies;
	for (int i = 0; i < s.n_pol; i++) {
		const char *p = s.cfg->policy[i].path;
		s.pol[i] = p ? policy_load(p, &e) : policy_default();
		if (s.pol[i] == NULL) {
			log_warnx("%s", e.msg);
			return release(&s, test ? 1 : EX_CONFIG);
		}
	}
	if ((s.model = model_open(s.cfg->model, &e)) == NULL) {
		log_warnx("%s", e.msg);
		return release(&s, test ? 1 : EX_NOINPUT);
	}
	if (test) {
		fprintf(stderr, "guardd: %s: configuration OK (model %s, %s weights; %d %s)\n", conf,
		    model_hash(s.model), model_weight_type(s.model), s.n_pol,
		    s.n_pol == 1 ? "policy" : "policies");
		return release(&s, 0);
	}
	if (!foreground && daemon(0, 0) == -1)
		fatalx(EX_OSERR, "daemon: %s", strerror(errno));

	/* classifiers: the policy prefixes are computed here, before clients can connect */
	struct classifier_params cp = classifier_params_default();
	cp.n_threads = s.cfg->threads;
	cp.max_batch = s.cfg->batch;
	cp.n_ctx = s.cfg->context;
	/* one classifier, one slot per policy (slot i = policy i); held in cls[0] */
	if ((s.cls[0] = classifier_new(s.model, &cp, &e)) == NULL)
		fatalx(EX_SOFTWARE, "%s", e.msg);
	for (int i = 0; i < s.n_pol; i++)
		if (classifier_add_policy(s.cls[0], s.pol[i], &e) != i)
			fatalx(EX_SOFTWARE, "policy '%s': %s", s.cfg->policy[i].name, e.msg);
	if (vlog_open(&s.vlog, s.cfg->log_path, s.cfg->log_content, &e) == -1)
		fatalx(EX_CANTCREAT, "verdict log: %s", e.msg);

	/* the socket, then fewer privileges */
	if (server_listen(&s, &code) == -1)
		fatalx(code ? code : EX_OSERR, "cannot listen on %s", s.cfg->listen);
	if (!s.activated)
		socket_group(s.cfg);
	drop_privileges(s.cfg);

	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	TAILQ_INIT(&s.queue);
	TAILQ_INIT(&s.done);
	if (worker_start(&s) == -1)
		fatalx(EX_OSERR, "cannot start the worker thread");
	server_run(&s);

	worker_stop(&s);
	if (!s.activated)
		unlink(s.cfg->listen);
	classifier_free(s.cls[0]);
	for (int i = 0; i < s.n_pol; i++)
		policy_free(s.pol[i]);
	vlog_close(&s.vlog);
	model_close(s.model);
	close(s.done_fd);
	log_info("stopped");
	config_free(s.cfg);
	return 0;
}
