/* The send seam and what is held while the stream is down: see outbox.h. */
#include "outbox.h"

#include "log.h"

struct outbox {
    outbox_send_fn send;
    void *userdata;
    bool up;
    GQueue held; /* GBytes, oldest first */
};

outbox_t *outbox_new(outbox_send_fn send, void *userdata)
{
    outbox_t *outbox = g_new0(outbox_t, 1);
    outbox->send = send;
    outbox->userdata = userdata;
    g_queue_init(&outbox->held);
    return outbox;
}

void outbox_free(outbox_t *outbox)
{
    if (!outbox)
        return;
    if (!g_queue_is_empty(&outbox->held))
        log_warning("%u stanzas held for the stream could not be sent: it never came back",
                    g_queue_get_length(&outbox->held));
    g_queue_clear_full(&outbox->held, (GDestroyNotify)g_bytes_unref);
    g_free(outbox);
}

void outbox_send(outbox_t *outbox, const char *bytes, size_t length)
{
    if (outbox->up)
        outbox->send(bytes, length, outbox->userdata);
    else
        g_queue_push_tail(&outbox->held, g_bytes_new(bytes, length));
}

void outbox_send_string(outbox_t *outbox, GString *out)
{
    outbox_send(outbox, out->str, out->len);
    g_string_truncate(out, 0);
}

void outbox_up(outbox_t *outbox)
{
    outbox->up = true;
    GBytes *bytes;
    while ((bytes = g_queue_pop_head(&outbox->held))) {
        gsize length;
        const char *data = g_bytes_get_data(bytes, &length);
        outbox->send(data, length, outbox->userdata);
        g_bytes_unref(bytes);
    }
}

void outbox_down(outbox_t *outbox, const char *unsent, size_t length)
{
    outbox->up = false;
    if (unsent && length > 0)
        g_queue_push_head(&outbox->held, g_bytes_new(unsent, length));
}

bool outbox_is_up(const outbox_t *outbox)
{
    return outbox->up;
}

size_t outbox_held_count(const outbox_t *outbox)
{
    return outbox->held.length;
}
