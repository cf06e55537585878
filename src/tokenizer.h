/* tokenizer.h - byte-level BPE tokenizer (the Llama-3 kind used by BitNet b1.58 2B4T and BitVLA).
 *
 * What it is for: turn text into token ids and back exactly as HF `tokenizers` does for a
 * tokenizer.json of the byte-level BPE kind; apply BitVLA's edits to the special tokens; render
 * BitVLA's chat template; build the OFT-style action-prompt sequence (ids, labels, action mask)
 * that the model harness takes; train a small byte-level BPE for tiny configs and save it in the
 * same tokenizer.json format. See docs/tokenizer.md and ../shared/spec/bitvla.md sections 4, 8.
 *
 * Supported tokenizer.json: model "BPE" (vocab, merges as "a b" strings or [a, b] pairs,
 * ignore_merges, unk_token; no dropout, byte_fallback or subword prefixes/suffixes), normalizer
 * null, pre_tokenizer Split (Regex or String; Isolated or Removed; invert) and ByteLevel
 * (add_prefix_space, use_regex) alone or in a Sequence, post_processor null, ByteLevel or
 * TemplateProcessing (alone or in a Sequence), decoder null or ByteLevel, added_tokens (matched
 * whole, leftmost-longest, before pre-tokenization; lstrip, rstrip, single_word honoured).
 * Ids: added tokens anywhere in [0, 2147483646] (far ones are stored sparsely); model.vocab ids
 * below the number of tokens in the file (docs/tokenizer.md).
 * Regexes run on PCRE2 (UTF + Unicode properties, JIT when available); `\s` is rewritten to the
 * Unicode White_Space set that HF's Oniguruma and tiktoken's Rust regex use.
 *
 * Owns: a bv_tok owns every table it builds (vocab, merges, added tokens, compiled regexes,
 * small JSON subtrees kept for bv_tok_save). After loading (and bv_tok_bitvla_edit) it is
 * read-only: bv_tok_encode / bv_tok_decode may run on several threads at once.
 * Must not: print, abort on user input, or depend on anything but common.h, jansson and PCRE2.
 *
 * Errors: BV_ERR_IO (file), BV_ERR_FORMAT (malformed tokenizer.json: names the file and field),
 * BV_ERR_UNSUPPORTED (a model, normalizer, pre-tokenizer ... this module does not implement,
 * named), BV_ERR_ARG (invalid UTF-8 input with its byte offset, an id out of range, bad options),
 * BV_ERR_NOMEM. The message is in bv_error_msg().
 */
#ifndef BV_TOKENIZER_H
#define BV_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "src/common.h"

#define BV_TOK_IGNORE_INDEX (-100)

typedef struct bv_tok bv_tok;

/* A growable id array; encode functions append to it. Zero-initialise, free with bv_tok_ids_free. */
typedef struct {
    int32_t *ids;
    size_t len, cap;
} bv_tok_ids;
void bv_tok_ids_free(bv_tok_ids *v);

/* Load a tokenizer.json (path) or one held in memory (`name` is used in messages). */
bv_status bv_tok_load(bv_tok **out, const char *path);
bv_status bv_tok_load_mem(bv_tok **out, const char *json, size_t len, const char *name);
void bv_tok_free(bv_tok *t);
/* Write t as tokenizer.json, atomically (temporary file, fsync, rename). */
bv_status bv_tok_save(const bv_tok *t, const char *path);

/* Largest id + 1 (model vocab and added tokens). */
int32_t bv_tok_vocab_size(const bv_tok *t);
/* Id of an added token with this exact content, else of the model token whose bytes are `token`;
 * -1 if neither. Use it for the ids of the specials (they depend on the vocabulary). */
int32_t bv_tok_token_id(const bv_tok *t, const char *token);
/* Bytes of token `id` as decoding writes them (borrowed, not NUL-terminated); NULL if no such id. */
const char *bv_tok_token_bytes(const bv_tok *t, int32_t id, size_t *len);
/* The BOS id that chat/action encodings start with: the first id the post-processor template puts
 * before the text, else the added token <|begin_of_text|>; -1 if neither. */
int32_t bv_tok_bos_id(const bv_tok *t);

enum {
    BV_TOK_ADD_SPECIAL = 1u,  /* encode: apply the post-processor template (HF add_special_tokens) */
    BV_TOK_SKIP_SPECIAL = 2u, /* decode: leave out added tokens marked special */
};

/* Append the ids of text[0..len) to out. Invalid UTF-8 is BV_ERR_ARG naming the byte offset. */
bv_status bv_tok_encode(const bv_tok *t, const char *text, size_t len, unsigned flags, bv_tok_ids *out);
/* Decode ids into a malloc'd NUL-terminated string (*len excludes the NUL; the text may itself
 * contain NUL bytes). Byte sequences that are not UTF-8 become U+FFFD as in HF (from_utf8_lossy). */
bv_status bv_tok_decode(const bv_tok *t, const int32_t *ids, size_t n, unsigned flags, char **text, size_t *len);

/* BitVLA's edits (bitvla-repo convert_ckpt.py plus the tokens it adds): drop the added tokens
 * with ids above <|eot_id|> (128009 for Llama-3), rename <|reserved_special_token_0|> (128002) to
 * <|pad|>, then append <|image_pad|>, <proprio_pad>, <action_0> .. <action_255> with consecutive
 * ids after <|eot_id|> (128010, 128011, 128012 ...). A tokenizer that already has <|image_pad|>
 * is left as it is. BV_ERR_FORMAT if <|eot_id|> is missing. */
bv_status bv_tok_bitvla_edit(bv_tok *t);

/* ---- BitVLA chat template (bitvla-repo convert_ckpt.py) ----
 * "System: <fixed system line><|eot_id|>" then per message "Role: content<|eot_id|>" (role
 * capitalized, content trimmed of whitespace as Python's str.strip), then "Assistant: " when
 * add_generation_prompt. */
typedef struct {
    const char *role;
    const char *content;
} bv_tok_msg;
#define BV_TOK_SYSTEM_PROMPT                                                                       \
    "System: A chat between a curious human and an artificial intelligence assistant. The "        \
    "assistant gives helpful, detailed, and polite answers to the human's questions.<|eot_id|>"
/* The rendered template (malloc'd, NUL-terminated). */
char *bv_tok_chat_render(const bv_tok_msg *msgs, int n, int add_generation_prompt);
/* BOS + encode(render): the template of the file when it has one (BV_TOK_ADD_SPECIAL), otherwise
 * bv_tok_bos_id() is prepended. */
bv_status bv_tok_chat_encode(const bv_tok *t, const bv_tok_msg *msgs, int n, int add_generation_prompt,
                             bv_tok_ids *out);

/* ---- OFT-style action prompt (spec section 4, bitvla-repo bitvla_transform.py) ----
 * User message "<image>\n" * n_images + "<proprio_pad>" + "What action should the robot take to
 * {instruction lower-cased}?", each "\n?<image>\n?" becoming image_tokens <|image_pad|> tokens,
 * through the chat template with the generation prompt, then num_actions_chunk * action_dim
 * action tokens, then <|end_of_text|>; BOS first.
 * labels: -100 everywhere except the action tokens (their own ids) and, when predict_stop, the
 * final <|end_of_text|> (BitVLA's predict_stop_token=True: labels[:-(n_actions+1)] = -100).
 * action_mask: 1 exactly at the action tokens. */
typedef struct {
    int n_images;          /* 2: third-person then wrist */
    int image_tokens;      /* <|image_pad|> tokens per image: 256 (fewer in tiny configs) */
    int num_actions_chunk; /* 8 */
    int action_dim;        /* 7 */
    int predict_stop;      /* 1: <|end_of_text|> is a target too */
} bv_tok_action_cfg;
bv_tok_action_cfg bv_tok_action_cfg_default(void);

typedef struct {
    int32_t *ids;
    int32_t *labels;
    uint8_t *action_mask;
    int64_t len;
    int64_t n_actions;
} bv_tok_action_seq;
/* action_bins: NULL (every action token is <action_0>, a placeholder: under OFT's L1 regression
 * the action-token embeddings are zeroed and their ids only mark positions) or
 * num_actions_chunk * action_dim bin indices in [0, 255] giving <action_k>. Needs the BitVLA tokens
 * (bv_tok_bitvla_edit). Instruction lower-casing is ASCII-only. */
bv_status bv_tok_action_prompt(const bv_tok *t, const char *instruction, const bv_tok_action_cfg *cfg,
                               const int *action_bins, bv_tok_action_seq *out);
void bv_tok_action_seq_free(bv_tok_action_seq *s);

/* ---- Training a small byte-level BPE (tiny configs) ----
 * The result has the 256 byte tokens (ids 0..255), then one token per merge until the model
 * vocabulary holds vocab_size tokens (or no pair occurs min_frequency times), the Llama-3
 * pre-tokenizer regex and ByteLevel mapping, a TemplateProcessing post-processor that puts
 * <|begin_of_text|> first, and the ten Llama-3 added tokens (<|begin_of_text|> ... <|eot_id|>)
 * right after the model vocabulary; `bitvla` applies bv_tok_bitvla_edit as well. Ties between
 * equally frequent pairs go to the smaller (left id, right id). */
typedef struct {
    int vocab_size;    /* model vocabulary size, >= 256 */
    int min_frequency; /* a pair must occur at least this often to be merged (default 2) */
    int bitvla;        /* apply the BitVLA edits */
} bv_tok_train_opts;
bv_status bv_tok_train(bv_tok **out, const char *text, size_t len, const bv_tok_train_opts *o);

/* Offset of the first byte of text[0..len) that is not valid UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF are invalid), or -1 if it is all valid. */
int64_t bv_utf8_invalid_at(const char *text, size_t len);

#endif
