/* guard_policy.c - placeholder. */
#include "cli/cli.h"
#include "cli/guard_tools.h"
int cmd_policy(int argc, char **argv) { (void)argc; (void)argv; return EXIT_USAGE; }
