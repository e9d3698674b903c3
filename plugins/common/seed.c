/* Seeds from [dispatch:NAME] seed, or from the CSPRNG: see seed.h. */
#include "seed.h"

/* Words of CSPRNG output that seed the Mersenne Twister when no seed is set. */
#define SEED_RANDOM_WORDS 4

int pc_read_seed(const cp_host_api_t *api, cp_host_t *host, uint64_t max, uint64_t *seed,
                 bool *given)
{
    const char *seed_text = api->config_get(host, "seed");
    *seed = 0;
    *given = seed_text != NULL;
    if (seed_text == NULL)
        return CP_OK;

    guint64 value = 0;
    if (!g_ascii_string_to_unsigned(seed_text, 10, 0, max, &value, NULL)) {
        /* A seed keys hashing and must stay secret: never quoted (GLib's own
         * message would quote it too).  MAX is 2^k - 1 in practice: say
         * "below 2^k", as operators think. */
        if (max != 0 && (max & (max + 1)) == 0)
            api->config_error(host, "seed",
                              "not an unsigned integer below 2^%u (value not shown: a secret)",
                              g_bit_storage(max));
        else
            api->config_error(host, "seed",
                              "not an unsigned integer of at most %" G_GUINT64_FORMAT
                              " (value not shown: a secret)",
                              (guint64)max);
        return CP_EINVAL;
    }
    *seed = value;
    return CP_OK;
}

int pc_rand_from_config(const cp_host_api_t *api, cp_host_t *host, GRand **rand)
{
    uint64_t seed = 0;
    bool given = false;
    int status = pc_read_seed(api, host, G_MAXUINT32, &seed, &given);
    if (status != CP_OK)
        return status;

    if (given) {
        *rand = g_rand_new_with_seed((guint32)seed);
        return CP_OK;
    }
    guint32 words[SEED_RANDOM_WORDS];
    if (api->random_bytes(host, words, sizeof words) != CP_OK) {
        api->log(host, CP_LOG_ERROR, "cannot get random bytes for a seed");
        return CP_EFAIL;
    }
    *rand = g_rand_new_with_seed_array(words, SEED_RANDOM_WORDS);
    return CP_OK;
}
