/* guard_chatprompt.c - guard prompt --chat: the generator's prompt for a chat, as text or
 * token ids, to check it against the model's chat template. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/conv.h"
#include "cli/cli.h"
#include "core/model.h"
#include "core/tok.h"
#include "generator/chat.h"

#define CHAT_USAGE "guard prompt --chat [-m model] [--format llama3|llama2|auto] [--date D] " \
	"[--ids] < chat.json"

static int
chat_usage(void)
{
	fprintf(stderr, "usage: %s\n", CHAT_USAGE);
	return EXIT_USAGE;
}

int
prompt_wants_chat(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--chat") == 0)
			return 1;
	return 0;
}

int
cmd_prompt_chat(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "chat", no_argument, NULL, 'C' }, { "model", required_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'f' }, { "date", required_argument, NULL, 'd' },
		{ "ids", no_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum chat_format f = CHAT_FMT_AUTO;
	const char *mpath = NULL, *date = NULL;
	struct model *m = NULL;
	const struct tok *t = NULL;
	struct buf text = { 0 };
	struct tokvec ids = { 0 };
	struct chat chat;
	struct err e;
	json_t *root;
	int want_ids = 0, c, rc = EXIT_BAD;
	size_t len;
	char *in;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:h", lo, NULL)) != -1)
		switch (c) {
		case 'C': break;
		case 'm': mpath = optarg; break;
		case 'd': date = optarg; break;
		case 'i': want_ids = 1; break;
		case 'f':
			if (chat_format_parse(optarg, &f) == -1) {
				warnx_("--format: '%s' is not llama3, llama2 or auto", optarg);
				return chat_usage();
			}
			break;
		default: return chat_usage();
		}
	if (optind != argc)
		return chat_usage();
	if (mpath == NULL && (want_ids || f == CHAT_FMT_AUTO)) {
		warnx_("prompt --chat: %s needs the model (-m)", want_ids ? "--ids" :
		    "choosing the format without --format");
		return chat_usage();
	}
	if ((in = read_stdin(&len)) == NULL)
		return EXIT_BAD;
	if (conv_json_load(in, len, &root, &e) == -1) {
		warnx_("stdin: %s", e.msg);
		free(in);
		return EXIT_BAD;
	}
	free(in);
	if (chat_from_json(&chat, root, 0, &e) == -1) {
		warnx_("stdin: %s", e.msg);
		json_decref(root);
		return EXIT_BAD;
	}
	json_decref(root);
	if (mpath && (m = open_model(mpath)) == NULL)
		goto out;
	if (m && (t = model_tok(m)) == NULL) {
		warnx_("%s: the model has no tokenizer", mpath);
		goto out;
	}
	if (chat_render(&chat, f, date, t, &text, want_ids ? &ids : NULL, &e) == -1) {
		warnx_("stdin: %s", e.msg);
		goto out;
	}
	if (want_ids) {
		for (size_t i = 0; i < ids.n; i++)
			printf("%s%d", i ? " " : "", ids.v[i]);
		printf("\n");
	} else
		fwrite(text.p, 1, text.n, stdout);
	rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
out:
	chat_free(&chat);
	buf_free(&text);
	tokvec_free(&ids);
	model_close(m);
	return rc;
}
