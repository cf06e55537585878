/* bench.h - built-in benchmarks (printed figures, never pass/fail). Run through `bitvla bench`. */
#ifndef BV_BENCH_H
#define BV_BENCH_H

int bv_bench_matmul(int argc, char **argv);
int bv_bench_encoder(int argc, char **argv);
int bv_bench_ternary(int argc, char **argv);
int bv_bench_bitlinear(int argc, char **argv);
int bv_bench_loader(int argc, char **argv);
int bv_bench_fullsize(int argc, char **argv);
int bv_bench_train(int argc, char **argv);
int bv_bench_mpi(int argc, char **argv);
int bv_bench_infer(int argc, char **argv);

#endif
