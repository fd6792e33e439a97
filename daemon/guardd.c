/* guardd.c - the moderation daemon: signals blocked first (a reload during start-up must not
 * kill it), options, configuration (every path made absolute before anything else), the
 * policies and model checked, the socket, then the privileged parent's loop, which forks
 * the unprivileged inference child (parent.c, child.c). Reads top to bottom. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "core/model.h"
#include "daemon/config.h"
#include "daemon/http_keys.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/priv.h"
#include "daemon/sigfwd.h"
#include "policy/policy.h"

#ifndef GUARDD_CONF
#define GUARDD_CONF "/etc/guardd/guardd.yaml"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: guardd [-ft] [-c file]\n");
	exit(EX_USAGE);
}

/* every policy parses (the parent reads them as it will on SIGHUP) */
static int
check_policies(const struct config *cfg)
{
	char *text[CONFIG_MAX_POLICIES];
	size_t len[CONFIG_MAX_POLICIES];
	char msg[1024];
	struct err e;
	int rc = 0;

	if (priv_read_policies(cfg, text, len, msg, sizeof(msg)) == -1) {
		log_warnx("%s", msg);
		return -1;
	}
	for (int i = 0; i < cfg->n_policies && rc == 0; i++) {
		struct policy *p = cfg->policy[i].path ? policy_parse(text[i], len[i],
		    cfg->policy[i].path, &e) : policy_default();
		if (p == NULL) {
			log_warnx("%s", e.msg);
			rc = -1;
		}
		policy_free(p);
	}
	priv_free_policies(text, CONFIG_MAX_POLICIES);
	return rc;
}

/* http.keys_file is readable and holds at least one key */
static int
check_keys(const struct config *cfg)
{
	char msg[1024];
	size_t len;
	char *t = priv_read_keys(cfg, &len, msg, sizeof(msg));
	int n = 0;

	if (cfg->http_keys_file == NULL)
		return 0;
	if (t == NULL) {
		log_warnx("%s", msg);
		return -1;
	}
	n = http_keys_count(t, len);
	free(t);
	if (n <= 0) {
		log_warnx("http.keys_file: %s: %s", cfg->http_keys_file, n == 0 ? "holds no key" :
		    "a key is shorter than 16 bytes or holds a byte that is not printable");
		return -1;
	}
	return 0;
}

/* -t: the configuration, the policies and the model load */
static int
config_test(const struct config *cfg, const char *conf)
{
	struct model *m;
	struct err e;

	if (check_policies(cfg) == -1 || check_keys(cfg) == -1)
		return 1;
	if ((m = model_open(cfg->model, &e)) == NULL) {
		log_warnx("%s", e.msg);
		return 1;
	}
	fprintf(stderr, "guardd: %s: configuration OK (model %s, %s weights; %d %s)\n", conf,
	    model_hash(m), model_weight_type(m), cfg->n_policies,
	    cfg->n_policies == 1 ? "policy" : "policies");
	model_close(m);
	if (cfg->gen_model != NULL) {
		if ((m = model_open(cfg->gen_model, &e)) == NULL) {
			log_warnx("generator: %s", e.msg);
			return 1;
		}
		fprintf(stderr, "guardd: %s: generator OK (model %s, %s weights)\n", conf,
		    model_hash(m), model_weight_type(m));
		model_close(m);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *conf = GUARDD_CONF;
	int foreground = 0, test = 0, ch, code, activated, fd, n_http;
	int http_fd[CONFIG_MAX_HTTP];
	struct config *cfg;
	struct err e;
	sigset_t set;

	/* from the start of main: SIGHUP/SIGTERM wait until the loop takes them (sigfwd.h) */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigfwd_install(&set);
	signal(SIGPIPE, SIG_IGN);

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

	if ((cfg = config_load(conf, &e)) == NULL) {
		log_warnx("%s", e.msg);
		return test ? 1 : EX_CONFIG;
	}
	if (test) {
		code = config_test(cfg, conf);
		config_free(cfg);
		return code;
	}
	if (check_policies(cfg) == -1 || check_keys(cfg) == -1) {
		config_free(cfg);
		return EX_CONFIG;
	}
	if (!foreground && daemon(0, 0) == -1) {
		log_warn("daemon");
		config_free(cfg);
		return EX_OSERR;
	}
	if ((fd = listen_open(cfg, &activated, &code)) == -1) {
		log_warnx("cannot listen on %s", cfg->listen);
		config_free(cfg);
		return code ? code : EX_OSERR;
	}
	for (n_http = 0; n_http < cfg->n_http_listen; n_http++)
		if ((http_fd[n_http] = listen_http_open(cfg, n_http, &code)) == -1) {
			log_warnx("cannot listen on %s", cfg->http_listen[n_http]);
			for (int i = 0; i < n_http; i++) {
				if (cfg->http_listen[i][0] == '/')
					unlink(cfg->http_listen[i]);
				close(http_fd[i]);
			}
			if (!activated)
				unlink(cfg->listen);
			close(fd);
			config_free(cfg);
			return code ? code : EX_OSERR;
		}
	code = parent_run(cfg, fd, activated, http_fd, n_http, foreground);
	config_free(cfg);
	return code;
}
