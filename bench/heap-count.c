/* heap-count: an LD_PRELOAD library that counts the heap bytes a process
 * holds, so that component-peer can measure bytes per request in flight
 * exactly, even for one request (VmRSS moves by pages, and a heap reuses
 * what earlier requests freed, so its delta says nothing for a few).
 *
 *   HEAP_COUNT_FILE=/tmp/x LD_PRELOAD=build/bench/heap-count.so client-proxy ...
 *
 * Every block from malloc, calloc, realloc and the aligned allocators adds
 * its malloc_usable_size() to one 64-bit counter, and free() takes it away.
 * The counter lives in HEAP_COUNT_FILE, mapped shared, for the peer to read
 * with pread() while the process runs.  Blocks allocated before this
 * library's constructor are counted too (in a static first, then carried
 * over).  The process's own code is unchanged: glibc supports replacing
 * malloc, and we call its real allocator by its exported __libc_ names. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *block);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *block, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static int64_t before_constructor;
static int64_t *live = &before_constructor;

__attribute__((constructor)) static void map_counter(void)
{
    const char *path = getenv("HEAP_COUNT_FILE");
    if (!path)
        return;
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return;
    int64_t *shared = MAP_FAILED;
    if (ftruncate(fd, sizeof *shared) == 0)
        shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared == MAP_FAILED)
        return;
    /* Constructors run before the program's threads exist. */
    *shared = before_constructor;
    live = shared;
}

static void *counted(void *block)
{
    if (block)
        __atomic_fetch_add(live, (int64_t)malloc_usable_size(block), __ATOMIC_RELAXED);
    return block;
}

void *malloc(size_t size)
{
    return counted(__libc_malloc(size));
}

void *calloc(size_t count, size_t size)
{
    return counted(__libc_calloc(count, size));
}

void free(void *block)
{
    if (!block)
        return;
    __atomic_fetch_sub(live, (int64_t)malloc_usable_size(block), __ATOMIC_RELAXED);
    __libc_free(block);
}

void *realloc(void *block, size_t size)
{
    size_t before = block ? malloc_usable_size(block) : 0;
    void *moved = __libc_realloc(block, size);
    if (moved || size == 0) /* realloc(p, 0) frees p */
        __atomic_fetch_sub(live, (int64_t)before, __ATOMIC_RELAXED);
    return counted(moved);
}

void *memalign(size_t alignment, size_t size)
{
    return counted(__libc_memalign(alignment, size));
}

void *aligned_alloc(size_t alignment, size_t size)
{
    return counted(__libc_memalign(alignment, size));
}

int posix_memalign(void **block, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    void *aligned = __libc_memalign(alignment, size);
    if (!aligned)
        return ENOMEM;
    *block = counted(aligned);
    return 0;
}

void *valloc(size_t size)
{
    return counted(__libc_memalign((size_t)sysconf(_SC_PAGESIZE), size));
}
