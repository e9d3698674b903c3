/* Integration-test harness: a real Prosody or ejabberd, real client-proxy
 * processes, and test XMPP clients, all children or guests of the test
 * process, all on 127.0.0.1.  One header per part:
 *
 *   run.h           the run a test group holds: temporary directory,
 *                   libstrophe context, what is live; the shared constants
 *   process.h       children, stopping by pid, the emergency cleanup, ports
 *   prosody.h       a private Prosody on free ports
 *   ejabberd.h      a private ejabberd on free ports, with its watchdog
 *   client-proxy.h  the program under test: config, start, stop, log
 *   clients.h       test clients (users and workers) and stanza helpers
 *
 * A test group gets a run (hx_new(), or the group fixtures of run.h), with
 * its server; each test makes its own clients and client-proxy in its
 * fixture and frees them in its teardown.  Servers and client-proxy are
 * children that die with the test process (PR_SET_PDEATHSIG) and are
 * stopped by pid; if the test process dies of a signal, the emergency
 * cleanup (process.h) kills what is left and removes the directory.
 */
#ifndef HX_HARNESS_H
#define HX_HARNESS_H

#include "run.h"

#include "client-proxy.h"
#include "clients.h"
#include "ejabberd.h"
#include "process.h"
#include "prosody.h"

#endif
