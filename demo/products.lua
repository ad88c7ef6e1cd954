-- The five bundled products as `make run` shows them: a small fixture of each, in the
-- product's own formats (those the specs use, spec/fixtures/), started beside the daemon.
-- Each start(dir, pg) returns { settings (phonehome's, for --config), pids (what it
-- started), change(step) (new figures), stop() }; pg is a PostgreSQL of
-- spec/support/postgres, or nil without one.
local core = require("phonehome.core")
local coroot = require("fixtures.coroot.fixture")
local electric = require("fixtures.electric.fixture")
local esdb = require("fixtures.eventstoredb.node")
local h = require("support.helper")
local json = require("phonehome.json")
local mim = require("fixtures.mongooseim.fixture")
local synapse = require("fixtures.synapse.fixture")

local M = {}

local function mkdir(path)
    assert(core.mkdir(path, 493))
    return path
end

local function kill(pid)
    return function() h.sh("kill " .. pid .. " 2>/dev/null") end
end

-- Synapse: a SQLite homeserver with known rows, its metrics listener and its process;
-- each step a user registers, signs in, opens a room and sends a message there.
function M.synapse(dir)
    local d = mkdir(dir .. "/synapse")
    local db = synapse.sqlite(d)
    local metrics = synapse.metrics()
    local config = synapse.homeserver(d, synapse.sqlite_section(db),
                                      { metrics_port = metrics.port })
    local proc = synapse.process(config, d .. "/homeserver.pid")
    local p = { settings = { config = config, report_stats = true },
                pids = { proc.pid, metrics.pid } }
    function p.change(step)
        local now = os.time()
        local user = string.format("@demo%d:example.org", step)
        local room = string.format("!demo%d:example.org", step)
        -- one transaction: a report sees the whole step or none of it
        h.sqlite(db, string.format([[
BEGIN;
INSERT INTO users (name, creation_ts, is_guest, appservice_id) VALUES ('%s', %d, 0, NULL);
INSERT INTO user_ips (user_id, access_token, device_id, ip, user_agent, last_seen)
    VALUES ('%s', 'demo%d', 'DEMO', '10.0.1.1', 'Element/1.0', %d);
INSERT INTO rooms (room_id, is_public, creator, room_version) VALUES ('%s', FALSE, '%s', '10');
INSERT INTO events (stream_ordering, topological_ordering, event_id, type, room_id, processed,
    outlier, origin_server_ts, received_ts, sender)
    VALUES (%d, %d, '$demo%d', 'm.room.message', '%s', TRUE, FALSE, %d, %d, '%s');
COMMIT;
]], user, now, user, step, now * 1000, room, user, 1000 + step, 1000 + step, step, room,
            now * 1000, now * 1000, user))
    end
    function p.stop()
        proc.stop()
        metrics.stop()
    end
    return p
end

-- EventStoreDB: the node's HTTP API, database directory, config and process; each step
-- the writer moves on to a new chunk, and the persistent subscriptions and user-defined
-- projections change.
function M.eventstoredb()
    -- named as Debian's package runs it, so that the script finds the node's process
    local n = esdb.start({ name = "/usr/bin/eventstored" })
    local p = { settings = { url = n.url, password = esdb.PASSWORD, config = n.config,
                             db = n.db }, pids = { n.pid, n.server.pid } }
    function p.change(step)
        local answers = esdb.answers({ db = n.db })
        local member = answers.gossip.members[1]
        member.writerCheckpoint = member.writerCheckpoint + step * esdb.CHUNK_SIZE
        -- the node writes its checkpoint file as it goes; the script reads that first
        h.replace(n.db .. "/writer.chk", string.pack("<i8", member.writerCheckpoint))
        local subscriptions = json.array()
        for i = 1, step % 5 + 1 do
            subscriptions[i] = { eventStreamId = "orders-" .. i, groupName = "billing",
                                 status = "Live" }
        end
        local projections = answers["projections.any"].projections
        for i = 1, step % 4 do
            projections[#projections + 1] = esdb.projection("orders-" .. i, "Continuous",
                                                            i % 2 == 0 and "Stopped" or "Running")
        end
        esdb.write_answers(n.root, { gossip = answers.gossip, subscriptions = subscriptions,
                                     ["projections.any"] = answers["projections.any"] })
    end
    p.stop = n.stop
    return p
end

-- Coroot: a data directory (instance.uuid, db.sqlite from Coroot's schema with the rows
-- of the documented sample, config.yaml), its web page and its process; each step a
-- rollout and a notification.
function M.coroot(dir)
    local d = mkdir(dir .. "/coroot")
    os.remove(d .. "/db.sqlite")
    coroot.datadir(d, "2c4f4a4e-9d7e-4b7c-8b8e-3f1a5d6c7b8a")
    local web = h.endpoint("serve:spec/fixtures/coroot")
    local pid = tonumber(h.sh(h.pauser(d .. "/coroot") .. " --data-dir=" .. h.quote(d)
        .. " >/dev/null 2>&1 & echo $!"))
    local p = { settings = { data_dir = d, config = d .. "/config.yaml", url = web.url .. "/" },
                pids = { pid, web.pid } }
    function p.change(step)
        local now = os.time()
        h.sqlite(d .. "/db.sqlite", string.format("BEGIN;\n"
            .. "INSERT INTO application_deployment (project_id, application_id, name, started_at) "
            .. "VALUES ('a1b2c3d4', 'default:Deployment:demo', 'demo-%d', %d);\n"
            .. "INSERT INTO incident_notification (project_id, application_id, incident_key, "
            .. "status, destination, timestamp, sent_at) VALUES ('a1b2c3d4', "
            .. "'default:Deployment:demo', 'demo-%d', 3, 'slack', %d, %d);\nCOMMIT;\n",
            step, now, step, now, now + 1))
    end
    function p.stop()
        kill(pid)()
        web.stop()
    end
    return p
end

-- MongooseIM: mongooseim.toml and the admin GraphQL API (the cluster id in pg when there
-- is one); each step the node has been up longer and has sent more messages.
function M.mongooseim(_, pg)
    if pg then
        pg.psql("CREATE TABLE IF NOT EXISTS mongoose_cluster_id (k varchar(50) PRIMARY KEY, "
            .. "v text);\nINSERT INTO mongoose_cluster_id (k, v) VALUES ('cluster_id', "
            .. "'6d1f3c2a-5b4e-4f7a-9c8d-1e2f3a4b5c6d') ON CONFLICT DO NOTHING;")
    end
    local api = mim.graphql_api()
    local answer = json.decode(h.slurp(api.root .. "/graphql"))
    local p = { settings = { config = mim.config(api, pg) }, pids = { api.pid } }
    function p.change(step)
        local data = answer.data
        data.stat.globalStats.uptimeSeconds = data.stat.globalStats.uptimeSeconds + 60
        for _, series in ipairs(data.metric.xmppMessageSent) do
            local count = series.dict[1]
            count.value = count.value + step
        end
        h.replace(api.root .. "/graphql", json.encode(answer))
    end
    p.stop = api.stop
    return p
end

-- Electric: its tables in pg with the cluster id, and its process with DATABASE_URL and
-- the variables its release's start script sets; each step it applies a migration with
-- one more table and, as a deployment that exports its telemetry over StatsD, tells the
-- daemon's socket (dir/statsd.sock, once it is there) of syncs, clients and
-- subscriptions. Without PostgreSQL, nothing.
function M.electric(dir, pg)
    if not pg then return nil end
    pg.psql(h.slurp("spec/fixtures/electric/schema.sql")
        .. "INSERT INTO electric.transaction_marker (id, content) VALUES ('cluster_id', "
        .. "'\"5a1f0c2e-7d3b-4c6a-9e8f-0b1c2d3e4f5a\"');")
    electric.migrate(pg, "20240101000000", { "public.items", "public.projects" }, "1 day")
    local pid = electric.process({ DATABASE_URL = pg.url, RELEASE_NAME = "electric",
                                   RELEASE_VSN = "0.12.1" })
    local p = { settings = {}, pids = { pid } }
    function p.change(step)
        local tables = {}
        for i = 1, step + 2 do tables[i] = "public.table" .. i end
        electric.migrate(pg, string.format("2025%010d", step), tables)
        local sock = dir .. "/statsd.sock"
        if not core.exists(sock) then return end
        local lines = { "electric.initial_syncs:" .. step .. "|c",
                        "electric.operations_from_pg:" .. 10 * step .. "|c",
                        "electric.transactions_from_pg:" .. step .. "|c",
                        "electric.concurrent_clients:" .. step % 4 + 1 .. "|g",
                        "electric.subscriptions_included_tables:" .. step % 3 + 1 .. "|h",
                        "electric.distinct_users:user" .. step % 3 .. "|s" }
        for i = 1, step % 4 + 1 do
            lines[#lines + 1] = "electric.distinct_clients:client" .. i .. "|s"
        end
        for i, l in ipairs(lines) do lines[i] = h.quote(l) end
        h.sh("printf '%s\\n' " .. table.concat(lines, " ") .. " | " .. h.statsd_send()
            .. " unix:" .. h.quote(sock) .. " >/dev/null 2>&1 || true")
    end
    p.stop = kill(pid)
    return p
end

M.ORDER = { "synapse", "eventstoredb", "coroot", "mongooseim", "electric" }

return M
