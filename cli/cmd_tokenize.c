/* cmd_tokenize.c - `bitvla tokenize` (text <-> ids, chat template, action prompt) and
 * `bitvla tokenizer` (train a small byte-level BPE, convert/edit a tokenizer.json). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "src/tokenizer.h"

static void usage_tokenize(FILE *f) {
    fprintf(f,
            "usage: bitvla tokenize --tokenizer FILE [--jsonl IN.jsonl] [options]\n"
            "\n"
            "Reads one JSON value per line (default: standard input) and prints one per line.\n"
            "  (default)        a string in, an array of ids out (the file's post-processor template\n"
            "                   is applied, as HF's add_special_tokens=True)\n"
            "  --decode         an array of ids in, a string out\n"
            "  --chat           BitVLA's chat template with the generation prompt, BOS first: the line is\n"
            "                   a string (one user message) or an array of {\"role\", \"content\"}\n"
            "  --action         the line is an instruction; prints {\"ids\", \"labels\", \"action_mask\"}\n"
            "                   of the OFT action prompt (implies --bitvla); --images N (2),\n"
            "                   --image-tokens N (256), --chunk N (8), --action-dim N (7), --no-stop\n"
            "  --bitvla         apply BitVLA's token edits first (<|pad|>, <|image_pad|>, <proprio_pad>,\n"
            "                   <action_0..255>)\n"
            "  --no-special     do not apply the post-processor template when encoding\n"
            "  --skip-special   leave special tokens out when decoding\n"
            "  --bench          time encoding (or decoding) only and print MB/s instead of the results\n");
}

static int write_ids(FILE *o, const int32_t *ids, size_t n) {
    if (fputc('[', o) == EOF) return 0;
    for (size_t i = 0; i < n; i++)
        if (fprintf(o, i ? ",%d" : "%d", (int)ids[i]) < 0) return 0;
    return fputc(']', o) != EOF;
}

/* messages of a --chat line: a string, or an array of {role, content} */
static int chat_msgs(json_t *v, bv_tok_msg **msgs, int *n, const char **err) {
    if (json_is_string(v)) {
        *msgs = malloc(sizeof **msgs);
        (*msgs)[0] = (bv_tok_msg){"user", json_string_value(v)};
        *n = 1;
        return 1;
    }
    if (!json_is_array(v)) {
        *err = "expected a string or an array of {\"role\", \"content\"} objects";
        return 0;
    }
    *n = (int)json_array_size(v);
    *msgs = malloc(((size_t)*n + 1) * sizeof **msgs);
    for (int i = 0; i < *n; i++) {
        json_t *m = json_array_get(v, (size_t)i);
        const char *r = json_string_value(json_object_get(m, "role")), *c = json_string_value(json_object_get(m, "content"));
        if (!r || !c) {
            free(*msgs);
            *err = "each message needs string fields \"role\" and \"content\"";
            return 0;
        }
        if (strlen(c) != json_string_length(json_object_get(m, "content"))) {
            free(*msgs);
            *err = "message content contains a NUL character";
            return 0;
        }
        (*msgs)[i] = (bv_tok_msg){r, c};
    }
    return 1;
}

int bv_cmd_tokenize(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage_tokenize(stdout);
        return 0;
    }
    const char *tok_path = NULL, *in_path = "-";
    int decode = 0, chat = 0, action = 0, bitvla = 0, no_special = 0, skip_special = 0, bench = 0;
    bv_tok_action_cfg acfg = bv_tok_action_cfg_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tokenizer") && v)
            tok_path = v, i++;
        else if (!strcmp(a, "--jsonl") && v)
            in_path = v, i++;
        else if (!strcmp(a, "--decode"))
            decode = 1;
        else if (!strcmp(a, "--chat"))
            chat = 1;
        else if (!strcmp(a, "--action"))
            action = bitvla = 1;
        else if (!strcmp(a, "--bitvla"))
            bitvla = 1;
        else if (!strcmp(a, "--no-special"))
            no_special = 1;
        else if (!strcmp(a, "--skip-special"))
            skip_special = 1;
        else if (!strcmp(a, "--bench"))
            bench = 1;
        else if (!strcmp(a, "--no-stop"))
            acfg.predict_stop = 0;
        else if (!strcmp(a, "--images")) {
            if (!bv_cli_int("tokenize", a, v, 0, 64, &acfg.n_images)) return 2;
            i++;
        } else if (!strcmp(a, "--image-tokens")) {
            if (!bv_cli_int("tokenize", a, v, 0, 1 << 16, &acfg.image_tokens)) return 2;
            i++;
        } else if (!strcmp(a, "--chunk")) {
            if (!bv_cli_int("tokenize", a, v, 1, 1 << 12, &acfg.num_actions_chunk)) return 2;
            i++;
        } else if (!strcmp(a, "--action-dim")) {
            if (!bv_cli_int("tokenize", a, v, 1, 1 << 12, &acfg.action_dim)) return 2;
            i++;
        } else {
            fprintf(stderr, "bitvla tokenize: unknown or incomplete option '%s'; see 'bitvla tokenize --help'\n", a);
            return 2;
        }
    }
    if (!tok_path) {
        fprintf(stderr, "bitvla tokenize: --tokenizer FILE is required\n");
        return 2;
    }
    if (decode + chat + action > 1) {
        fprintf(stderr, "bitvla tokenize: --decode, --chat and --action exclude each other\n");
        return 2;
    }
    bv_tok *tok;
    if (bv_tok_load(&tok, tok_path) != BV_OK) {
        fprintf(stderr, "bitvla tokenize: %s\n", bv_error_msg());
        return 1;
    }
    if (bitvla && bv_tok_bitvla_edit(tok) != BV_OK) {
        fprintf(stderr, "bitvla tokenize: %s\n", bv_error_msg());
        bv_tok_free(tok);
        return 1;
    }
    FILE *in = strcmp(in_path, "-") ? fopen(in_path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "bitvla tokenize: %s: cannot open: %s\n", in_path, strerror(errno));
        bv_tok_free(tok);
        return 1;
    }
    const char *in_name = in == stdin ? "<stdin>" : in_path;
    FILE *o = stdout;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    long lineno = 0;
    int rc = 0;
    double t_work = 0, bytes = 0;
    size_t n_items = 0, n_tokens = 0;
    bv_tok_ids ids = {0};
    while ((ll = getline(&line, &lcap, in)) >= 0) {
        lineno++;
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) ll--;
        if (ll == 0) continue; /* blank lines carry nothing */
        json_error_t je;
        json_t *v = json_loadb(line, (size_t)ll, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v) {
            fprintf(stderr, "bitvla tokenize: %s:%ld: not valid JSON: %s (column %d)\n", in_name, lineno, je.text, je.column);
            rc = 1;
            break;
        }
        const char *err = NULL;
        bv_status st = BV_OK;
        ids.len = 0;
        if (decode) {
            if (!json_is_array(v)) err = "expected an array of token ids";
            for (size_t i = 0; !err && i < json_array_size(v); i++) {
                json_t *x = json_array_get(v, i);
                if (!json_is_integer(x) || json_integer_value(x) < INT32_MIN || json_integer_value(x) > INT32_MAX)
                    err = "expected an array of integer token ids";
                else if (!(ids.len < ids.cap || (ids.ids = realloc(ids.ids, (ids.cap = ids.cap * 2 + 64) * 4))))
                    err = "out of memory";
                else
                    ids.ids[ids.len++] = (int32_t)json_integer_value(x);
            }
            if (!err) {
                char *text;
                size_t tl;
                double t0 = bv_time_now();
                st = bv_tok_decode(tok, ids.ids, ids.len, skip_special ? BV_TOK_SKIP_SPECIAL : 0, &text, &tl);
                t_work += bv_time_now() - t0;
                if (st == BV_OK) {
                    bytes += (double)tl;
                    n_tokens += ids.len;
                    if (!bench) {
                        json_t *s = json_stringn(text, tl);
                        char *d = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
                        if (!d || fputs(d, o) == EOF || fputc('\n', o) == EOF) rc = 1;
                        free(d);
                        json_decref(s);
                    }
                    free(text);
                }
            }
        } else if (action) {
            if (!json_is_string(v))
                err = "expected a JSON string (the instruction)";
            else {
                bv_tok_action_seq seq;
                st = bv_tok_action_prompt(tok, json_string_value(v), &acfg, NULL, &seq);
                if (st == BV_OK) {
                    int ok = fputs("{\"ids\":", o) != EOF && write_ids(o, seq.ids, (size_t)seq.len) &&
                             fputs(",\"labels\":", o) != EOF && write_ids(o, seq.labels, (size_t)seq.len) &&
                             fputs(",\"action_mask\":[", o) != EOF;
                    for (int64_t i = 0; ok && i < seq.len; i++) ok = fprintf(o, i ? ",%d" : "%d", seq.action_mask[i]) > 0;
                    if (!ok || fputs("]}\n", o) == EOF) rc = 1;
                    bv_tok_action_seq_free(&seq);
                }
            }
        } else if (chat) {
            bv_tok_msg *msgs;
            int n;
            if (chat_msgs(v, &msgs, &n, &err)) {
                double t0 = bv_time_now();
                st = bv_tok_chat_encode(tok, msgs, n, 1, &ids);
                t_work += bv_time_now() - t0;
                free(msgs);
            }
        } else {
            if (!json_is_string(v))
                err = "expected a JSON string";
            else {
                double t0 = bv_time_now();
                st = bv_tok_encode(tok, json_string_value(v), json_string_length(v), no_special ? 0 : BV_TOK_ADD_SPECIAL,
                                   &ids);
                t_work += bv_time_now() - t0;
                bytes += (double)json_string_length(v);
            }
        }
        json_decref(v);
        if (err) {
            fprintf(stderr, "bitvla tokenize: %s:%ld: %s\n", in_name, lineno, err);
            rc = 1;
            break;
        }
        if (st != BV_OK) {
            fprintf(stderr, "bitvla tokenize: %s:%ld: %s\n", in_name, lineno, bv_error_msg());
            rc = 1;
            break;
        }
        n_items++;
        if (!decode && !action) {
            n_tokens += ids.len;
            if (!bench && (!write_ids(o, ids.ids, ids.len) || fputc('\n', o) == EOF)) rc = 1;
        }
        if (rc) {
            fprintf(stderr, "bitvla tokenize: writing the output failed: %s\n", strerror(errno));
            break;
        }
    }
    if (!rc && ferror(in)) {
        fprintf(stderr, "bitvla tokenize: %s: read error\n", in_name);
        rc = 1;
    }
    if (!rc && bench)
        printf("%s: %.2f MB in %.3f s: %.2f MB/s (%zu strings, %zu tokens, %.2f bytes/token)\n",
               decode ? "decode" : "encode", bytes / 1e6, t_work, t_work > 0 ? bytes / 1e6 / t_work : 0.0, n_items, n_tokens,
               n_tokens ? bytes / (double)n_tokens : 0.0);
    if (fflush(o) != 0 && !rc) {
        fprintf(stderr, "bitvla tokenize: writing the output failed: %s\n", strerror(errno));
        rc = 1;
    }
    free(line);
    bv_tok_ids_free(&ids);
    if (in != stdin) fclose(in);
    bv_tok_free(tok);
    return rc;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bitvla tokenizer: %s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!b || err) {
        fprintf(stderr, "bitvla tokenizer: %s: %s\n", path, b ? "read error" : "out of memory");
        free(b);
        return NULL;
    }
    *len = n;
    return b;
}

int bv_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || bv_cli_wants_help(argc, argv)) {
        printf("usage: bitvla tokenizer train --text FILE --vocab-size N --out tokenizer.json [--min-frequency N] [--bitvla]\n"
               "       bitvla tokenizer convert --tokenizer IN.json --out OUT.json [--bitvla]\n"
               "\n"
               "  train    byte-level BPE on a UTF-8 text file, for tiny configs: the 256 byte tokens plus\n"
               "           merges up to N model tokens (pairs seen fewer than --min-frequency times, default 2,\n"
               "           are not merged), Llama-3's pre-tokenizer, the ten Llama-3 special tokens after the\n"
               "           model vocabulary and a <|begin_of_text|> template; --bitvla adds BitVLA's tokens\n"
               "  convert  load a tokenizer.json and write it back (with --bitvla: with BitVLA's edits)\n");
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *text_path = NULL, *tok_path = NULL, *out = NULL;
    bv_tok_train_opts o = {.vocab_size = 0, .min_frequency = 2, .bitvla = 0};
    if (strcmp(sub, "train") && strcmp(sub, "convert")) {
        fprintf(stderr, "bitvla tokenizer: unknown subcommand '%s' (expected train or convert)\n", sub);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text") && v)
            text_path = v, i++;
        else if (!strcmp(a, "--tokenizer") && v)
            tok_path = v, i++;
        else if (!strcmp(a, "--out") && v)
            out = v, i++;
        else if (!strcmp(a, "--bitvla"))
            o.bitvla = 1;
        else if (!strcmp(a, "--vocab-size")) {
            if (!bv_cli_int("tokenizer", a, v, 256, 1 << 24, &o.vocab_size)) return 2;
            i++;
        } else if (!strcmp(a, "--min-frequency")) {
            if (!bv_cli_int("tokenizer", a, v, 1, INT32_MAX, &o.min_frequency)) return 2;
            i++;
        } else {
            fprintf(stderr, "bitvla tokenizer %s: unknown or incomplete option '%s'\n", sub, a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "bitvla tokenizer %s: --out FILE is required\n", sub);
        return 2;
    }
    bv_tok *tok = NULL;
    if (!strcmp(sub, "train")) {
        if (!text_path || !o.vocab_size) {
            fprintf(stderr, "bitvla tokenizer train: --text FILE and --vocab-size N are required\n");
            return 2;
        }
        size_t n;
        char *text = read_file(text_path, &n);
        if (!text) return 1;
        bv_status st = bv_tok_train(&tok, text, n, &o);
        free(text);
        if (st != BV_OK) {
            fprintf(stderr, "bitvla tokenizer train: %s: %s\n", text_path, bv_error_msg());
            return 1;
        }
    } else {
        if (!tok_path) {
            fprintf(stderr, "bitvla tokenizer convert: --tokenizer FILE is required\n");
            return 2;
        }
        if (bv_tok_load(&tok, tok_path) != BV_OK || (o.bitvla && bv_tok_bitvla_edit(tok) != BV_OK)) {
            fprintf(stderr, "bitvla tokenizer convert: %s\n", bv_error_msg());
            bv_tok_free(tok);
            return 1;
        }
    }
    int rc = 0;
    if (bv_tok_save(tok, out) != BV_OK) {
        fprintf(stderr, "bitvla tokenizer %s: %s\n", sub, bv_error_msg());
        rc = 1;
    } else
        printf("%s: vocabulary %d (BOS %d, <|end_of_text|> %d, <|image_pad|> %d, <action_0> %d)\n", out,
               bv_tok_vocab_size(tok), bv_tok_bos_id(tok), bv_tok_token_id(tok, "<|end_of_text|>"),
               bv_tok_token_id(tok, "<|image_pad|>"), bv_tok_token_id(tok, "<action_0>"));
    bv_tok_free(tok);
    return rc;
}
