/* cli.h - subcommands of the `bitvla` executable (one file per command in cli/). */
#ifndef BV_CLI_H
#define BV_CLI_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const char *help;
    int (*fn)(int argc, char **argv);
} bv_cli_command;

/* true if argv contains --help or -h (prints nothing) */
int bv_cli_wants_help(int argc, char **argv);

/* Number flags (src/common.h bv_parse_int / bv_parse_double: the whole value, within [lo, hi]).
 * On a bad or missing (NULL) value print "bitvla CMD: FLAG expects ..." to stderr and return
 * false; *out is set only on success. */
bool bv_cli_int(const char *cmd, const char *flag, const char *v, int lo, int hi, int *out);
bool bv_cli_int64(const char *cmd, const char *flag, const char *v, long long lo, long long hi, int64_t *out);
bool bv_cli_double(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out);

/* OpenMP threads for one of `ranks_here` MPI ranks on this machine when neither a flag nor
 * OMP_NUM_THREADS says: the CPUs this process may run on when it is bound to fewer than the
 * machine has (mpirun binds ranks to cores), else the machine's CPUs shared among the ranks on it
 * (at least 1). */
int bv_cli_rank_threads(int ranks_here);

int bv_cmd_version(int argc, char **argv);
int bv_cmd_bench(int argc, char **argv);
int bv_cmd_convert(int argc, char **argv);
int bv_cmd_synth(int argc, char **argv);
int bv_cmd_forward(int argc, char **argv);
int bv_cmd_info(int argc, char **argv);
int bv_cmd_tokenize(int argc, char **argv);
int bv_cmd_tokenizer(int argc, char **argv);
int bv_cmd_train(int argc, char **argv);
int bv_cmd_plot(int argc, char **argv);
int bv_cmd_infer(int argc, char **argv);
int bv_cmd_serve(int argc, char **argv);
int bv_cmd_export(int argc, char **argv);
int bv_cmd_eval(int argc, char **argv);

#endif
