-- mod_bench_inprocess_proxy: the benchmark's in-process baseline (issue 6).
--
-- THIS IS NOT mod_client_proxy.  It is our stand-in for prosody-modules'
-- mod_client_proxy, written for client-proxy's benchmark from that module's
-- documented behaviour, not from its code: mod_client_proxy is not packaged
-- in Debian 12 (prosody-modules hg20230223 ships none) and the benchmark
-- machine has no network to fetch it.  Figures measured with it are figures
-- of this stand-in.  bench/run loads it from bench/baseline (plugin_paths):
--
--   Component "inproc.localhost" "bench_inprocess_proxy"
--       target_address = "service@localhost"
--
-- What it does, in Prosody 0.12:
-- - on load, subscribes from the component host to target_address;
-- - tracks the target's online resources from presence: available adds,
--   unavailable removes, error forgets them all;
-- - an IQ get/set from anyone else to the component (bare host or any
--   resource) goes to a uniformly random online resource, from
--   `<host>/<sender's full JID>`: the raw JID in the resource, no state, no
--   timeouts; with no resource online it is answered cancel/service-unavailable;
-- - an IQ result/error from a target resource to `<host>/<jid>` goes back to
--   `<jid>` from the bare host, id unchanged;
-- - messages are answered cancel/feature-not-implemented.
--
-- Copyright (c) the client-proxy authors.  MIT licence, like the project.

local st = require "util.stanza";
local jid = require "util.jid";

local host = module.host;
local target = jid.prep(jid.bare(assert(module:get_option_string("target_address"),
	"bench_inprocess_proxy: target_address is required")));

local resources, index = {}, {}; -- online resources: array, resource -> position

local function add(resource)
	if index[resource] then return; end
	resources[#resources + 1] = resource;
	index[resource] = #resources;
end

local function remove(resource)
	local i = index[resource];
	if not i then return; end
	local last = resources[#resources];
	resources[i], index[last] = last, i;
	resources[#resources], index[resource] = nil, nil;
end

local function on_iq(event)
	local stanza = event.stanza;
	local from, to, type = stanza.attr.from, stanza.attr.to, stanza.attr.type;
	local from_bare = jid.bare(from);
	if type == "get" or type == "set" then
		if from_bare == target or #resources == 0 then
			module:send(st.error_reply(stanza, "cancel", "service-unavailable"));
			return true;
		end
		stanza.attr.from = host .. "/" .. from;
		stanza.attr.to = target .. "/" .. resources[math.random(#resources)];
		module:send(stanza);
		return true;
	end
	-- A result or error: only a target resource's, to <host>/<jid>, goes back.
	local _, to_host, original = jid.split(to);
	if from_bare == target and to_host == host and original then
		stanza.attr.from, stanza.attr.to = host, original;
		module:send(stanza);
	end
	return true;
end

local function on_presence(event)
	local stanza = event.stanza;
	local node, from_host, resource = jid.split(stanza.attr.from);
	if jid.join(node, from_host) ~= target then return true; end
	local type = stanza.attr.type;
	if type == "error" then
		resources, index = {}, {};
	elseif resource and type == nil then
		add(resource);
	elseif resource and type == "unavailable" then
		remove(resource);
	end
	return true;
end

local function on_message(event)
	local stanza = event.stanza;
	if stanza.attr.type ~= "error" then
		module:send(st.error_reply(stanza, "cancel", "feature-not-implemented"));
	end
	return true;
end

for _, kind in ipairs { "bare", "full", "host" } do
	module:hook("iq/" .. kind, on_iq, -1);
	module:hook("presence/" .. kind, on_presence, -1);
	module:hook("message/" .. kind, on_message, -1);
end

local function subscribe()
	module:send(st.presence({ type = "subscribe", from = host, to = target }));
end
if prosody.start_time then subscribe(); else module:hook_global("server-started", subscribe); end
