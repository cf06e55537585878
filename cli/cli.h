/* cli.h - subcommands of the `bitvla` executable (one file per command in cli/). */
#ifndef BV_CLI_H
#define BV_CLI_H

typedef struct {
    const char *name;
    const char *help;
    int (*fn)(int argc, char **argv);
} bv_cli_command;

/* true if argv contains --help or -h (prints nothing) */
int bv_cli_wants_help(int argc, char **argv);

int bv_cmd_version(int argc, char **argv);
int bv_cmd_bench(int argc, char **argv);
int bv_cmd_convert(int argc, char **argv);
int bv_cmd_synth(int argc, char **argv);
int bv_cmd_forward(int argc, char **argv);
int bv_cmd_info(int argc, char **argv);
int bv_cmd_tokenize(int argc, char **argv);
int bv_cmd_tokenizer(int argc, char **argv);

#endif
