/* libFuzzer target: one JAT encoding's decode() fed arbitrary tokens.
 *
 * Compiled once per encoding with -DFUZZ_JAT_NAME="hmac" (and so on),
 * together with that plugin's own source and the fake host from
 * tests/plugins, exactly as the plugin's unit test is.
 *
 * The input is the token: a NUL-terminated copy of it, in a buffer of its
 * exact size so that AddressSanitizer sees any read past it.  Invariants
 * checked on every input (a failure aborts, which libFuzzer reports):
 *   - decode() returns CP_OK, CP_EBADTOKEN or CP_EEXPIRED, nothing else;
 *   - on CP_OK the JID is non-empty and NUL-terminated within the
 *     CP_JID_MAX + 1 byte buffer (of exactly that size);
 *   - raw, base32: on CP_OK, encoding the JID gives back the token (one
 *     token per JID: nothing else is accepted);
 *   - hmac, sealed, opaque: on CP_OK the token is one this process made
 *     with encode() at start (under the fixed key, which the fuzzer never
 *     sees), or for hmac and sealed one of the version 1 tokens below that
 *     the plugins made under the same keys before issue 14 (they still
 *     decode), and the JID is the one it was made for.  Nothing else,
 *     however close, may open.  CP_EEXPIRED is allowed only for the genuine
 *     tokens made with a past deadline: a forged token's deadline means
 *     nothing.
 * And, when the input is itself a plausible JID: encode() then decode()
 * gives it back.
 *
 * FUZZ_WRITE_SEEDS=DIR makes the target write its genuine tokens to DIR
 * (one file each; "v1-NN" for the version 1 ones) and exit: that is how
 * tests/fuzz/corpus/jat-* was made.
 * The tokens are reproducible because the host's random_bytes() is
 * replaced with a fixed-seed generator here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <client-proxy/plugin.h>

#include "base32.h"
#include "fake-host.h"
#include "fuzz-common.h"
#include "jid-check.h"

#ifndef FUZZ_JAT_NAME
#error "compile with -DFUZZ_JAT_NAME=\"<encoding>\""
#endif

/* Encodings whose tokens only this process can make. */
static bool keyed;
static bool roundtrip_by_encode; /* raw, base32: one token per JID */

typedef struct genuine {
    char *token;
    char *jid;
    bool expired;
    bool v1; /* from the table below, not from encode() */
} genuine_t;

/* Version 1 tokens (base32) that jat-hmac and jat-sealed made under the
 * keys below before issue 14, when they were these targets' seed corpus
 * (genuine-NN, in the order make_genuine_tokens() makes its own): they must
 * still open, or be expired, so they count as genuine.  The two of the
 * longest JID (1023 characters) are left out; the unit tests build such
 * tokens. */
typedef struct v1_token {
    const char *token;
    const char *jid;
    bool expired;
} v1_token_t;

static const v1_token_t hmac_v1_tokens[] = {
    {"ah777777aw643nsbi2v4xniqaendspgvd5qwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi",
     "alice@example.org/phone", false},
    {"ah777777ww3q56gjc4aeuelwch2hdaenffvmhpdsm5sw4qdcyo6gg2dfoixgk6dbnvygyzjpi5sxfq5eoq",
     "jürgen@bücher.example/Gerät", false},
    {"ah777777pc3ao6rodk2ubdt5fwcsvmcrmxyj7geaibsw233knexgk6dbnvygyzjp6cpy5cjaobqxe5dz",
     "😀@emoji.example/🎉 party", false},
    {"ah777777wpf2gnp7tdwkzd3uq65hofvrun2xgzlsibsxqylnobwgkltpojts66capexgk6dbnvygyzjppi",
     "user@example.org/x@y.example/z", false},
    {"ah777777e2ooh3lq4efentlnwoifokpd5z2xgzlsibntembqge5giyryhi5dcxjpojsxg",
     "user@[2001:db8::1]/res", false},
    {"ah777777ntsvqawlrhjxeolebru4o2mc3nquayrpmm", "a@b/c", false},
    {"aeaaaaabahq7wdb6l7ehdtc2tknwblmwqjqwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi",
     "alice@example.org/phone", true},
    {"aeaaaaaaieqxbghpoenxa73y3bvq3miewrrg6ysamv4gc3lqnrss433sm4xwyylqorxxa",
     "bob@example.org/laptop", true},
    {"ah7777776hovjkas43yainjase6qh6zvgnrwc4tpnragk6dbnvygyzjon5zgol3emvzww",
     "carol@example.org/desk", false},
    {"aeaaaaacggr5smc5wwkcohhryiukjfcmhnrwc4tpnragk6dbnvygyzjon5zgol3emvzww",
     "carol@example.org/desk", true},
    {NULL, NULL, false},
};

static const v1_token_t sealed_v1_tokens[] = {
    {"aetr73xobyajryftc4jvq3pfhjp7jsybthqqcqxtuse4tuvzaqjuegogw6d2323tl7vcygvktxgsu4rm4n543qrq"
     "zylp6fdxfhce7boisgmjs",
     "alice@example.org/phone", false},
    {"agkryw6aqqzdz6fni6pr35zdozzt27jm5l2zq55e7o66xjagpqcmljccejerqksv2s6rdt66v3zbqyrfx4w5fjyz"
     "ks3r4zwxfhns7jnrq2llla7lcxtm6glv",
     "jürgen@bücher.example/Gerät", false},
    {"aepkegjldji54gcbj7jyvsfl26riwedsvfqbbs6lbng5ilxa3jgqeaghf723wl4sw2byfip3bw2lg5b4fn4lupeq"
     "ljlxdvovyr3ib6cqzdvaevz6da3apfy",
     "😀@emoji.example/🎉 party", false},
    {"aee5zkv5tm6uptm6bp3p6dcfrvl3f3ujiblnbzypevbqa5vwytvbqthqhvlegd3o354x7iit4rkpahzmbi46fgz5"
     "oiuf6vylmgrzqgefvfoloxailhkfpshd",
     "user@example.org/x@y.example/z", false},
    {"afy2h7mcklv6an7rqfc2dy4pmomuts3rk3s74pzqwnv3e5er2y7v6i34ypfaqbwpisg72ueoqhs7jlz3ih3sz4ub"
     "keyn27r4lnys7wa5oxoa",
     "user@[2001:db8::1]/res", false},
    {"ahu6eoqc5hjxcudv5ek5bszoqqohfod642s2zkja76a4k2lbkdcvffgumzlfv5wnlkjnn7ccaho67pgo", "a@b/c",
     false},
    {"ah4azmo6xahiiuw575mgppdejkn42roqr4mwxedmvx7e2iv46wh2wnz4rqeexthmptm56wlgf4fmo5mfpon6u4fu"
     "4siim7jcoycwod4alimgw",
     "alice@example.org/phone", true},
    {"ahl6arq6f3x6r7cem4z5z7z6dvo7j43jyhwwo5xuiyfngazaenfeffufmdhmt77jj2rvym7barab6xahlpgga6ku"
     "2goxvonki5voq3n5nqea",
     "bob@example.org/laptop", true},
    {"aebt3tkyj4k5rlb7pwuqkzvj7itgi6warrlw6hkkhf4p2m7jyzjdegq6tjn7pncraafdbi2zn4gdlsvbwq4vu3v3"
     "t2tau4qtk6wkbzw6wtwa",
     "carol@example.org/desk", false},
    {"afy65nger7goyn3uegkgpp6vwoufv5yveq266t3hbpjyfzhnyyfkmbwi5jabue7pptnlp3uyfu52lfoysfy5rdui"
     "k67mot4tj3txmirtxeya",
     "carol@example.org/desk", true},
    {NULL, NULL, false},
};

typedef struct instance {
    cp_host_t *host;
    void *state;
} instance_t;

static const cp_jat_ops_t *ops;
static cp_host_api_t fuzz_host_api; /* the fake host's, with random_bytes() below */
static GRand *fixed_random;
static instance_t main_instance;
static GPtrArray *genuine_tokens; /* genuine_t *, owned */
static GHashTable *genuine_by_token; /* token -> genuine_t (borrowed) */
/* Tokens made and forgotten, other than the genuine ones: from ABI 1.1 a
 * token forgotten is still its sender's address, so a stateful encoding
 * decodes them later too. */
static GHashTable *made_by_round_trip; /* token -> JID, both owned */

/* Two keys: tokens made with the second (by an instance that has only it)
 * must open too, through the loop over every key. */
static const char *const key_file_text =
    "# fixed keys for the fuzz targets (SHA-256 of \"client-proxy fuzz key N\"):\n"
    "# never use them anywhere else\n"
    "k1 5c520c1c256010938138a370d02c58f3f6e0dadc9bd2f0e471aa98508174e62d\n"
    "k2 9a5e4df2acf4808fcac29ab20d52d20a83e865a6be94066ee003646f24a9edcc\n";
static const char *const second_key_text =
    "k2 9a5e4df2acf4808fcac29ab20d52d20a83e865a6be94066ee003646f24a9edcc\n";

/* Reproducible "random" bytes: nonces (sealed), tokens (opaque) and the
 * seeds come out the same on every run, so the corpus matches. */
static int fixed_random_bytes(cp_host_t *host, void *buf, size_t len)
{
    (void)host;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)g_rand_int(fixed_random);
    return CP_OK;
}

static int instance_init(instance_t *instance, const char *key_text)
{
    instance->host = fake_host_new();
    char *path = NULL;
    if (key_text) {
        path = fuzz_write_private_file(key_text);
        fake_host_set(instance->host, "key_file", path);
    }
    int status = cp_plugin_descriptor.init(&fuzz_host_api, instance->host, &instance->state);
    if (path)
        fuzz_remove_private_file(path);
    if (status != CP_OK) {
        fprintf(stderr, "fuzz-jat-%s: init failed (%d):\n%s", FUZZ_JAT_NAME, status,
                fake_host_transcript(instance->host));
        abort();
    }
    return status;
}

static void instance_fini(instance_t *instance)
{
    cp_plugin_descriptor.fini(instance->state);
    fake_host_free(instance->host);
}

/* JIDs the genuine tokens stand for: ordinary, unusual, and the longest
 * each encoding takes. */
static const char *const seed_jids[] = {
    "alice@example.org/phone",
    "jürgen@bücher.example/Gerät",
    "😀@emoji.example/🎉 party",
    "user@example.org/x@y.example/z",
    "user@[2001:db8::1]/res",
    "a@b/c",
    NULL,
};

static void add_genuine(instance_t *instance, const char *jid, int64_t expires)
{
    char token[CP_TOKEN_MAX + 1];
    int status = ops->encode(instance->state, jid, expires, token, sizeof token);
    if (status == CP_ETOOLONG)
        return;
    FUZZ_CHECK(status == CP_OK, "encode(%s) returned %d", jid, status);
    genuine_t *g = g_new0(genuine_t, 1);
    g->token = g_strdup(token);
    g->jid = g_strdup(jid);
    g->expired = expires < g_get_real_time() / G_USEC_PER_SEC;
    g_ptr_array_add(genuine_tokens, g);
    g_hash_table_insert(genuine_by_token, g->token, g);
}

/* Adds the version 1 tokens of the encoding under test, which no
 * encode() makes any more. */
static void add_v1_tokens(void)
{
    const v1_token_t *table = strcmp(FUZZ_JAT_NAME, "hmac") == 0     ? hmac_v1_tokens
                              : strcmp(FUZZ_JAT_NAME, "sealed") == 0 ? sealed_v1_tokens
                                                                     : NULL;
    for (const v1_token_t *v = table; v != NULL && v->token != NULL; v++) {
        genuine_t *g = g_new0(genuine_t, 1);
        g->token = g_strdup(v->token);
        g->jid = g_strdup(v->jid);
        g->expired = v->expired;
        g->v1 = true;
        g_ptr_array_add(genuine_tokens, g);
        g_hash_table_insert(genuine_by_token, g->token, g);
    }
}

static void genuine_free(gpointer data)
{
    genuine_t *g = data;
    g_free(g->token);
    g_free(g->jid);
    g_free(g);
}

static void make_genuine_tokens(void)
{
    genuine_tokens = g_ptr_array_new_with_free_func(genuine_free);
    genuine_by_token = g_hash_table_new(g_str_hash, g_str_equal);
    made_by_round_trip = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    /* Never expiring: for jat-opaque an expired token is removed when first
     * seen, which would make inputs depend on each other. */
    for (const char *const *jid = seed_jids; *jid; jid++)
        add_genuine(&main_instance, *jid, INT64_MAX);
    /* The longest JID that still fits, and one past it. */
    for (size_t len = 580; len <= 1030; len++) {
        char *jid = g_strnfill(len, 'r');
        memcpy(jid, "u@example.org/", 14);
        char token[CP_TOKEN_MAX + 1];
        int status = ops->encode(main_instance.state, jid, INT64_MAX, token, sizeof token);
        if (status == CP_ETOOLONG) {
            /* len - 1 was the longest */
            jid[len - 1] = '\0';
            add_genuine(&main_instance, jid, INT64_MAX);
            g_free(jid);
            break;
        }
        if (ops->forget)
            ops->forget(main_instance.state, token);
        /* Forgotten, it is still an address (ABI 1.1). */
        g_hash_table_insert(made_by_round_trip, g_strdup(token), g_strdup(jid));
        g_free(jid);
    }
    if (keyed) {
        add_genuine(&main_instance, "alice@example.org/phone", 1); /* long expired */
        add_genuine(&main_instance, "bob@example.org/laptop", 0);
        /* Made under the second key of the main instance's file. */
        instance_t second = {0};
        instance_init(&second, second_key_text);
        add_genuine(&second, "carol@example.org/desk", INT64_MAX);
        add_genuine(&second, "carol@example.org/desk", 2);
        instance_fini(&second);
        add_v1_tokens();
    }
}

static void write_seeds(const char *dir)
{
    g_mkdir_with_parents(dir, 0755);
    guint made = 0, v1 = 0;
    for (guint i = 0; i < genuine_tokens->len; i++) {
        const genuine_t *g = genuine_tokens->pdata[i];
        char *path = g_strdup_printf("%s/%s-%02u%s", dir, g->v1 ? "v1" : "genuine",
                                     g->v1 ? v1++ : made++, g->expired ? "-expired" : "");
        FUZZ_CHECK(g_file_set_contents(path, g->token, -1, NULL), "cannot write %s", path);
        g_free(path);
    }
    printf("fuzz-jat-%s: wrote %u tokens to %s\n", FUZZ_JAT_NAME, genuine_tokens->len, dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keyed = strcmp(FUZZ_JAT_NAME, "hmac") == 0 || strcmp(FUZZ_JAT_NAME, "sealed") == 0;
    roundtrip_by_encode = strcmp(FUZZ_JAT_NAME, "raw") == 0 || strcmp(FUZZ_JAT_NAME, "base32") == 0;
    FUZZ_CHECK(cp_plugin_descriptor.kind == CP_PLUGIN_JAT, "not a JAT plugin");
    ops = cp_plugin_descriptor.ops;
    fuzz_host_api = fake_host_api;
    fuzz_host_api.random_bytes = fixed_random_bytes;
    fixed_random = g_rand_new_with_seed(20240605);
    instance_init(&main_instance, keyed ? key_file_text : NULL);
    make_genuine_tokens();

    const char *seeds = g_getenv("FUZZ_WRITE_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* The input taken as a JID: encode() then decode() must give it back. */
static void check_round_trip(const char *jid, size_t len)
{
    /* Every token made is remembered (made_by_round_trip); past this many,
     * none is made, so that memory stays bounded over a long run. */
    if (!pc_jid_bytes_plausible(jid, len) || g_hash_table_size(made_by_round_trip) >= 200000)
        return;
    char token[CP_TOKEN_MAX + 1];
    int status = ops->encode(main_instance.state, jid, INT64_MAX, token, sizeof token);
    if (status != CP_OK) {
        FUZZ_CHECK(status == CP_ETOOLONG, "encode returned %d for a plausible JID", status);
        return;
    }
    size_t token_len = strnlen(token, sizeof token);
    FUZZ_CHECK(token_len >= 1 && token_len <= CP_TOKEN_MAX, "encode made a token of %zu bytes",
               token_len);
    FUZZ_CHECK(pc_jid_bytes_plausible(token, token_len), "encode made an unsafe token");
    char *back = g_malloc(CP_JID_MAX + 1);
    status = ops->decode(main_instance.state, token, back, CP_JID_MAX + 1);
    FUZZ_CHECK(status == CP_OK, "the token encode() just made decodes with %d", status);
    FUZZ_CHECK(strcmp(back, jid) == 0, "round trip changed the JID");
    g_free(back);
    if (ops->forget)
        ops->forget(main_instance.state, token);
    g_hash_table_insert(made_by_round_trip, g_strdup(token), g_strndup(jid, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = g_malloc(size + 1);
    memcpy(token, data, size);
    token[size] = '\0';
    /* decode() sees a C string: what follows a NUL is not part of it. */
    size_t len = strlen(token);

    char *jid = g_malloc(CP_JID_MAX + 1);
    memset(jid, 0xa5, CP_JID_MAX + 1);
    int status = ops->decode(main_instance.state, token, jid, CP_JID_MAX + 1);
    FUZZ_CHECK(status == CP_OK || status == CP_EBADTOKEN || status == CP_EEXPIRED,
               "decode returned %d", status);

    const genuine_t *g = g_hash_table_lookup(genuine_by_token, token);
    if (status == CP_OK) {
        const char *nul = memchr(jid, '\0', CP_JID_MAX + 1);
        FUZZ_CHECK(nul != NULL, "decode accepted a token but left the JID unterminated");
        FUZZ_CHECK(nul > jid, "decode accepted a token for an empty JID");
        if (roundtrip_by_encode) {
            char again[CP_TOKEN_MAX + 1];
            int encoded = ops->encode(main_instance.state, jid, INT64_MAX, again, sizeof again);
            FUZZ_CHECK(encoded == CP_OK && strcmp(again, token) == 0,
                       "decode accepted a token that encode() would not make for its JID");
        } else if (!g) {
            const char *made = g_hash_table_lookup(made_by_round_trip, token);
            FUZZ_CHECK(made != NULL, "decode accepted a token this process never made (%zu bytes)",
                       len);
            FUZZ_CHECK(strcmp(jid, made) == 0, "an address decoded to another JID");
        } else {
            FUZZ_CHECK(!g->expired, "decode accepted an expired token");
            FUZZ_CHECK(strcmp(jid, g->jid) == 0, "a genuine token decoded to another JID");
        }
    } else if (status == CP_EEXPIRED) {
        FUZZ_CHECK(!roundtrip_by_encode, "%s has no deadline, yet said expired", FUZZ_JAT_NAME);
        FUZZ_CHECK(g != NULL && g->expired, "an unauthenticated token was called expired");
    } else if (g != NULL) {
        FUZZ_CHECK(false, "a genuine token was refused with %d", status);
    }
    g_free(jid);

    check_round_trip(token, len);
    g_free(token);
    return 0;
}
