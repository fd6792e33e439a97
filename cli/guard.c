/* guard.c - the guard command: one program, a subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/guard_tools.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{ "tokenize", cmd_tokenize, "print the token ids of stdin" },
	{ "logits", cmd_logits, "run token ids, write the last position's logits" },
	{ "generate", cmd_generate, "continue token ids greedily (or sampled)" },
	{ "bench", cmd_bench, "measure load, prefill and decode speed" },
	{ "prompt", cmd_prompt, "print the Llama Guard (or --chat: the generator's) prompt" },
	{ "classify", cmd_classify, "classify one message or conversation" },
	{ "filter", cmd_filter, "classify every line of stdin" },
	{ "ping", cmd_ping, "check that guardd answers" },
	{ "stats", cmd_stats, "guardd's counters, queue and latency" },
	{ "reload", cmd_reload, "make guardd reload its policies" },
	{ "chat", cmd_chat, "a chat answer, moderated as it is generated" },
	{ "quantize", cmd_quantize, "write a quantized GGUF (Q8_0, Q4_K_M, ...)" },
	{ "eval", cmd_eval, "measure a policy on a labelled set (precision, recall, AUPRC)" },
	{ "replay", cmd_replay, "re-decide logged verdicts under another policy" },
	{ "policy", cmd_policy, "check, diff or show policies" },
};

static int
usage(void)
{
	fprintf(stderr, "usage: guard command [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(stderr, "\nguard command -h shows the options of one command; see guard(1).\n");
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage();
		return EXIT_OK;
	}
	fprintf(stderr, "guard: unknown command '%s'\n", argv[1]);
	return usage();
}
