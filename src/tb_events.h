/* tb_events.h - TensorBoard event files, in the format TensorBoard itself reads: scalars a run
 * logs, viewable with `tensorboard --logdir RUN_DIR` (docs/metrics.md).
 *
 * A file `events.out.tfevents.<unix seconds, 10 digits>.<hostname>` (".<k>" appended, k = 1, 2, ...,
 * when that name is taken) is a sequence of TFRecord-framed records (src/crc32c.h):
 *     u64 length LE | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
 * each holding one serialized `tensorboard.Event` (tensorboard/compat/proto/event.proto):
 *     Event      { double wall_time = 1; int64 step = 2; oneof { string file_version = 3;
 *                  Summary summary = 5; SessionLog session_log = 7; } }
 *     Summary    { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
 *     SessionLog { SessionStatus status = 1; }    (START = 1)
 * (simple_value is a member of a oneof in the original, as are file_version and summary), encoded
 * by hand as protobuf's serializer does it: fields in number order; a plain proto3 field equal to
 * its default (all bits zero: step 0, wall_time +0.0, an empty tag) left out; a oneof member
 * written whenever set, zero or empty. A file is byte-identical to one written by Python's protobuf
 * (tests/gen/gen_tb_events.py). The first record is {wall_time, file_version:
 * "brain.Event:2"}; every later one a summary of scalars at a step.
 *
 * Wall times are arguments (seconds since the epoch, bv_tb_wall_time_now() for the clock) so tests
 * write deterministic files. The file is an append-only log that TensorBoard reads while it grows,
 * so it is not written under a temporary name: each record is written whole and flushed to the OS;
 * a kill can leave a cut-off last record, which TensorBoard skips.
 *
 * Owns: the open file and its path until bv_tb_close. Must not: know what the scalars mean.
 */
#ifndef BV_TB_EVENTS_H
#define BV_TB_EVENTS_H

#include <stdint.h>

#include "src/common.h"

typedef struct bv_tb_writer bv_tb_writer;

/* The file_version TensorBoard expects in the first record. */
#define BV_TB_FILE_VERSION "brain.Event:2"

/* Create a new event file in the existing directory `dir`, named from floor(wall_time) and this
 * machine's host name, and write its first record at `wall_time`. Never opens an existing file. */
bv_status bv_tb_open(bv_tb_writer **out, const char *dir, double wall_time);
/* The same at exactly `path`, which must not exist (tests). */
bv_status bv_tb_open_path(bv_tb_writer **out, const char *path, double wall_time);
/* The file's path (borrowed, lives as long as w). */
const char *bv_tb_path(const bv_tb_writer *w);

/* One event at `step` whose summary holds n scalars tags[i] = values[i] (float32, as TensorBoard
 * stores them; NaN and infinities are written as they are), flushed to the OS. */
bv_status bv_tb_write_scalars(bv_tb_writer *w, double wall_time, int64_t step, int n, const char *const *tags,
                              const float *values);
bv_status bv_tb_write_scalar(bv_tb_writer *w, double wall_time, int64_t step, const char *tag, float value);
/* A SessionLog START event at `step`: the run restarted there (a resume from a checkpoint). Points
 * an earlier file holds at steps >= `step` were logged by the killed run; TensorBoard drops them
 * (its Python loader on this event, its data server when a tag's step goes back). */
bv_status bv_tb_write_session_start(bv_tb_writer *w, double wall_time, int64_t step);

/* Flush and fsync the file. */
bv_status bv_tb_sync(bv_tb_writer *w);
/* Flush and close; returns the status of the flush and close (the writer is freed either way). */
bv_status bv_tb_close(bv_tb_writer *w);

/* Seconds since the Unix epoch (CLOCK_REALTIME), the wall time TensorBoard shows. */
double bv_tb_wall_time_now(void);

#endif
