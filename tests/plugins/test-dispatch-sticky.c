/* Unit tests for plugins/dispatch-sticky through its descriptor, and for its
 * SipHash against the reference vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "dispatch-checks.h"
#include "fake-host.h"
#include "siphash.h"

#define MAX_RESOURCES 16
#define SENDERS 10000

/* A fixture with SEED as [dispatch:sticky] seed (NULL: none) and N
 * candidates named "worker-0".. in order. */
static dispatch_fixture_t *fixture_new(const char *seed, size_t n)
{
    return dispatch_fixture_new(seed, "worker-", n);
}

/* Sender number I, with a resource that changes with I to show it is
 * ignored.  Returns a new string. */
static char *sender_jid(unsigned i)
{
    return g_strdup_printf("user%u@example.com/device%u", i, i % 3);
}

/* Fills PLACED[0..SENDERS) with each sender's resource number. */
static void place_all(dispatch_fixture_t *fx, size_t *placed)
{
    for (unsigned i = 0; i < SENDERS; i++) {
        char *jid = sender_jid(i);
        placed[i] = dispatch_pick(fx, jid);
        g_free(jid);
    }
}

static void descriptor__names__sticky_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("sticky", false);
}

/* The placement of every instance, and of every version, depends on the hash
 * being exactly SipHash-2-4: the reference vectors (key 00..0f, message
 * 00..len-1) from the SipHash paper's reference code. */
static void siphash__matches__the_reference_vectors(void **unused)
{
    (void)unused;
    static const struct {
        size_t len;
        uint64_t hash;
    } vectors[] = {
        {0, UINT64_C(0x726fdb47dd0e0e31)},  {1, UINT64_C(0x74f839c593dc67fd)},
        {7, UINT64_C(0xab0200f58b01d137)},  {8, UINT64_C(0x93f5f5799a932462)},
        {15, UINT64_C(0xa129ca6149be45e5)}, {16, UINT64_C(0x3f2acc7f57c29bdb)},
        {63, UINT64_C(0x958a324ceb064572)},
        /* Past the reference vectors (the length byte wraps at 256), from
         * an independent Python model checked on the vectors above. */
        {200, UINT64_C(0x10849fe512591651)}, {256, UINT64_C(0x999d0526d2a7bfd7)},
        {300, UINT64_C(0x4b0b710db6117839)},
    };
    const uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
    uint8_t message[300];
    for (size_t i = 0; i < sizeof message; i++)
        message[i] = (uint8_t)(i & 0xff);

    for (size_t v = 0; v < G_N_ELEMENTS(vectors); v++) {
        size_t len = vectors[v].len;
        sticky_siphash_t whole;
        sticky_siphash_init(&whole, k0, k1);
        sticky_siphash_update(&whole, message, len);
        assert_int_equal(sticky_siphash_final(&whole), vectors[v].hash);

        /* In pieces, and continued from a copy, as select() does. */
        for (size_t split = 0; split <= len; split++) {
            sticky_siphash_t prefix, rest;
            sticky_siphash_init(&prefix, k0, k1);
            sticky_siphash_update(&prefix, message, split);
            rest = prefix;
            for (size_t i = split; i < len; i++)
                sticky_siphash_byte(&rest, message[i]);
            assert_int_equal(sticky_siphash_final(&rest), vectors[v].hash);
        }
    }
}

static void select__keeps__a_sender_on_its_resource_whatever_the_order(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("17", 7);
    GRand *rand = g_rand_new_with_seed(3);
    size_t placed[SENDERS];
    place_all(fx, placed);
    for (int round = 0; round < 5; round++) {
        dispatch_shuffle(fx, rand);
        for (unsigned i = 0; i < SENDERS; i += 7) {
            char *jid = sender_jid(i);
            assert_int_equal(dispatch_pick(fx, jid), placed[i]);
            assert_int_equal(dispatch_pick(fx, jid), placed[i]); /* and again: no memory of calls */
            g_free(jid);
        }
    }
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__ignores__case_of_the_bare_jid_and_the_resource(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 10);
    GRand *rand = g_rand_new_with_seed(8);
    unsigned varied = 0;
    for (unsigned i = 0; i < 2000; i++) {
        char *bare = g_strdup_printf("romeo.%u@Montague.example", i);
        char *lower = g_ascii_strdown(bare, -1);
        size_t expected = dispatch_pick(fx, lower);
        /* Random ASCII case, and every kind of resource part. */
        for (char *p = bare; *p; p++)
            *p = g_rand_boolean(rand) ? g_ascii_toupper(*p) : g_ascii_tolower(*p);
        char *with_resource = g_strdup_printf("%s/Orchard %u/x", bare, i);
        char *with_empty = g_strdup_printf("%s/", bare);
        assert_int_equal(dispatch_pick(fx, bare), expected);
        assert_int_equal(dispatch_pick(fx, with_resource), expected);
        assert_int_equal(dispatch_pick(fx, with_empty), expected);
        varied += expected != dispatch_pick(fx, "romeo@montague.example");
        g_free(bare);
        g_free(lower);
        g_free(with_resource);
        g_free(with_empty);
    }
    assert_true(varied > 1000); /* bare JIDs do matter: about 1800 expected */
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__spreads__senders_evenly(void **unused)
{
    (void)unused;
    static const size_t sizes[] = {5, 10};
    static const char *const seeds[] = {NULL, "12345"};
    for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
        for (size_t k = 0; k < G_N_ELEMENTS(seeds); k++) {
            size_t n = sizes[s];
            dispatch_fixture_t *fx = fixture_new(seeds[k], n);
            size_t placed[SENDERS];
            place_all(fx, placed);
            unsigned counts[MAX_RESOURCES] = {0};
            for (unsigned i = 0; i < SENDERS; i++)
                counts[placed[i]]++;
            dispatch_assert_uniform(counts, n, SENDERS, "seed %s", seeds[k] ? seeds[k] : "none");
            dispatch_fixture_free(fx);
        }
    }
}

/* When one of N leaves, exactly its senders move, about 1/N of them. */
static void assert_leave_moves_only_its_senders(size_t n, size_t gone)
{
    dispatch_fixture_t *fx = fixture_new(NULL, n);
    size_t before[SENDERS], after[SENDERS];
    place_all(fx, before);
    dispatch_leave(fx, gone);
    place_all(fx, after);
    unsigned moved = 0;
    for (unsigned i = 0; i < SENDERS; i++) {
        if (after[i] != before[i]) {
            moved++;
            if (before[i] != gone)
                fail_msg("n = %zu: sender %u moved from worker-%zu, which stayed", n, i,
                         before[i]);
        } else if (before[i] == gone) {
            fail_msg("n = %zu: sender %u still on worker-%zu, which left", n, i, gone);
        }
    }
    if (moved > 1.3 * SENDERS / n)
        fail_msg("n = %zu: %u of %d senders moved", n, moved, SENDERS);
    assert_true(moved > 0);
    dispatch_fixture_free(fx);
}

/* When one joins N, about 1/(N + 1) of the senders move, all to it. */
static void assert_join_moves_only_to_the_newcomer(size_t n)
{
    dispatch_fixture_t *fx = fixture_new(NULL, n);
    size_t before[SENDERS], after[SENDERS];
    place_all(fx, before);
    dispatch_join(fx, n);
    place_all(fx, after);
    unsigned moved = 0;
    for (unsigned i = 0; i < SENDERS; i++) {
        if (after[i] != before[i]) {
            moved++;
            if (after[i] != n)
                fail_msg("n = %zu: sender %u moved to worker-%zu, not the newcomer", n, i,
                         after[i]);
        }
    }
    double expected = (double)SENDERS / (double)(n + 1);
    if (moved < 0.7 * expected || moved > 1.3 * expected)
        fail_msg("n = %zu: %u senders moved to the newcomer, about %.0f expected", n, moved,
                 expected);
    dispatch_fixture_free(fx);
}

static void select__moves__only_the_senders_of_a_resource_that_left(void **unused)
{
    (void)unused;
    assert_leave_moves_only_its_senders(5, 0);
    assert_leave_moves_only_its_senders(5, 3);
    assert_leave_moves_only_its_senders(10, 4);
    assert_leave_moves_only_its_senders(10, 9);
}

static void select__moves__about_one_in_n_plus_one_to_a_newcomer(void **unused)
{
    (void)unused;
    assert_join_moves_only_to_the_newcomer(5);
    assert_join_moves_only_to_the_newcomer(10);
}

/* The placement is part of the interface: instances of different versions
 * must agree during an upgrade.  Expected choices from an independent Python
 * model of the documented scheme: key words from SplitMix64(seed), score =
 * SipHash-2-4(lowercase ASCII bare JID, NUL, resource name), highest wins. */
static void select__places__senders_as_the_documented_scheme_does(void **unused)
{
    (void)unused;
    static const char *const names[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    static const char *const senders[] = {
        "juliet@capulet.example/balcony", "Romeo@Montague.Example", "capulet.example",
        "nurse@capulet.example/a/b", "juliet@montague.example", "x", "ab@c/d", "a@bc/d",
        "TYBALT@capulet.example/Sword", "benvolio@montague.example/",
    };
    static const struct {
        const char *seed;
        const char *chosen[G_N_ELEMENTS(senders)];
    } expected[] = {
        {NULL, {"epsilon", "delta", "alpha", "delta", "gamma", "beta", "alpha", "gamma",
                "epsilon", "alpha"}},
        {"18446744073709551615", {"alpha", "delta", "epsilon", "epsilon", "alpha", "gamma",
                                  "delta", "delta", "gamma", "alpha"}},
    };
    for (size_t e = 0; e < G_N_ELEMENTS(expected); e++) {
        dispatch_fixture_t *fx = fixture_new(expected[e].seed, G_N_ELEMENTS(names));
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
            fx->resources[i].name = names[i];
        for (size_t i = 0; i < G_N_ELEMENTS(senders); i++) {
            const char *chosen = fx->resources[dispatch_pick(fx, senders[i])].name;
            if (strcmp(chosen, expected[e].chosen[i]) != 0)
                fail_msg("seed %s, %s: chose %s, not %s",
                         expected[e].seed ? expected[e].seed : "none", senders[i], chosen,
                         expected[e].chosen[i]);
        }
        dispatch_fixture_free(fx);
    }
}

/* The domain is part of the bare JID: the same localpart at two domains is
 * two senders. */
static void select__tells_apart__the_same_localpart_at_two_domains(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 10);
    unsigned differ = 0;
    for (unsigned i = 0; i < 1000; i++) {
        char *a = g_strdup_printf("user%u@capulet.example/r", i);
        char *b = g_strdup_printf("user%u@montague.example/r", i);
        differ += dispatch_pick(fx, a) != dispatch_pick(fx, b);
        g_free(a);
        g_free(b);
    }
    assert_true(differ > 800); /* about 900 expected */
    dispatch_fixture_free(fx);
}

/* Instances agree: the choice depends on the names and the seed only, not
 * on where the host keeps its resources or in what order. */
static void select__agrees__between_instances_with_the_same_seed(void **unused)
{
    (void)unused;
    GRand *rand = g_rand_new_with_seed(21);
    dispatch_fixture_t *a = fixture_new(NULL, 6);
    dispatch_fixture_t *b = fixture_new("0", 6); /* no seed is seed 0 */
    dispatch_fixture_t *c = fixture_new("18446744073709551615", 6);
    dispatch_fixture_t *d = fixture_new("18446744073709551615", 6);
    dispatch_shuffle(b, rand);
    dispatch_shuffle(d, rand);
    unsigned same_as_c = 0;
    for (unsigned i = 0; i < 3000; i++) {
        char *jid = sender_jid(i);
        size_t x = dispatch_pick(a, jid);
        assert_int_equal(dispatch_pick(b, jid), x);
        size_t y = dispatch_pick(c, jid);
        assert_int_equal(dispatch_pick(d, jid), y);
        same_as_c += x == y;
        g_free(jid);
    }
    /* Another seed, another placement: about 1/6 agree by chance. */
    assert_true(same_as_c < 1000);
    g_rand_free(rand);
    dispatch_fixture_free(a);
    dispatch_fixture_free(b);
    dispatch_fixture_free(c);
    dispatch_fixture_free(d);
}

static void select__handles__one_candidate_and_none(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 1);
    assert_int_equal(dispatch_pick(fx, "a@b"), 0);
    assert_int_equal(dispatch_pick(fx, "b.example"), 0);
    const cp_dispatch_request_t request = {.sender = "a@b/c", .type = "set", .payload_ns = NULL};
    assert_int_equal(fx->ops->select(fx->state, &request, fx->candidates, 0), CP_EDECLINE);
    dispatch_fixture_free(fx);
}

static void init__refuses__a_malformed_seed(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "", "abc", "-1", "1.5", " 1", "1 ", "0x10", "18446744073709551616",
        "99999999999999999999999",
    };
    dispatch_assert_seeds_refused(bad, G_N_ELEMENTS(bad));
}

/* ---- key = attribute:room: one Jitsi conference, one Jicofo ------------- */

#define ROOMS 50
#define ROOM_SENDERS 6
#define FOCUS_NS "http://jitsi.org/protocol/focus"

/* A fixture with [dispatch:sticky] key = attribute:room, SEED as its seed
 * (NULL: none) and N candidates named "worker-0".. in order. */
static dispatch_fixture_t *room_fixture_new(const char *seed, size_t n)
{
    const char *const config[] = {"key", "attribute:room", seed ? "seed" : NULL, seed, NULL};
    return dispatch_fixture_new_with(config, "worker-", n);
}

/* Room number R.  Returns a new string. */
static char *room_jid(unsigned r)
{
    return g_strdup_printf("room%u@conference.meet.example", r);
}

/* Sender number J of conference requests: Jitsi Meet users and Jicofo-facing
 * services, at several domains.  Returns a new string. */
static char *room_sender(unsigned j)
{
    return g_strdup_printf("user%u@meet%u.example/web-%u", j, j % 3, j);
}

/* Picks for a TYPE request (or message) from SENDER whose payload names
 * ROOM among other attributes, as Jitsi's <conference/> does. */
static size_t pick_room(dispatch_fixture_t *fx, const char *sender, const char *type,
                        const char *room)
{
    const char *const attributes[] = {"machine-uid", "4f1c", "room", room, "xml:lang", "en",
                                      NULL};
    const cp_dispatch_request_t request = {
        .sender = sender, .type = type, .payload_ns = FOCUS_NS, .payload_attributes = attributes,
    };
    return dispatch_pick_request(fx, &request);
}

/* Fills PLACED[0..ROOMS) with each room's resource number, after checking
 * that every sender's request for it goes there, the candidates shuffled
 * before each. */
static void place_rooms(dispatch_fixture_t *fx, size_t *placed)
{
    if (fx->shuffle == NULL)
        fx->shuffle = g_rand_new_with_seed(5);
    for (unsigned r = 0; r < ROOMS; r++) {
        char *room = room_jid(r);
        for (unsigned j = 0; j < ROOM_SENDERS; j++) {
            char *sender = room_sender(j);
            size_t chosen = pick_room(fx, sender, j % 2 ? "set" : "get", room);
            if (j == 0)
                placed[r] = chosen;
            else if (chosen != placed[r])
                fail_msg("%s from %s: worker-%zu, not worker-%zu as from another sender", room,
                         sender, chosen, placed[r]);
            g_free(sender);
        }
        g_free(room);
    }
}

static void select__keeps__a_room_on_one_resource_whoever_sends_it(void **unused)
{
    (void)unused;
    static const char *const seeds[] = {NULL, "12345"};
    for (size_t k = 0; k < G_N_ELEMENTS(seeds); k++) {
        dispatch_fixture_t *fx = room_fixture_new(seeds[k], 5);
        size_t placed[ROOMS];
        place_rooms(fx, placed);
        /* The rooms, not the senders, decide: they spread over all five
         * (the odds that one is left out are below 10^-4). */
        unsigned counts[5] = {0};
        for (unsigned r = 0; r < ROOMS; r++)
            counts[placed[r]]++;
        for (size_t i = 0; i < 5; i++)
            if (counts[i] == 0)
                fail_msg("seed %s: no room on worker-%zu", seeds[k] ? seeds[k] : "none", i);
        dispatch_fixture_free(fx);
    }
}

/* Jicofo also gets messages about a conference: they follow its requests. */
static void select__keys__a_message_by_its_room_as_a_request(void **unused)
{
    (void)unused;
    static const char *const message_types[] = {"chat", "normal", "groupchat", "headline"};
    dispatch_fixture_t *fx = room_fixture_new(NULL, 7);
    for (unsigned r = 0; r < ROOMS; r++) {
        char *room = room_jid(r);
        char *sender = room_sender(r);
        size_t expected = pick_room(fx, sender, "get", room);
        for (size_t t = 0; t < G_N_ELEMENTS(message_types); t++)
            assert_int_equal(pick_room(fx, sender, message_types[t], room), expected);
        g_free(room);
        g_free(sender);
    }
    dispatch_fixture_free(fx);
}

static void select__ignores__ascii_case_of_the_room(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = room_fixture_new(NULL, 10);
    GRand *rand = g_rand_new_with_seed(13);
    for (unsigned r = 0; r < ROOMS; r++) {
        char *room = room_jid(r);
        size_t expected = pick_room(fx, "a@b/c", "get", room);
        for (char *p = room; *p; p++)
            *p = g_rand_boolean(rand) ? g_ascii_toupper(*p) : *p;
        assert_int_equal(pick_room(fx, "a@b/c", "get", room), expected);
        g_free(room);
    }
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

/* Rendezvous hashing keeps its promise with rooms as keys: when the Jicofo
 * that holds some conferences leaves, those move and no other does. */
static void select__moves__only_the_rooms_of_a_resource_that_left(void **unused)
{
    (void)unused;
    for (size_t gone = 0; gone < 5; gone++) {
        dispatch_fixture_t *fx = room_fixture_new(NULL, 5);
        size_t before[ROOMS], after[ROOMS];
        place_rooms(fx, before);
        dispatch_leave(fx, gone);
        place_rooms(fx, after);
        unsigned moved = 0;
        for (unsigned r = 0; r < ROOMS; r++) {
            if (before[r] == gone && after[r] == gone)
                fail_msg("room %u still on worker-%zu, which left", r, gone);
            if (before[r] != gone && after[r] != before[r])
                fail_msg("room %u moved from worker-%zu, which stayed", r, before[r]);
            moved += after[r] != before[r];
        }
        assert_true(moved > 0);
        dispatch_fixture_free(fx);
    }
}

static void select__moves__rooms_only_to_a_resource_that_joined(void **unused)
{
    (void)unused;
    for (size_t n = 3; n <= 6; n++) {
        dispatch_fixture_t *fx = room_fixture_new(NULL, n);
        size_t before[ROOMS], after[ROOMS];
        place_rooms(fx, before);
        dispatch_join(fx, n);
        place_rooms(fx, after);
        unsigned moved = 0;
        for (unsigned r = 0; r < ROOMS; r++) {
            if (after[r] != before[r] && after[r] != n)
                fail_msg("n = %zu: room %u moved to worker-%zu, not the newcomer", n, r,
                         after[r]);
            moved += after[r] != before[r];
        }
        assert_true(moved > 0); /* about ROOMS / (n + 1) expected */
        dispatch_fixture_free(fx);
    }
}

/* Without a room, or with an empty one, a request goes where key = sender
 * would send it; attribute names are as written, so "Room" is not "room". */
static void select__falls_back__to_the_sender_without_the_attribute(void **unused)
{
    (void)unused;
    static const char *const none[] = {NULL};
    static const char *const others[] = {"machine-uid", "4f1c", "xml:lang", "en", NULL};
    static const char *const empty[] = {"machine-uid", "4f1c", "room", "", NULL};
    static const char *const other_case[] = {"Room", "room0@conference.meet.example", NULL};
    static const char *const *const attribute_lists[] = {none, others, empty, other_case};
    dispatch_fixture_t *by_room = room_fixture_new("99", 10);
    dispatch_fixture_t *by_sender = fixture_new("99", 10);
    for (unsigned i = 0; i < 1000; i++) {
        char *jid = sender_jid(i);
        size_t expected = dispatch_pick(by_sender, jid);
        for (size_t a = 0; a < G_N_ELEMENTS(attribute_lists); a++) {
            const cp_dispatch_request_t request = {
                .sender = jid, .type = "set", .payload_ns = FOCUS_NS,
                .payload_attributes = attribute_lists[a],
            };
            assert_int_equal(dispatch_pick_request(by_room, &request), expected);
        }
        g_free(jid);
    }
    dispatch_fixture_free(by_room);
    dispatch_fixture_free(by_sender);
}

/* A room and a sender are hashed apart (a leading NUL), so a room named
 * like a bare JID is no alias for that sender's requests. */
static void select__tells_apart__a_room_and_a_sender_of_the_same_name(void **unused)
{
    (void)unused;
    static const char *const none[] = {NULL};
    dispatch_fixture_t *fx = room_fixture_new(NULL, 10);
    unsigned differ = 0;
    for (unsigned i = 0; i < 1000; i++) {
        char *name = g_strdup_printf("user%u@example.com", i);
        char *sender = g_strdup_printf("%s/laptop", name);
        const cp_dispatch_request_t by_sender = {
            .sender = sender, .type = "get", .payload_ns = FOCUS_NS, .payload_attributes = none,
        };
        differ += pick_room(fx, "someone@else.example/x", "get", name) !=
                  dispatch_pick_request(fx, &by_sender);
        g_free(name);
        g_free(sender);
    }
    assert_true(differ > 800); /* about 900 expected; 0 if they were one key */
    dispatch_fixture_free(fx);
}

/* As for senders, the placement of rooms is part of the interface.  Expected
 * choices from the independent Python model, extended as documented: score
 * = SipHash-2-4(NUL, lowercase ASCII value, NUL, resource name). */
static void select__places__rooms_as_the_documented_scheme_does(void **unused)
{
    (void)unused;
    static const char *const names[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    static const struct {
        const char *sender;
        const char *attributes[5];
    } requests[] = {
        {"focus@auth.meet.example/abc",
         {"room", "lobby@conference.meet.example", "machine-uid", "x", NULL}},
        {"other@meet.example/x",
         {"machine-uid", "y", "room", "Lobby@Conference.Meet.Example", NULL}},
        {"focus@auth.meet.example/abc", {"room", "standup@conference.meet.example", NULL}},
        {"juliet@capulet.example/balcony", {NULL}},
        {"juliet@capulet.example/balcony", {"room", "", NULL}},
        {"juliet@capulet.example/balcony", {"Room", "x@y", NULL}},
        {"x@y/z", {"room", "juliet@capulet.example", NULL}},
        {"a@b", {"room", "a@b/c", NULL}},
        {"a@b", {"room", "a@b", NULL}},
        {"a@b", {"room", "x", NULL}},
    };
    static const struct {
        const char *seed;
        const char *chosen[G_N_ELEMENTS(requests)];
    } expected[] = {
        {NULL, {"delta", "delta", "gamma", "epsilon", "epsilon", "epsilon", "delta", "beta",
                "alpha", "alpha"}},
        {"18446744073709551615", {"alpha", "alpha", "gamma", "alpha", "alpha", "alpha", "delta",
                                  "alpha", "gamma", "alpha"}},
    };
    for (size_t e = 0; e < G_N_ELEMENTS(expected); e++) {
        dispatch_fixture_t *fx = room_fixture_new(expected[e].seed, G_N_ELEMENTS(names));
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
            fx->resources[i].name = names[i];
        for (size_t i = 0; i < G_N_ELEMENTS(requests); i++) {
            const cp_dispatch_request_t request = {
                .sender = requests[i].sender, .type = "set", .payload_ns = FOCUS_NS,
                .payload_attributes = requests[i].attributes,
            };
            const char *chosen = fx->resources[dispatch_pick_request(fx, &request)].name;
            if (strcmp(chosen, expected[e].chosen[i]) != 0)
                fail_msg("seed %s, request %zu: chose %s, not %s",
                         expected[e].seed ? expected[e].seed : "none", i, chosen,
                         expected[e].chosen[i]);
        }
        dispatch_fixture_free(fx);
    }
}

/* key = sender is the default spelled out: payload attributes play no part. */
static void select__ignores__attributes_with_key_sender(void **unused)
{
    (void)unused;
    const char *const config[] = {"key", "sender", "seed", "7", NULL};
    dispatch_fixture_t *explicit = dispatch_fixture_new_with(config, "worker-", 8);
    dispatch_fixture_t *implicit = fixture_new("7", 8);
    for (unsigned i = 0; i < 3000; i++) {
        char *jid = sender_jid(i);
        char *room = room_jid(i % ROOMS);
        assert_int_equal(pick_room(explicit, jid, "get", room), dispatch_pick(implicit, jid));
        g_free(jid);
        g_free(room);
    }
    dispatch_fixture_free(explicit);
    dispatch_fixture_free(implicit);
}

/* Any attribute can key, prefixed names included, as the host writes them. */
static void init__accepts__an_attribute_of_any_name(void **unused)
{
    (void)unused;
    const char *const config[] = {"key", "attribute:xml:lang", NULL};
    dispatch_fixture_t *fx = dispatch_fixture_new_with(config, "worker-", 10);
    assert_int_equal(fake_host_error_count(fx->host), 0);
    size_t first = 0;
    unsigned varied = 0;
    for (unsigned i = 0; i < 100; i++) {
        char *lang = g_strdup_printf("x-lang-%u", i);
        const char *const attributes[] = {"room", "lobby@conference.meet.example", "xml:lang",
                                          lang, NULL};
        const cp_dispatch_request_t request = {
            .sender = "a@b/c", .type = "get", .payload_ns = FOCUS_NS,
            .payload_attributes = attributes,
        };
        size_t chosen = dispatch_pick_request(fx, &request);
        if (i == 0)
            first = chosen;
        varied += chosen != first;
        g_free(lang);
    }
    assert_true(varied > 50); /* about 90 expected; 0 if the room or sender keyed */
    dispatch_fixture_free(fx);
}

static void init__refuses__a_malformed_key(void **unused)
{
    (void)unused;
    static const struct {
        const char *value;
        const char *quoted; /* as the error shows it */
    } bad[] = {
        {"", ""},
        {"Sender", "Sender"},
        {"sender ", "sender "},
        {"jid", "jid"},
        {"room", "room"},
        {"attribute", "attribute"},
        {"attribute:", "attribute:"},
        {"attribute: room", "attribute: room"},
        {"attribute:room id", "attribute:room id"},
        {"attribute:room\t", "attribute:room\\t"},
        {"Attribute:room", "Attribute:room"},
        {"attr:room", "attr:room"},
        {"attribute=room", "attribute=room"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        cp_host_t *host = fake_host_new();
        void *state = NULL;
        fake_host_set(host, "key", bad[i].value);
        int status = fake_host_init_plugin(host, &state);
        if (status != CP_EINVAL)
            fail_msg("key \"%s\": init returned %d", bad[i].value, status);
        assert_int_equal(fake_host_error_count(host), 1);
        char *got = g_strdup_printf("got \"%s\"", bad[i].quoted);
        if (!fake_host_has_error(host, "key", "expected sender or attribute:NAME") ||
            !fake_host_has_error(host, "key", got))
            fail_msg("key \"%s\": %s", bad[i].value, fake_host_transcript(host));
        g_free(got);
        fake_host_free(host);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__sticky_dispatch),
        cmocka_unit_test(siphash__matches__the_reference_vectors),
        cmocka_unit_test(select__keeps__a_sender_on_its_resource_whatever_the_order),
        cmocka_unit_test(select__ignores__case_of_the_bare_jid_and_the_resource),
        cmocka_unit_test(select__spreads__senders_evenly),
        cmocka_unit_test(select__moves__only_the_senders_of_a_resource_that_left),
        cmocka_unit_test(select__moves__about_one_in_n_plus_one_to_a_newcomer),
        cmocka_unit_test(select__places__senders_as_the_documented_scheme_does),
        cmocka_unit_test(select__tells_apart__the_same_localpart_at_two_domains),
        cmocka_unit_test(select__agrees__between_instances_with_the_same_seed),
        cmocka_unit_test(select__handles__one_candidate_and_none),
        cmocka_unit_test(init__refuses__a_malformed_seed),
        cmocka_unit_test(select__keeps__a_room_on_one_resource_whoever_sends_it),
        cmocka_unit_test(select__keys__a_message_by_its_room_as_a_request),
        cmocka_unit_test(select__ignores__ascii_case_of_the_room),
        cmocka_unit_test(select__moves__only_the_rooms_of_a_resource_that_left),
        cmocka_unit_test(select__moves__rooms_only_to_a_resource_that_joined),
        cmocka_unit_test(select__falls_back__to_the_sender_without_the_attribute),
        cmocka_unit_test(select__tells_apart__a_room_and_a_sender_of_the_same_name),
        cmocka_unit_test(select__places__rooms_as_the_documented_scheme_does),
        cmocka_unit_test(select__ignores__attributes_with_key_sender),
        cmocka_unit_test(init__accepts__an_attribute_of_any_name),
        cmocka_unit_test(init__refuses__a_malformed_key),
    };
    return cmocka_run_group_tests_name("dispatch-sticky", tests, NULL, NULL);
}
