/* guard_replay.c - placeholder until the replay lands in this branch. */
#include "cli/cli.h"
#include "cli/guard_tools.h"
int cmd_replay(int argc, char **argv) { (void)argc; (void)argv; return EXIT_USAGE; }
