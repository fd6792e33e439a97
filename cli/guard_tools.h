/* guard_tools.h - the policy-tuning subcommands: guard eval, guard replay, guard policy. */
#ifndef GUARDD_GUARD_TOOLS_H
#define GUARDD_GUARD_TOOLS_H

int cmd_eval(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_policy(int argc, char **argv);

#endif
