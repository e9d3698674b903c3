/* glibc's malloc, tuned once at start for requests that come and go in
 * bursts.
 *
 * By default glibc serves each block of 128 KiB or more with an mmap() of
 * its own (a threshold it raises as such blocks are freed), and gives the
 * top of its heap back to the kernel as soon as twice that threshold is
 * free there.  A request with a large payload then pays a page fault for
 * every 4 KiB, every time: the bytes it keeps for a retry (inflight.c) land
 * on pages the last burst gave back.  At 256 KiB per request that was 63
 * faults and more than twice the CPU per request of the same bytes without
 * them (bench/README.md, "Cost that stays flat").
 *
 * allocator_tune() has every block up to ALLOCATOR_MMAP_THRESHOLD served
 * from the heap, and keeps up to ALLOCATOR_TRIM_THRESHOLD of free heap for
 * the next burst instead of giving it back.  What a burst leaves free is
 * given back once the burst is over (allocator_release_when_idle()), so
 * that the memory of a burst does not stay with the process. */
#ifndef CP_CORE_ALLOCATOR_H
#define CP_CORE_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* A stanza as large as client-proxy keeps, with room for the buffers that
 * grow by doubling around it. */
#define ALLOCATOR_MMAP_THRESHOLD (4 * WIRE_STANZA_MAX)
#define ALLOCATOR_TRIM_THRESHOLD (32 * 1024 * 1024)

/* Tunes glibc's malloc as above; call before the first request.  Returns
 * false when the allocator refused (AddressSanitizer's: mallopt() returns
 * 0).  valgrind's accepts and ignores it (true).  Either way nothing
 * changes but the cost. */
bool allocator_tune(void);

/* Called now and then (once a second) with how many requests are in
 * flight and how many were ever admitted.  Once requests were admitted
 * and then a whole interval passed with none in flight and none admitted
 * (the burst is over, not just between two requests), gives the kernel
 * back every whole free page of the heap (malloc_trim()) and returns true.
 * O(the heap's free blocks), once per burst, never per request.  Under
 * steady light load, which finds nothing in flight at most looks, the
 * heap is kept: trimming each second would fault it in again each second. */
bool allocator_release_when_idle(size_t in_flight, uint64_t admitted_total);

#endif
