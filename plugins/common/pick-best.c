#include "pick-best.h"

int pc_pick_best(GRand *rand, const cp_resource_t *const *candidates, size_t n,
                 pc_score_fn score, int64_t floor)
{
    if (n == 0)
        return CP_EDECLINE;
    /* The index is returned as an int; choose among the first G_MAXINT32. */
    if (n > G_MAXINT32)
        n = G_MAXINT32;

    /* First pass: the best score and how many candidates have it. */
    int64_t best = score(candidates[0]);
    gint32 tied = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = score(candidates[i]);
        if (s > best) {
            best = s;
            tied = 1;
        } else if (s == best) {
            tied++;
        }
    }
    if (best < floor)
        return CP_EDECLINE;

    /* Second pass: the pick-th of the tied, with one unbiased draw. */
    gint32 pick = tied > 1 ? g_rand_int_range(rand, 0, tied) : 0;
    for (size_t i = 0; i < n; i++) {
        if (score(candidates[i]) == best && pick-- == 0)
            return (int)i;
    }
    g_assert_not_reached();
    return CP_EDECLINE;
}
