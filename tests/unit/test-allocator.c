/* core/allocator.c: the memory a burst of requests freed serves the next
 * burst, without the kernel.  Counted in page faults, not timed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <glib.h>

#include "allocator.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_A_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_A_SANITIZER 1
#endif
#endif

/* valgrind replaces malloc and accepts mallopt() without acting on it;
 * its preloaded library is how to tell. */
static bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload");
}

static long minor_faults(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

enum { BURST = 64, REQUEST_BYTES = 256 * 1024 + 512, BURSTS = 100 };

/* Read back, so that no allocation is optimised away. */
volatile char allocator_test_sink;

/* BURST requests with a 256 KiB payload each arrive (their kept bytes are
 * written, as inflight.c copies them), then all are answered and freed. */
static void burst(void)
{
    char *kept[BURST];
    for (int i = 0; i < BURST; i++) {
        kept[i] = g_malloc(REQUEST_BYTES);
        memset(kept[i], 'a' + i % 26, REQUEST_BYTES);
    }
    for (int i = 0; i < BURST; i++) {
        allocator_test_sink = kept[i][REQUEST_BYTES - 1];
        g_free(kept[i]);
    }
}

/* Untuned, every burst after the first faulted in all its 4,096 pages again
 * (the heap's top was given back to the kernel when the burst ended). */
static void allocator__serves_bursts_of_large_requests_without_page_faults(void **state)
{
    (void)state;
#ifdef UNDER_A_SANITIZER
    skip(); /* the sanitizer's allocator is not glibc's */
#endif
    if (under_valgrind())
        skip();
    assert_true(allocator_tune());
    burst(); /* the heap grows once */
    long before = minor_faults();
    for (int i = 0; i < BURSTS; i++)
        burst();
    long faults = minor_faults() - before;
    if (faults >= BURSTS)
        fail_msg("%ld page faults for %d bursts of %d requests", faults, BURSTS, BURST);
}

/* Once nothing is in flight, what the last burst left free goes back to
 * the kernel, once: the next burst faults its pages in again. */
static void allocator__gives_a_bursts_memory_back_once_nothing_is_in_flight(void **state)
{
    (void)state;
#ifdef UNDER_A_SANITIZER
    skip();
#endif
    if (under_valgrind())
        skip();
    assert_true(allocator_tune());
    burst();
    assert_false(allocator_release_when_idle(3, 64)); /* requests in flight: kept */
    long before = minor_faults();
    burst();
    assert_true(minor_faults() - before < BURST);
    assert_false(allocator_release_when_idle(0, 128)); /* admitted since the last look */
    assert_true(allocator_release_when_idle(0, 128));  /* a quiet interval */
    assert_false(allocator_release_when_idle(0, 128)); /* once per burst */
    before = minor_faults();
    burst();
    long pages = (long)BURST * REQUEST_BYTES / 4096;
    if (minor_faults() - before < pages / 2)
        fail_msg("%ld page faults for a burst of %ld pages after the release",
                 minor_faults() - before, pages);
}

/* Light steady load: each look finds nothing in flight, but requests came
 * since the last one.  Trimming then would fault the heap in again every
 * second; it waits for an interval with none. */
static void allocator__keeps_the_heap_while_requests_keep_coming(void **state)
{
    (void)state;
    uint64_t admitted = 1000;
    allocator_release_when_idle(0, admitted);
    allocator_release_when_idle(0, admitted); /* whatever came before: released */
    for (int second = 0; second < 10; second++) {
        admitted += 200;
        assert_false(allocator_release_when_idle(0, admitted));
    }
    assert_true(allocator_release_when_idle(0, admitted));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocator__serves_bursts_of_large_requests_without_page_faults),
        cmocka_unit_test(allocator__gives_a_bursts_memory_back_once_nothing_is_in_flight),
        cmocka_unit_test(allocator__keeps_the_heap_while_requests_keep_coming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
