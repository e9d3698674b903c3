#!/usr/bin/python3
# An XEP-0050 client for tests/integration/test-operations.c: logs in to the
# run's Prosody with slixmpp (Debian's python3-slixmpp, hence Debian's
# interpreter in the first line), runs the STEPs given on the command line
# against --to, one after the other, and prints what each one got as
# `STEP.key=value` lines (one value per line, no newline in it), then
# `done=1`.  The C test reads them; nothing here judges the answers.
#
#   admin-client.py --jid admin@localhost --password pw --port 5222 \
#       --to proxy.localhost list status resources drain=worker-1 reload
#
# Steps:
#   list              disco#items on node http://jabber.org/protocol/commands
#                     (list.count, list.nodes, list.jids)
#   NODE              execute command NODE (status, resources, reload, ...)
#   NODE=RESOURCE     execute NODE, then complete its form with field
#                     `resource` = RESOURCE (drain, undrain): the first stage
#                     is printed as NODE.form.*, the second as NODE.*
#
# Per command: NODE.type (result or error), NODE.from, NODE.status,
# NODE.sessionid, NODE.note (TYPE: text), NODE.field.VAR (a result form's
# fields), NODE.items and NODE.item.I.VAR (a result form's items),
# NODE.form.options (a form's list-single options), NODE.error
# (type/condition), NODE.payload (the namespace of the reply's first child).
#
# Exit status 0 once every step has an answer (an error is an answer), 1 if
# it cannot log in or a step gets none in time.
import argparse
import logging
import sys

# Before slixmpp is imported: it warns about its stringprep on import.
logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s", stream=sys.stderr)

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402

COMMANDS_NS = "http://jabber.org/protocol/commands"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
STEP_TIMEOUT_S = 10


def say(key, value):
    text = str(value).replace("\n", " ").replace("\r", " ")
    print(f"{key}={text}", flush=True)


def print_form(prefix, form):
    """A data form's fields, items and options as PREFIX.* lines."""
    if form is None:
        return
    say(f"{prefix}.form_type", form["type"])
    for var, field in form.get_fields().items():
        value = field.get_value(convert=False)
        if isinstance(value, list):
            value = " ".join(value)
        say(f"{prefix}.field.{var}", value)
        options = field.get_options()
        if options:
            say(f"{prefix}.options", " ".join(o["value"] for o in options))
    items = form["items"]
    say(f"{prefix}.items", len(items))
    for i, item in enumerate(items):
        for var, value in item.items():
            if isinstance(value, list):
                value = " ".join(value)
            say(f"{prefix}.item.{i}.{var}", value)


def print_reply(prefix, iq):
    say(f"{prefix}.type", iq["type"])
    say(f"{prefix}.from", iq["from"])
    if iq["type"] == "error":
        say(f"{prefix}.error", f"{iq['error']['type']}/{iq['error']['condition']}")
        return
    payload = next(iter(iq.xml), None)
    say(f"{prefix}.payload", payload.tag.split("}")[0].lstrip("{") if payload is not None else "")
    if payload is None or payload.tag != "{%s}command" % COMMANDS_NS:
        return
    command = iq["command"]
    say(f"{prefix}.status", command["status"])
    say(f"{prefix}.sessionid", command["sessionid"])
    notes = command["notes"]
    if notes:
        say(f"{prefix}.note", "; ".join(f"{t}: {text}" for t, text in notes))
    if command.xml.find("{jabber:x:data}x") is not None:
        print_form(prefix, command["form"])


class AdminClient(slixmpp.ClientXMPP):
    def __init__(self, jid, password, to, steps):
        super().__init__(jid, password)
        self.to = to
        self.steps = steps
        self.ok = False
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0050")
        self.add_event_handler("session_start", self.on_session)
        self.add_event_handler("failed_auth", self.on_failed_auth)

    def on_failed_auth(self, event):
        say("error", "authentication failed")
        self.disconnect()

    async def on_session(self, event):
        try:
            for step in self.steps:
                await self.run_step(step)
            say("done", 1)
            self.ok = True
        except IqTimeout as timeout:
            say("error", f"no answer within {STEP_TIMEOUT_S} s: {timeout}")
        finally:
            self.disconnect()

    async def run_step(self, step):
        adhoc = self["xep_0050"]
        if step == "list":
            try:
                iq = await adhoc.get_commands(self.to, timeout=STEP_TIMEOUT_S)
            except IqError as error:
                print_reply("list", error.iq)
                return
            # In the order the answer gives them (slixmpp's "items" is a set).
            items = iq["disco_items"].xml.findall("{%s}item" % DISCO_ITEMS_NS)
            say("list.type", iq["type"])
            say("list.from", iq["from"])
            say("list.count", len(items))
            say("list.nodes", " ".join(item.get("node", "") for item in items))
            say("list.jids", " ".join(sorted({item.get("jid", "") for item in items})))
            return

        node, _, resource = step.partition("=")
        try:
            iq = await adhoc.send_command(self.to, node, timeout=STEP_TIMEOUT_S)
        except IqError as error:
            print_reply(node, error.iq)
            return
        if not resource:
            print_reply(node, iq)
            return
        # Two stages: the form that asks for a resource, then its answer.
        print_reply(f"{node}.form", iq)
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="resource", value=resource)
        try:
            iq = await adhoc.send_command(self.to, node, action="complete", payload=form,
                                          sessionid=iq["command"]["sessionid"],
                                          timeout=STEP_TIMEOUT_S)
        except IqError as error:
            iq = error.iq
        print_reply(node, iq)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--server", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("steps", nargs="+")
    args = parser.parse_args()
    if args.debug:
        logging.getLogger().setLevel(logging.DEBUG)

    client = AdminClient(args.jid, args.password, args.to, args.steps)
    # The harness's Prosody offers no TLS (loopback only): plain TCP, SCRAM.
    client.connect(address=(args.server, args.port), use_ssl=False, force_starttls=False,
                   disable_starttls=True)
    client.loop.run_until_complete(client.disconnected)
    sys.exit(0 if client.ok else 1)


if __name__ == "__main__":
    main()
