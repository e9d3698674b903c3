/* libstrophe helpers shared by the benchmark's XMPP clients (loadgen,
 * responder, jitsi-load, jitsi-focus); header only, as common.h. */
#ifndef BENCH_STROPHE_COMMON_H
#define BENCH_STROPHE_COMMON_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <strophe.h>

/* xmpp_conn_set_sockopt_callback(): small stanzas leave at once (no
 * Nagle), as the servers' own sockets do. */
static inline int bench_set_nodelay(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    int one = 1;
    return setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A presence handler that approves every subscription request: the
 * component (client-proxy, or mod_client_proxy) subscribes to the
 * resources it serves. */
static inline int bench_approve_subscriptions(xmpp_conn_t *conn, xmpp_stanza_t *pres,
                                              void *data)
{
    (void)data;
    const char *type = xmpp_stanza_get_type(pres), *from = xmpp_stanza_get_from(pres);
    if (type && from && strcmp(type, "subscribe") == 0) {
        xmpp_stanza_t *ok = xmpp_presence_new(xmpp_conn_get_context(conn));
        xmpp_stanza_set_type(ok, "subscribed");
        xmpp_stanza_set_to(ok, from);
        xmpp_send(conn, ok);
        xmpp_stanza_release(ok);
    }
    return 1;
}

/* SplitMix64's finaliser: a well-mixed 64-bit value from any seed, the
 * same on every machine, for the seeded choices of jitsi-load and
 * jitsi-focus. */
static inline uint64_t bench_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

#endif
