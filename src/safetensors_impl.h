/* safetensors_impl.h - internals of the safetensors reader shared with its fuzzer and tests.
 *
 * bv_st_open() maps the file and hands the bytes to bv_st_parse_buffer(); the fuzzer
 * (fuzz/fuzz_safetensors.c) calls bv_st_parse_buffer() directly on its input, so every check the
 * reader makes is reachable without touching the file system.
 * Must not: be included outside src/safetensors.c, the fuzzer and tests.
 */
#ifndef BV_SAFETENSORS_IMPL_H
#define BV_SAFETENSORS_IMPL_H

#include "src/safetensors.h"

/* Parse and validate a complete safetensors image buf[0..len) (the whole file). `label` names the
 * file in error messages and is copied into f->path. On success f->entries/meta are filled and
 * f->data points into buf (borrowed: buf must outlive f); f->map stays NULL. On failure f is left
 * zeroed (bv_st_close(f) is harmless) and the message is set. buf may be NULL when len is 0. */
bv_status bv_st_parse_buffer(bv_st_file *f, const char *label, const uint8_t *buf, size_t len);

#endif
